"""Live intake: one case validated, attached by the ETL's rules and stored in one transaction."""

from __future__ import annotations

import pandas as pd
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


@pytest.fixture
def tiny_sqlite_store(tmp_path):
    """The tiny grid on SQLite only, for rules that read no SQL of their own."""
    from geo.grid import load_units
    from geo.store import make_engine, upgrade_schema
    from tests.grids import tiny_grid

    engine = make_engine(f"sqlite:///{tmp_path / 'one-row.db'}")
    upgrade_schema(engine)
    load_units(engine, tiny_grid(), kind="bundled", note="tiny test grid")
    yield Store(engine, Settings())
    engine.dispose()


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


REFUSED = [
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
]
"""Refused submissions: (submission, HTTP status, what the message says)."""


def test_a_refused_submission_writes_nothing(store):
    before = _counts(store.engine)
    for submission, status, says in REFUSED:  # one store for all: each must leave it as it was
        with pytest.raises(IntakeError, match=says) as refused:
            submit_case(store, submission, source=KEY)
        assert refused.value.status == status, says
        assert _counts(store.engine) == before, says


def test_a_qr_poster_location_outside_its_unit_falls_back_to_the_unit(store):
    village = "440103001201"
    qr = Source(name="qr:t", scope=Scope("grid_worker", village), channel="二维码",
                action="report", actor=audit.Actor("qr:t", "public", village))
    intake = submit_case(store, Submission(category="教育", description="x", lat=23.105,
                                           lon=113.335, unit_code=village), source=qr)
    assert intake.case_id.startswith("EWM") and intake.village_code == village
    assert intake.attach_method == "code"


# --------------------------------------------------------------------------- status updates

from datetime import datetime, timedelta  # noqa: E402

from etl.intake import Update, record_update  # noqa: E402


def _timeline(engine, case_id) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(
            schema.case_event.c.event, schema.case_event.c.status).where(
            schema.case_event.c.case_id == case_id).order_by(schema.case_event.c.id))]


def test_a_lifecycle_is_appended_step_by_step(store):
    start = datetime.now().replace(microsecond=0) - timedelta(days=10)
    case = submit_case(store, POINT, source=KEY, now=start)
    steps = [("受理", 1, None), ("交办", 1, None), ("延期", 2, None), ("答复", 3, None),
             ("回访", 4, None), ("评价", 4, "基本满意"), ("办结", 5, None)]
    for event, day, rating in steps:
        record_update(store, case.case_id, Update(event, start + timedelta(days=day), rating),
                      source=KEY)
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(schema.cases).where(
            schema.cases.c.case_id == case.case_id)).mappings().one()
    assert row["status"] == "closed" and row["rating"] == "基本满意" and row["extended"]
    assert row["due_at"] == start + timedelta(days=1 + 60 + 30)
    assert row["rating_state"] == "已评价"
    assert [e for e, _ in _timeline(store.engine, case.case_id)] == [
        "created", "accepted", "transferred", "extended", "replied", "followed_up", "rated",
        "closed"]


INVALID = [
    ([], Update("评价", datetime.now(), "满意"), "评价须在"),
    ([], Update("答复", datetime.now()), "答复须在"),
    ([], Update("受理", datetime(2000, 1, 1)), "早于登记时间"),
    ([], Update("受理", datetime.now() + timedelta(days=2)), "晚于当前"),
    ([], Update("复议", datetime.now()), "未知事件"),
    (["受理"], Update("受理", datetime.now()), "受理须在"),
    (["受理", "延期"], Update("延期", datetime.now()), "延期须在|已延期|已有"),
    (["受理", "答复"], Update("评价", datetime.now()), "满意度"),
    (["受理"], Update("办结", datetime.now(), "满意"), "只有评价"),
    (["不予受理"], Update("答复", datetime.now()), "不予受理"),
]
"""Invalid transitions: (events recorded first, the refused update, what the message says)."""


def test_an_invalid_transition_is_refused_and_changes_nothing(store):
    for i, (first, update, says) in enumerate(INVALID):
        case = submit_case(store, Submission(category="教育", description=f"第 {i} 件",
                                             lat=23.105, lon=113.305), source=KEY,
                           now=datetime.now() - timedelta(hours=2))
        for event in first:
            record_update(store, case.case_id,
                          Update(event, datetime.now() - timedelta(hours=1)), source=KEY)
        before = (_counts(store.engine), _timeline(store.engine, case.case_id))
        with pytest.raises(IntakeError, match=says) as refused:
            record_update(store, case.case_id, update, source=KEY)
        assert refused.value.status == 400, says
        assert (_counts(store.engine), _timeline(store.engine, case.case_id)) == before, says


def test_updates_to_unknown_or_outside_cases_are_refused(store):
    with pytest.raises(IntakeError) as unknown:
        record_update(store, "NOPE", Update("受理", datetime.now()), source=KEY)
    assert unknown.value.status == 404
    other = Source(name="api:o", scope=Scope("street", "440104001000"),
                   actor=audit.Actor("api:o", "api", "440104001000"))
    case = submit_case(store, POINT, source=KEY)
    with pytest.raises(IntakeError) as outside:
        record_update(store, case.case_id, Update("受理", datetime.now()), source=other)
    assert outside.value.status == 403


def test_a_case_posted_in_demo_mode_is_a_demo_case(tiny_engine):
    real = submit_case(Store(tiny_engine, Settings()), POINT, source=KEY)
    demo = submit_case(Store(tiny_engine, Settings(mode="demo")),
                       Submission(category="教育", description="演示", lat=23.105, lon=113.305),
                       source=KEY)
    with tiny_engine.connect() as conn:
        flags = dict(conn.execute(sa.text("SELECT case_id, synthetic FROM cases")).all())
    assert not flags[real.case_id] and flags[demo.case_id]


ONE_ROW = [
    POINT,
    Submission(category="教育", description="x", address="广州市甲区甲一街道北村", name="王五",
               phone="13800001111"),
    Submission(category="教育", description="x", lat=23.105, lon=113.335,
               unit_code="440103001201"),
]


@pytest.mark.parametrize("submission", ONE_ROW)
def test_the_one_row_path_gives_the_row_the_etl_gives(tiny_sqlite_store, submission):
    store = tiny_sqlite_store
    from datetime import datetime

    from etl import clean, load
    from etl.attach import attach_frame, grid_index
    from etl.intake import _attach, _location_frame, _values  # noqa: PLC2701 - under test

    now = datetime(2026, 1, 5, 9, 30)
    grid = grid_index(store)
    values = _values(submission, channel="网上", now=now, synthetic=False)
    fast = _attach(store, grid, _location_frame(values), values, now=now)  # what it reads
    frame = pd.DataFrame({name: [value] for name, value in values.items()})  # the whole row
    cleaned = clean.clean_cases(frame, settings=store.settings, crs="wgs84", extent=grid.extent,
                                now=now)
    attached = attach_frame(cleaned.frame, grid, settings=store.settings)
    full = pd.concat([cleaned.frame.drop(columns=[c for c in attached if c in cleaned.frame]),
                      attached], axis=1).iloc[0].to_dict()
    full["boundary_version"] = grid.boundary_version
    for name, value in fast.items():
        if name == "row_hash":
            continue
        expected = full.get(name)
        if expected is None or (not isinstance(expected, str) and pd.isna(expected)):
            assert value is None or value is False or value == 0, name
        else:
            assert value == expected, (name, value, expected)
    assert load.STORED_CASE_COLUMNS  # every stored column is in the fast row
    assert set(fast) == set(load.STORED_CASE_COLUMNS) - {"case_id", "run_id", "updated_at"}


def test_concurrent_submissions_take_turns(store):
    from concurrent.futures import ThreadPoolExecutor

    submit_case(store, POINT, source=KEY, idempotency_key="warm")  # the grid index, once

    def same(_i):
        return submit_case(store, Submission(category="教育", description="同时提交", lat=23.105,
                                             lon=113.305), source=KEY, idempotency_key="k").case_id

    def different(i):
        return submit_case(store, Submission(category="教育", description=f"第 {i} 件",
                                             lat=23.105, lon=113.305), source=KEY).case_id

    with ThreadPoolExecutor(6) as pool:
        repeated = set(pool.map(same, range(6)))
        distinct = list(pool.map(different, range(6)))
    assert len(repeated) == 1 and len(set(distinct)) == 6
    assert _counts(store.engine)["cases"] == 1 + 1 + 6


def test_a_number_an_import_already_holds_is_refused_whole(store):
    from datetime import datetime

    from tests.layers.conftest import case, insert_cases

    now = datetime(2026, 3, 4, 10, 0)
    insert_cases(store.engine, [case("440103001001", case_id="WS20260304000001")])
    before = _counts(store.engine)
    with pytest.raises(IntakeError) as clash:
        submit_case(store, POINT, source=KEY, now=now)
    assert clash.value.status == 409 and _counts(store.engine) == before
