"""The case table takes live writes incrementally and equals a full read afterwards."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest
import sqlalchemy as sa

from etl.corrections import correct_village
from etl.intake import Source, Submission, Update, record_update, submit_case
from geo import audit
from geo.scope import Scope
from geo.settings import Settings
from geo.store import Store, bump_version, is_postgis
from layers import casedata
from layers.casedata import case_table
from tests.layers.conftest import V1N, V1S, V4S, case, insert_cases

KEY = Source(name="api:t", scope=Scope("city", "440100000000"),
             actor=audit.Actor("api:t", "api", "440100000000"))


@pytest.fixture
def store(tiny_engine):
    start = datetime.now().replace(microsecond=0) - timedelta(days=20)
    first = case(V1S, registered_at=start, petitioner_phone="138-0000-0001 ", category="教育")
    insert_cases(tiny_engine, [
        first,
        case(V1S, registered_at=start, accepted_at=start + timedelta(days=1),
             petitioner_id_hash="h1"),
        case(V4S, registered_at=start, channel="来访", people_count=6),
        case(V4S, registered_at=start + timedelta(days=2), is_repeat=True,
             repeat_of=first["case_id"], petitioner_id_hash="h1"),
    ])
    return Store(tiny_engine, Settings())


def _same(a, b) -> None:
    """Equal tables, whatever the row order (a full read on PostGIS follows the heap)."""
    ids_a, ids_b = (np.asarray(t.case_id, dtype=object) for t in (a, b))
    ia, ib = np.argsort(ids_a), np.argsort(ids_b)
    assert list(ids_a[ia]) == list(ids_b[ib])
    for name in a.times:
        np.testing.assert_array_equal(a.minutes(name)[ia], b.minutes(name)[ib], err_msg=name)
    for name in a.flags:
        np.testing.assert_array_equal(a.flags[name][ia], b.flags[name][ib], err_msg=name)
    for name in a.categoricals:
        assert list(np.asarray(a.categoricals[name], dtype=object)[ia]) == list(
            np.asarray(b.categoricals[name], dtype=object)[ib]), name
    for name in ("lon", "lat", "people_count"):
        np.testing.assert_array_equal(a.numbers[name][ia], b.numbers[name][ib], err_msg=name)
    pa_, pb = a.numbers["person"][ia], b.numbers["person"][ib]
    np.testing.assert_array_equal(pa_ >= 0, pb >= 0)
    known = (pa_ >= 0)[:, None] & (pa_ >= 0)[None, :]
    np.testing.assert_array_equal((pa_[:, None] == pa_[None, :]) & known,
                                  (pb[:, None] == pb[None, :]) & known)
    assert set(a.levels) == set(b.levels)
    for level in a.levels:
        ua, ub = a.levels[level], b.levels[level]
        codes_a = np.append(ua.units["code"].to_numpy(object), None)[ua.case_unit[ia]]
        codes_b = np.append(ub.units["code"].to_numpy(object), None)[ub.case_unit[ib]]
        assert list(codes_a) == list(codes_b), level
    assert a.latest_other == b.latest_other


def test_live_writes_are_merged_without_a_full_read(store, monkeypatch):
    first = case_table(store)
    ingested = [str(i) for i in np.asarray(first.case_id, dtype=object)]
    new = submit_case(store, Submission(category="城乡建设", description="新问题", lat=23.115,
                                        lon=113.335, phone="13800000001"), source=KEY)
    record_update(store, ingested[1], Update("答复", datetime.now() - timedelta(hours=1)),
                  source=KEY)
    record_update(store, ingested[0], Update("受理", datetime.now() - timedelta(hours=1)),
                  source=KEY)  # the original of a repeat: its repeated_at stays
    record_update(store, ingested[3], Update("受理", datetime.now() - timedelta(hours=1)),
                  source=KEY)  # the repeat itself, sharing an ID hash with ingested[1]
    correct_village(store, ingested[2], V1N, user="镇街办")
    builds = []
    real = casedata._build_table
    monkeypatch.setattr(casedata, "_build_table", lambda *a, **k: builds.append(1) or real(*a, **k))
    refreshed = case_table(store)
    assert builds == [] and len(refreshed) == 5 and refreshed.version == store.version()
    assert refreshed.position_of(new.case_id) == 4
    person = refreshed.numbers["person"]
    assert person[4] == person[0] >= 0  # the same phone: the same petitioner (信访人)
    assert person[1] == person[3] >= 0 and person[1] != person[0]
    assert refreshed.minutes("repeated_at")[0] != casedata.NULL
    assert refreshed.in_unit(V1N)[2] and refreshed.in_unit("440104002201")[4]
    store.clear()
    _same(refreshed, real(store.engine, version=store.version(), deadline=refreshed.deadline))


def test_any_other_write_reads_the_whole_table(store, monkeypatch):
    case_table(store)
    builds = []
    real = casedata._build_table
    monkeypatch.setattr(casedata, "_build_table", lambda *a, **k: builds.append(1) or real(*a, **k))
    with store.engine.begin() as conn:  # a write that leaves no live event
        conn.execute(sa.text("UPDATE cases SET transferred_at = registered_at"))
        bump_version(conn)
    table = case_table(store)
    assert builds == [1] and table.latest_other != casedata.NULL
    insert_cases(store.engine, [case(V1S)])
    assert len(case_table(store)) == 5 and builds == [1, 1]


def test_a_table_read_in_page_ranges_equals_one_read(tiny_engine, monkeypatch):
    """PostgreSQL reads the cases in ranges of pages (its result row must stay under 1 GB):
    the ranges together give exactly the rows of one read, in every column."""
    start = datetime(2026, 1, 1)
    insert_cases(tiny_engine, [
        case(V1S if i % 2 else V4S, registered_at=start + timedelta(hours=i),
             accepted_at=start + timedelta(hours=i + 5) if i % 3 else None,
             category=("教育", "城乡建设", None)[i % 3], petitioner_id_hash=f"h{i % 7}",
             people_count=i % 4)
        for i in range(400)])
    whole = casedata._build_table(tiny_engine, version=1, deadline=(60, 30))
    ranges = []
    real = casedata._postgis_texts

    def spy(cursor, query, n_columns):  # noqa: ANN001, ANN202 - a DBAPI cursor
        class Counting:
            def __getattr__(self, name):  # noqa: ANN001, ANN204
                return getattr(cursor, name)

            def execute(self, sql, *args):  # noqa: ANN001, ANN002, ANN202
                ranges.extend(["range"] if "c.ctid >=" in sql else [])
                return cursor.execute(sql, *args)

        return real(Counting(), query, n_columns)

    monkeypatch.setattr(casedata, "_postgis_texts", spy)
    monkeypatch.setattr(casedata, "POSTGIS_CHUNK_ROWS", 40)
    ranged = casedata._build_table(tiny_engine, version=1, deadline=(60, 30))
    assert len(whole) == len(ranged) == 400
    _same(whole, ranged)
    assert len(ranges) > 3 if is_postgis(tiny_engine) else not ranges
