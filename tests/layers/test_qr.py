"""``gridgov qr``: a printable poster per village or street, one reporting point per unit."""

from __future__ import annotations

from PIL import Image

from geo.reportpoints import point_for_token
from tests.conftest import run_cli


def _url(output: str) -> str:
    return next(line.split(": ", 1)[1] for line in output.splitlines() if "URL:" in line)


def test_posters_for_a_village_and_a_street(tiny_engine, tmp_path):
    png = tmp_path / "v.png"
    made = run_cli(tiny_engine, ["qr", "--village", "440103001201", "-o", str(png),
                                 "--base-url", "https://xf.example.gov.cn/"])
    assert made.exit_code == 0, made.output
    url = _url(made.output)
    assert url.startswith("https://xf.example.gov.cn/report/") and "甲一街道北村" in made.output
    with Image.open(png) as image:
        assert image.size == (1169, 1654)
    point = point_for_token(tiny_engine, url.rsplit("/", 1)[1])
    assert point.unit_code == "440103001201" and point.scope.role == "grid_worker"
    again = run_cli(tiny_engine, ["qr", "--village", "440103001201", "-o", str(tmp_path / "b.png")])
    assert _url(again.output).rsplit("/", 1)[1] == url.rsplit("/", 1)[1]  # one point per unit
    pdf = tmp_path / "s.pdf"
    street = run_cli(tiny_engine, ["qr", "--street", "440103001000", "-o", str(pdf)])
    assert street.exit_code == 0 and pdf.read_bytes().startswith(b"%PDF")


def test_bad_requests_are_refused(tiny_engine, tmp_path):
    assert run_cli(tiny_engine, ["qr"]).exit_code == 2
    assert run_cli(tiny_engine, ["qr", "--village", "440103001201",
                                 "--street", "440103001000"]).exit_code == 2
    wrong = run_cli(tiny_engine, ["qr", "--village", "440103001000"])
    assert wrong.exit_code == 1 and "不是村居代码" in wrong.output
    absent = run_cli(tiny_engine, ["qr", "--street", "440199001000"])
    assert absent.exit_code == 1 and "没有单位" in absent.output
    svg = run_cli(tiny_engine, ["qr", "--street", "440103001000", "-o", str(tmp_path / "x.svg")])
    assert svg.exit_code == 1 and ".png" in svg.output
