"""An office's correction of a case's village: an event with user and note, kept across
every later ingest (also one that changes the case) and re-attach."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from etl.corrections import CorrectionError, correct_village
from etl.ingest import ingest_cases
from etl.reattach import reattach
from geo import schema
from geo.settings import Settings
from geo.store import Store
from tests.conftest import run_cli

HEADER = "信访件编号,登记时间,受理时间,地址"


def _case(engine, case_id: str):
    c = schema.cases.c
    with engine.connect() as conn:
        return conn.execute(sa.select(c.village_code, c.street_code, c.attach_method,
                                      c.attach_level, c.attach_note, c.status)
                            .where(c.case_id == case_id)).one()


def test_a_correction_is_an_event_and_survives_reingest_and_reattach(tiny_engine, tmp_path):
    store = Store(tiny_engine, Settings())
    path = tmp_path / "a.csv"
    path.write_text(f"{HEADER}\nK1,2024-01-02,,甲区甲镇人民路8号\n", encoding="utf-8")
    ingest_cases(store, path)
    assert _case(tiny_engine, "K1")[:4] == (None, "440103101000", "address", "street")
    done = correct_village(store, "K1", "440103101201", user="甲镇综治中心 王五",
                           note="人民路8号属北村")
    assert (done.old_village, done.village_code) == (None, "440103101201")
    assert _case(tiny_engine, "K1")[:5] == ("440103101201", "440103101000", "corrected",
                                            "village", None)
    e = schema.case_event.c
    with tiny_engine.connect() as conn:
        event = conn.execute(sa.select(e.event, e.source, e.actor, e.detail, e.status)
                             .where(e.case_id == "K1", e.event == "corrected")).one()
    assert (event.source, event.actor, event.status) == ("user", "甲镇综治中心 王五", "registered")
    assert event.detail == "村居 未定 → 440103101201：人民路8号属北村"
    # a later export changes the case (accepted now): it is rewritten, the correction kept
    path.write_text(f"{HEADER}\nK1,2024-01-02,2024-01-05,甲区甲镇人民路8号\n", encoding="utf-8")
    report = ingest_cases(store, path)
    assert report.updated == 1
    assert _case(tiny_engine, "K1")[:3] == ("440103101201", "440103101000", "corrected")
    assert _case(tiny_engine, "K1").status == "accepted"
    assert reattach(store).moved == 0
    assert _case(tiny_engine, "K1")[:3] == ("440103101201", "440103101000", "corrected")


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)  # backend-independent logic
def test_bad_corrections_are_refused_with_a_message(tiny_engine, tmp_path):
    store = Store(tiny_engine, Settings())
    path = tmp_path / "a.csv"
    path.write_text(f"{HEADER}\nK1,2024-01-02,,甲镇\n", encoding="utf-8")
    ingest_cases(store, path)
    with pytest.raises(CorrectionError, match="未找到信访件"):
        correct_village(store, "NOPE", "440103101201", user="王五")
    with pytest.raises(CorrectionError, match="未知村居代码"):
        correct_village(store, "K1", "440103101000", user="王五")  # a street, not a village
    with pytest.raises(CorrectionError, match="更正人"):
        correct_village(store, "K1", "440103101201", user="  ")
    result = run_cli(tiny_engine, ["correct", "K1", "440103101201", "--user", "王五"])
    assert result.exit_code == 0 and "村居 未定 → 440103101201" in result.output
    bad = run_cli(tiny_engine, ["correct", "K1", "999", "--user", "王五"])
    assert bad.exit_code == 1 and "unknown village code" in bad.output
