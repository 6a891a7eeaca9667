"""Every warning rule at its thresholds, on cases written out by hand (tiny grid, SQLite).

Each test states the cases, the data date and which warning a clerk must (not) see: 4 vs 5
people, 299 vs 301 m, day 7 vs 8, the 80 % point, 2 vs 3 cases, the surge's minimum count.
The deadline warnings are the masks of layers.rules, so only their mapping is checked here.
"""

from __future__ import annotations

import shutil
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from geo.crs import lonlat_to_xy, xy_to_lonlat
from geo.grid import load_units
from geo.settings import Settings
from geo.store import Store, make_engine, upgrade_schema
from layers.casedata import case_table
from layers.rules import Rules, case_state
from layers.warnings import signals
from layers.warnings.hotspots import contiguity_graph, gi_star
from layers.warnings.surveillance import surge_tests, surges
from tests.grids import tiny_grid
from tests.layers.conftest import V1N, V1S, V2S, case, insert_cases

AS_OF = date(2025, 6, 30)
SETTINGS = Settings()
CENTRE = (113.305, 23.105)  # inside village V1S


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A migrated SQLite store holding the tiny grid, copied by every test (fast)."""
    path = tmp_path_factory.mktemp("warn-template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade_schema(engine)
    load_units(engine, tiny_grid(), kind="bundled", note="tiny test grid")
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture
def make_store(tmp_path, template):
    """A fresh SQLite store with the tiny grid; call it with case rows."""
    engines = []

    def build(*rows, settings: Settings = SETTINGS) -> Store:
        path = tmp_path / f"w{len(engines)}.db"
        shutil.copyfile(template, path)
        engine = make_engine(f"sqlite:///{path}")
        engines.append(engine)
        insert_cases(engine, list(rows))
        return Store(engine, settings)

    yield build
    for engine in engines:
        engine.dispose()


def _run(store: Store, rule, as_of=AS_OF):  # noqa: ANN001
    table = case_table(store)
    state = case_state(table, Rules.of(store.settings), as_of)
    return rule(table, state, store.settings)


def _at(days_before: int, hour: int = 10) -> datetime:
    return datetime.combine(AS_OF - timedelta(days=days_before), datetime.min.time()) \
        + timedelta(hours=hour)


def _person(k: int) -> dict:
    return {"petitioner_phone": f"1540000{k:04d}"}


def _east(metres: float) -> tuple[float, float]:
    x, y = lonlat_to_xy(*CENTRE)
    return xy_to_lonlat(x + metres, y)


# --------------------------------------------------------------------------- 集体访


@pytest.mark.parametrize(("people", "warned"), [(4, False), (5, True)])
def test_collective_petition_needs_five_people(make_store, people, warned):
    store = make_store(case(V1S, case_id="G", registered_at=_at(3), people_count=people))
    found = _run(store, signals.collective_people)
    assert [w.subject for w in found] == (["G"] if warned else [])
    if warned:
        assert found[0].observed == 5 and found[0].expected == 5 and found[0].unit_code == V1S


def test_collective_petition_only_in_the_lookback_window(make_store):
    store = make_store(case(V1S, case_id="OLD", registered_at=_at(30), people_count=9),
                       case(V1S, case_id="NEW", registered_at=_at(29), people_count=9))
    assert [w.subject for w in _run(store, signals.collective_people)] == ["NEW"]


# --------------------------------------------------------------------------- 群体性苗头


def _cluster_cases(*, far_m: float = 0.0, last_day_before: int = 0) -> list[dict]:
    """Five cases of one category from five people: four at the centre, one ``far_m`` east."""
    rows = [case(V1S, case_id=f"K{k}", registered_at=_at(10 - k), category="城乡建设",
                 lon=CENTRE[0], lat=CENTRE[1], **_person(k)) for k in range(4)]
    lon, lat = _east(far_m)
    rows.append(case(V1S, case_id="K4", registered_at=_at(last_day_before), category="城乡建设",
                     lon=lon, lat=lat, **_person(4)))
    return rows


@pytest.mark.parametrize(("metres", "warned"), [(299.0, True), (301.0, False)])
def test_cluster_radius_is_300_metres(make_store, metres, warned):
    store = make_store(*_cluster_cases(far_m=metres, last_day_before=7))
    found = _run(store, signals.collective_clusters)
    assert len(found) == int(warned)
    if warned:
        assert sorted(found[0].subject.split("|")) == sorted(["城乡建设", "K0"])
        assert found[0].observed == 5 and found[0].category == "城乡建设"


@pytest.mark.parametrize(("last_day", "warned"), [(7, True), (8, False)])
def test_cluster_spans_seven_calendar_days(make_store, last_day, warned):
    # first case on day 1 (10 days before the data date), the fifth on day 7 or day 8
    store = make_store(*_cluster_cases(last_day_before=10 - last_day + 1))
    assert len(_run(store, signals.collective_clusters)) == int(warned)


def test_cluster_counts_petitioners_not_cases(make_store):
    rows = _cluster_cases(last_day_before=7)
    rows[4]["petitioner_phone"] = rows[0]["petitioner_phone"]  # the same person twice
    store = make_store(*rows)
    assert _run(store, signals.collective_clusters) == []


def test_cluster_ignores_other_categories(make_store):
    rows = _cluster_cases(last_day_before=7)
    rows[4]["category"] = "教育"
    assert _run(make_store(*rows), signals.collective_clusters) == []


# --------------------------------------------------------------------------- 重复访


@pytest.mark.parametrize(("count", "warned"), [(2, False), (3, True)])
def test_repeat_petitioner_needs_three_cases_in_one_village(make_store, count, warned):
    rows = [case(V1S, case_id=f"R{k}", registered_at=_at(80 - 30 * k), **_person(1))
            for k in range(count)]
    found = _run(make_store(*rows), signals.repeat_petitioners)
    assert len(found) == int(warned)
    if warned:
        assert found[0].subject == "R0" and found[0].unit_code == V1S and found[0].observed == 3


def test_repeat_petitioner_in_two_villages_is_grouped_by_person(make_store):
    store = make_store(case(V1S, case_id="A1", registered_at=_at(20), **_person(7)),
                       case(V2S, case_id="A2", registered_at=_at(5), **_person(7)),
                       case(V1N, case_id="B1", registered_at=_at(5), **_person(8)))
    found = _run(store, signals.repeat_petitioners)
    assert len(found) == 1
    w = found[0]
    assert w.statistic == 2 and w.unit_code == "440103000000"  # the district both villages share
    assert "15400000007" not in w.reason  # the person is never shown


def test_repeat_window_is_ninety_days(make_store):
    rows = [case(V1S, case_id="OLD", registered_at=_at(90), **_person(2)),
            case(V1S, case_id="M", registered_at=_at(40), **_person(2)),
            case(V1S, case_id="N", registered_at=_at(1), **_person(2))]
    assert _run(make_store(*rows), signals.repeat_petitioners) == []
    rows[0]["registered_at"] = _at(89)
    found = _run(make_store(*rows), signals.repeat_petitioners)
    assert len(found) == 1 and found[0].subject == "OLD"


# --------------------------------------------------------------------------- 越级访


def test_a_visit_to_the_city_without_a_local_case_is_skip_level(make_store):
    store = make_store(case(V1S, case_id="H", registered_at=_at(3), registered_level="市",
                            channel="来访", **_person(3)),
                       case(V1N, case_id="Q", registered_at=_at(3), registered_level="市",
                            channel="网上", **_person(4)))
    assert [w.subject for w in _run(store, signals.skip_level)] == ["H"]


def test_a_visit_after_a_closed_local_case_is_not_skip_level(make_store):
    store = make_store(
        case(V1S, case_id="L", registered_at=_at(60), accepted_at=_at(59), closed_at=_at(20),
             registered_level="镇街", **_person(5)),
        case(V1S, case_id="H", registered_at=_at(3), registered_level="省", channel="来访",
             **_person(5)))
    assert _run(store, signals.skip_level) == []


def test_going_up_while_the_local_case_is_open_is_skip_level(make_store):
    store = make_store(
        case(V1S, case_id="L", registered_at=_at(25), accepted_at=_at(24),
             registered_level="镇街", **_person(6)),
        case(V1S, case_id="H", registered_at=_at(4), registered_level="省", channel="网上",
             **_person(6)))
    found = _run(store, signals.skip_level)
    assert [w.subject for w in found] == ["H"] and "L" in found[0].reason


# --------------------------------------------------------------------------- 不满意 / 积案


@pytest.mark.parametrize(("followed", "reviewed", "warned"), [
    (False, False, True), (True, False, False), (False, True, False)])
def test_unhappy_without_review_or_followup(make_store, followed, reviewed, warned):
    row = case(V1S, case_id="U", registered_at=_at(50), accepted_at=_at(49),
               replied_at=_at(20), closed_at=_at(20), rating="不满意", rated_at=_at(10),
               followed_up_at=_at(5) if followed else None,
               reviewed_at=_at(4) if reviewed else None)
    assert len(_run(make_store(row), signals.unhappy_without_followup)) == int(warned)


@pytest.mark.parametrize(("leader", "warned"), [(None, True), ("张某（副区长）", False)])
def test_backlog_without_leader(make_store, leader, warned):
    row = case(V1S, case_id="B", registered_at=_at(300), accepted_at=_at(299),
               is_backlog=True, backlog_leader=leader)
    assert len(_run(make_store(row), signals.backlog_without_leader)) == int(warned)


# --------------------------------------------------------------------------- deadlines (80 %)


@pytest.mark.parametrize(("days_since", "rule"), [
    (11, None), (12, "acceptance_due_soon"), (15, "acceptance_due_soon"),
    (16, "acceptance_overdue")])
def test_acceptance_reminders_follow_the_80_percent_point(make_store, days_since, rule):
    store = make_store(case(V1S, case_id="A", registered_at=_at(days_since)))
    found = _run(store, signals.deadline_warnings)
    assert [w.rule for w in found] == ([rule] if rule else [])


@pytest.mark.parametrize(("days_left", "replied", "rule"), [
    (13, False, None), (12, False, "reply_due_soon"), (-1, False, "reply_overdue"),
    (12, True, "handling_due_soon"), (-1, True, "handling_overdue"), (13, True, None)])
def test_reply_and_handling_reminders_never_both(make_store, days_left, replied, rule):
    accepted = _at(60 - days_left)
    row = case(V1S, case_id="D", registered_at=accepted - timedelta(days=2), accepted_at=accepted,
               replied_at=_at(1) if replied else None)
    found = _run(make_store(row), signals.deadline_warnings)
    assert [w.rule for w in found] == ([rule] if rule else [])
    if rule:
        assert found[0].expected == 60 and found[0].subject == "D"


# --------------------------------------------------------------------------- surges


def _weekly(village: str, category: str, *, baseline_per_week: int, current: int) -> list[dict]:
    rows = []
    for week in range(2, 10):  # the 8 baseline weeks after a guard week
        for k in range(baseline_per_week):
            rows.append(case(village, registered_at=_at(7 * week + k % 7), category=category))
    for k in range(current):
        rows.append(case(village, registered_at=_at(k % 7, hour=9 + k % 8), category=category))
    return rows


@pytest.mark.parametrize(("current", "warned"), [(4, False), (5, True)])
def test_a_surge_needs_the_minimum_count(make_store, current, warned):
    store = make_store(*_weekly(V1S, "教育", baseline_per_week=0, current=current),
                       *_weekly(V2S, "城乡建设", baseline_per_week=2, current=2))
    found = _run(store, surges)
    assert [(w.unit_code, w.category) for w in found if w.unit_code == V1S] == \
        ([(V1S, "教育")] if warned else [])


def test_a_steady_unit_is_no_surge_and_every_test_is_reported(make_store):
    store = make_store(*_weekly(V1S, "教育", baseline_per_week=3, current=3),
                       case(V2S, registered_at=_at(120), category="其他"))  # data from day -120
    tests = _run(store, surge_tests)
    assert not tests["surge"].any()
    village = tests[(tests["level"] == "village") & (tests["unit_code"] == V1S)].iloc[0]
    assert (village["observed"], village["baseline"], village["baseline_days"]) == (3, 24, 56)
    assert village["expected"] == pytest.approx(3.0)
    assert set(tests["level"]) == {"village", "street", "district"}


def test_a_baseline_starts_with_the_data(make_store):
    store = make_store(*_weekly(V1S, "教育", baseline_per_week=3, current=3))
    tests = _run(store, surge_tests)
    assert set(tests["baseline_days"]) == {65 - 14 + 1}  # first case 65 days back, guard week out


# --------------------------------------------------------------------------- Gi*


def test_gi_star_finds_a_hot_corner_of_a_lattice_and_nothing_in_a_flat_one():
    import geopandas as gpd
    import shapely

    cells = [shapely.box(113.3 + 0.01 * i, 23.1 + 0.01 * j, 113.31 + 0.01 * i, 23.11 + 0.01 * j)
             for j in range(6) for i in range(6)]
    codes = [f"440103001{k + 1:03d}" for k in range(36)]
    graph = contiguity_graph(gpd.GeoDataFrame({"code": codes}, geometry=cells, crs=4326))
    assert sorted(set(graph.cardinalities)) == [3, 5, 8]  # queen: corners, edges, inside
    population = np.full(36, 10_000.0)
    rng = np.random.default_rng(1)
    counts = rng.poisson(5, 36).astype(float)
    hot = [0, 1, 6, 7]  # the south-west 2 × 2 block
    counts[hot] += 40
    result = gi_star(counts, population, graph, SETTINGS)
    assert set(np.flatnonzero(result["hot"])) == set(hot)
    flat = gi_star(np.full(36, 5.0), population, graph, SETTINGS)
    assert not flat["hot"].any()


def test_the_person_index_prefers_the_id_hash_and_keeps_no_text(make_store):
    same = {"petitioner_id_hash": "a" * 64}
    store = make_store(case(V1S, case_id="P1", petitioner_phone="15400000001", **same),
                       case(V1S, case_id="P2", petitioner_phone="15400000002", **same),
                       case(V1S, case_id="P3", petitioner_phone="154-0000-0001"),
                       case(V1S, case_id="P4", petitioner_phone="15400000001"),
                       case(V1S, case_id="P5"))
    table = case_table(store)
    person = table.numbers["person"]
    assert person.dtype == np.int32
    by_id = dict(zip(table.case_id, person, strict=True))
    assert by_id["P1"] == by_id["P2"]  # same ID hash, different phones
    assert by_id["P3"] == by_id["P4"] != by_id["P1"]  # same phone digits, no ID hash
    assert by_id["P5"] == -1
    assert not any(isinstance(v, str) and "aaaa" in v for v in table._memo.values())


def test_the_microscope_tests_equal_scipy_stats():
    """The 显微镜's binomial tail and Benjamini–Hochberg equal scipy.stats' own."""
    from scipy import special, stats

    from layers.warnings.microscope import bh_adjust

    rng = np.random.default_rng(11)
    for m in (1, 2, 7, 19, 200):
        p = rng.uniform(0, 1, m) ** 3
        p[rng.integers(0, m)] = p[0]  # ties
        assert np.allclose(bh_adjust(p), stats.false_discovery_control(p, method="bh"))
    x, n, share = np.array([0, 1, 5, 30]), 40, np.array([0.1, 0.02, 0.3, 0.5])
    tail = np.where(x > 0, special.bdtrc(np.maximum(x - 1, 0), n, share), 1.0)
    assert np.allclose(tail, stats.binom.sf(x - 1, n, share))
