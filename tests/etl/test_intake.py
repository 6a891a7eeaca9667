"""Live intake: one case validated, attached by the ETL's rules and stored in one transaction."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from etl.intake import IntakeError, Source, Submission, submit_case
from geo import audit, schema
from geo.scope import Scope
from geo.settings import Settings
from geo.store import Store

STREET = "440103001000"
KEY = Source(name="api:test", scope=Scope("street", STREET),
             actor=audit.Actor("api:test", "api", STREET))
POINT = Submission(category="城乡建设", description="小区门口路灯不亮", lat=23.105, lon=113.305)


@pytest.fixture
def store(tiny_engine):
    return Store(tiny_engine, Settings())


def _counts(engine) -> dict[str, int]:
    out = {}
    with engine.connect() as conn:
        for table in ("cases", "case_event", "intake_request", "audit_log"):
            out[table] = conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar()
        out["version"] = conn.execute(sa.text("SELECT max(version) FROM store_version")).scalar()
    return out


def test_a_point_is_attached_and_stored_with_its_event_and_audit(store):
    before = store.version()
    intake = submit_case(store, POINT, source=KEY, detail="POST requests.json")
    assert intake.created and intake.case_id.startswith("WS")
    assert (intake.village_code, intake.attach_method) == ("440103001001", "point")
    assert store.version() > before
    with store.engine.connect() as conn:
        case = conn.execute(sa.select(schema.cases).where(
            schema.cases.c.case_id == intake.case_id)).mappings().one()
        event = conn.execute(sa.select(schema.case_event)).mappings().one()
    assert case["channel"] == "网上" and case["status"] == "registered"
    assert case["category"] == "城乡建设" and case["street_code"] == STREET
    assert (event["event"], event["source"], event["actor"]) == ("created", "api", "api:test")
    trail = audit.read_trail(store.engine)
    assert list(trail["action"]) == ["api"] and trail["case_ids"].iloc[0] == intake.case_id


def test_an_address_is_read_with_the_etl_address_rules(store):
    intake = submit_case(store, Submission(category="教育", description="学校周边噪音",
                                           address="广州市甲区甲一街道北村"), source=KEY)
    assert (intake.village_code, intake.attach_method) == ("440103001201", "address")


def test_a_repeat_returns_the_first_case(store):
    first = submit_case(store, POINT, source=KEY, idempotency_key="abc-1")
    again = submit_case(store, POINT, source=KEY, idempotency_key="abc-1")
    same_body = submit_case(store, POINT, source=KEY)
    assert not again.created and again.case_id == first.case_id
    assert not same_body.created and same_body.case_id == first.case_id
    other = submit_case(store, POINT, source=KEY, idempotency_key="abc-2")
    assert other.created and other.case_id != first.case_id
    assert _counts(store.engine)["cases"] == 2


@pytest.mark.parametrize(("submission", "status", "says"), [
    (Submission(category="天气", description="x", lat=23.105, lon=113.305), 400, "分类"),
    (Submission(category="教育", description=" ", lat=23.105, lon=113.305), 400, "信访内容"),
    (Submission(category="教育", description="x" * 4001, lat=23.105, lon=113.305), 400, "过长"),
    (Submission(category="教育", description="<script>x</script>", lat=23.105, lon=113.305),
     400, "HTML"),
    (Submission(category="教育", description="x", lat=23.105), 400, "同时"),
    (Submission(category="教育", description="x"), 400, "位置"),
    (Submission(category="教育", description="x", lat=40.0, lon=116.4), 400, "网格"),
    (Submission(category="教育", description="x", address="火星基地"), 400, "无法确定位置"),
    (Submission(category="教育", description="x", lat=23.105, lon=113.335), 403, "辖区"),
    (Submission(category="教育", description="x", lat=23.105, lon=113.305, phone="abc"), 400,
     "电话"),
])
def test_a_refused_submission_writes_nothing(store, submission, status, says):
    before = _counts(store.engine)
    with pytest.raises(IntakeError, match=says) as refused:
        submit_case(store, submission, source=KEY)
    assert refused.value.status == status
    assert _counts(store.engine) == before


def test_a_qr_poster_location_outside_its_unit_falls_back_to_the_unit(store):
    village = "440103001201"
    qr = Source(name="qr:t", scope=Scope("grid_worker", village), channel="二维码",
                action="report", actor=audit.Actor("qr:t", "public", village))
    intake = submit_case(store, Submission(category="教育", description="x", lat=23.105,
                                           lon=113.335, unit_code=village), source=qr)
    assert intake.case_id.startswith("EWM") and intake.village_code == village
    assert intake.attach_method == "code"
