"""The 月报 (.docx) reads back, and its KPI numbers are those of ``gridgov metrics``."""

from __future__ import annotations

import io
import json
from datetime import date

import pytest

from geo.settings import Settings
from geo.store import Store
from layers.definitions import METRICS
from layers.filters import Filters
from layers.report import REPORT_RATES, monthly_report, read_kpis, report_period
from tests.conftest import run_cli
from tests.layers.conftest import D1

MAY = Filters(date_from=date(2025, 5, 1), date_to=date(2025, 5, 31))


@pytest.fixture
def demo(tiny_engine):
    from etl.demo import build_demo

    build_demo(Store(tiny_engine, Settings()), n_cases=400, seed=5, as_of=date(2025, 6, 30))
    return tiny_engine


def test_the_report_holds_the_numbers_of_gridgov_metrics(demo):
    from docx import Document

    report = monthly_report(Store(demo, Settings()), D1, filters=MAY)
    result = run_cli(demo, ["metrics", "--level", "district", "--from", "2025-05-01",
                            "--to", "2025-05-31", "--format", "json"])
    assert result.exit_code == 0, result.output
    row = next(r for r in json.loads(result.stdout) if r["code"] == D1)
    kpis = read_kpis(report)
    assert kpis["信访件数"]["数值"] == f"{row['cases']:,}"
    for rate in REPORT_RATES:
        line = kpis[METRICS[rate].label_zh]
        assert (line["分子"], line["分母"]) == (f"{row[rate + '_num']:,}", f"{row[rate + '_den']:,}")
        if row[rate + "_rankable"]:
            assert line["数值"] == f"{100 * row[rate]:.1f}%"
        elif row[rate + "_den"]:
            assert line["数值"] == "样本不足"
    text = "\n".join(p.text for p in Document(io.BytesIO(report)).paragraphs)
    assert "甲区信访工作月报（2025年5月）" in text and "信访工作条例" in text
    tables = "\n".join(c.text for t in Document(io.BytesIO(report)).tables
                       for r in t.rows for c in r.cells)
    assert "登记日期：2025-05-01 至 2025-05-31" in tables and "超期未办结" in tables
    assert "全市" not in [c.text for c in Document(io.BytesIO(report)).tables[1].rows[0].cells]


def test_the_report_draws_the_trend_chart(demo):
    from docx import Document
    from PIL import Image

    document = Document(io.BytesIO(monthly_report(Store(demo, Settings()), D1, filters=MAY)))
    (shape,) = document.inline_shapes  # the trend chart, the report's only picture
    blip = shape._inline.graphic.graphicData.pic.blipFill.blip.embed
    png = document.part.related_parts[blip].blob
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG" and image.width > 600
        colours = {c for _n, c in image.convert("RGB").getcolors(1 << 20)}
    assert (0x45, 0x75, 0xB4) in colours and (0xD7, 0x30, 0x27) in colours  # bars and line
    text = "\n".join(p.text for p in document.paragraphs)
    assert "柱：登记件数；线：按期办结率" in text


def test_a_report_without_dates_covers_the_data_s_last_month():
    period = report_period(Filters(), date(2025, 6, 12))
    assert (period.filters.date_from, period.filters.date_to) == (date(2025, 6, 1),
                                                                  date(2025, 6, 12))
    assert period.title_zh == "2025年6月" and period.partial_on is None
    cut = report_period(Filters(date_from=date(2025, 6, 1), date_to=date(2025, 6, 30)),
                        date(2025, 6, 12))
    assert cut.partial_on == date(2025, 6, 12)
