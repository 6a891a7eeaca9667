"""Personal data masked wherever it hides: free text, extra columns, rejected rows, exports."""

from __future__ import annotations

import csv
import io
import json
import re

import pandas as pd

from geo.privacy import mask_raw_json, mask_record, mask_text, personal_kind
from tests.conftest import run_cli

MOBILE = re.compile(r"(?<!\d)1[3-9]\d[-\s]?\d{4}[-\s]?\d{4}(?!\d)")
ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")
LANDLINE = re.compile(r"(?<!\d)0\d{2,3}-?[2-9]\d{6,7}(?!\d)")
NAMES = ("张三丰", "王小明", "李四光", "赵六")


def test_mask_text_finds_phones_and_id_numbers_in_free_text():
    text = ("住天河路1号，手机13812345678，另 139-0000-1111、+86 137 2222 3333，座机020-87654321，"
            "身份证44010319900101123X，旧证440103900101123，编号GZ2024000123，日期20240102")
    masked = mask_text(text)
    assert not MOBILE.search(masked) and not ID_NUMBER.search(masked)
    assert not LANDLINE.search(masked)
    assert "138****5678" in masked and "020-****4321" in masked
    assert "4****************X" in masked and "4*************3" in masked
    assert "天河路1号" in masked and "GZ2024000123" in masked and "20240102" in masked
    assert mask_text(None) is None and mask_text("") == "" and mask_text(5) == 5


def test_personal_columns_are_found_by_their_header():
    assert {h: personal_kind(h) for h in ("信访人", "第二信访人", "联系人姓名", "申请人",
                                          "信访人手机", "联系方式", "身份证", "证件号码")} == {
        "信访人": "name", "第二信访人": "name", "联系人姓名": "name", "申请人": "name",
        "信访人手机": "phone", "联系方式": "phone", "身份证": "id", "证件号码": "id"}
    for header in ("站点名称", "信访人数", "承办单位", "地址", "信访件编号", "包案领导"):
        assert personal_kind(header) is None, header


def test_a_rejected_row_keeps_what_a_clerk_needs_and_masks_the_rest():
    record = {"信访件编号": "E2", "登记时间": "坏日期", "信访人": "王小明",
              "地址": "天河路1号 13812345678", "备注": "x" * 500, "联系方式": "13900001111"}
    masked = mask_record(record, {"信访件编号": "case_id", "登记时间": "registered_at",
                                  "信访人": "petitioner_name", "地址": "address"})
    assert masked["信访件编号"] == "E2" and masked["登记时间"] == "坏日期"  # to fix the row
    assert masked["信访人"] == "王**" and masked["地址"] == "天河路1号 138****5678"
    assert "备注" not in masked and "联系方式" not in masked
    assert masked["_未读取的列"] == "备注、联系方式"
    # rows stored before: every column kept, masked by header and by pattern, cut
    again = json.loads(mask_raw_json(json.dumps(record, ensure_ascii=False)))
    assert again["信访人"] == "王**" and "13900001111" not in again["联系方式"]
    assert len(again["备注"]) < 250
    assert mask_raw_json("not json 13812345678") == "not json 138****5678"


def _sample(tmp_path):
    header = ["信访件编号", "登记时间", "经度", "纬度", "信访人", "联系电话", "身份证号", "地址",
              "信访内容", "信访人手机", "联系方式", "身份证", "第二联系人", "紧急联系人姓名", "备注"]
    rows = [
        ["M1", "2025-03-01", "113.305", "23.105", "张三丰", "13812345678", "440103199001011234",
         "天河路1号 电话13512345678", "本人身份证440103198812120019，手机 136 1234 5678",
         "13712345678", "020-87654321", "44010319770707771X", "王小明", "李四光", "赵六 13312345678"],
        ["M2", "坏日期", "113.305", "23.105", "王小明", "13912345678", "440103199202022222",
         "中山路2号 15912345678", "请联系13012345678或身份证440103200001010011", "18612345678",
         "13212345678", "440103199303033333", "李四光", "赵六", "备注 020-12345678"],
        ["", "2025-03-02", "113.305", "23.105", "李四光", "13812340000", "440103199404044444",
         "", "手机13812349999", "18812345678", "", "", "赵六", "", ""],
        ["M4", "2025-03-03", "120.0", "30.0", "赵六", "15812345678", "440103199505055555",
         "远方 15812340000", "", "", "", "", "", "", ""],
    ]
    path = tmp_path / "cases.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _unmasked(text: str) -> list[str]:
    found = MOBILE.findall(text) + ID_NUMBER.findall(text) + LANDLINE.findall(text)
    return found + [name for name in NAMES if name in text]


def test_rejects_and_case_exports_hold_no_unmasked_phone_id_or_name(tiny_engine, tmp_path):
    from geo.settings import Settings
    from geo.store import Store
    from layers.casepage import case_detail

    result = run_cli(tiny_engine, ["ingest", "cases", str(_sample(tmp_path))])
    assert result.exit_code == 0, result.output
    assert "拒收 3" in result.output  # bad date, missing id, out of the grid
    texts = {}
    for name in ("rejects.csv", "rejects.xlsx"):
        out = tmp_path / name
        result = run_cli(tiny_engine, ["rejects", "export", "-o", str(out)])
        assert result.exit_code == 0, result.output
        frame = pd.read_excel(out, dtype=str) if name.endswith("xlsx") \
            else pd.read_csv(out, dtype=str, encoding="utf-8-sig")
        assert len(frame) == 3
        texts[name] = frame.to_csv(index=False)
    assert "坏日期" in texts["rejects.csv"]  # what the clerk must fix is still there
    for name in ("cases.csv", "cases.xlsx"):
        out = tmp_path / name
        result = run_cli(tiny_engine, ["cases", "export", "-o", str(out)])
        assert result.exit_code == 0, result.output
        frame = pd.read_excel(out, dtype=str) if name.endswith("xlsx") \
            else pd.read_csv(out, dtype=str, encoding="utf-8-sig")
        assert frame["信访件编号"].tolist() == ["M1"]
        assert frame["地址"].tolist() == ["天河路1号 电话135****5678"]
        texts[name] = frame.to_csv(index=False)
    for name, text in texts.items():
        assert _unmasked(text) == [], name
    detail = case_detail(Store(tiny_engine, Settings()), "M1")  # the case page's answer
    shown = json.dumps([detail.description, detail.place, detail.fields], ensure_ascii=False)
    assert _unmasked(shown) == [] and "136****5678" in detail.description
    csv_text = io.StringIO(texts["cases.csv"]).read()
    assert "张**" in csv_text
