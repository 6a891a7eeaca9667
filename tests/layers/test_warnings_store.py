"""Warnings as records on both backends: stable ids, idempotent runs, states, scope, export."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, timedelta

import pytest
import sqlalchemy as sa

from geo import schema
from geo.settings import Settings
from geo.store import Store
from geo.vocab import WARNING_OPEN_STATES
from layers.warnings.run import latest_run, run_warnings
from layers.warnings.storage import WarningStateError, set_state, warnings_in
from layers.warnings.watcher import WarningWatcher
from tests.conftest import run_cli
from tests.layers.conftest import V1S, V3S, V4S, case, insert_cases

AS_OF = date(2025, 6, 30)


@pytest.fixture
def sqlite_tiny(tmp_path):
    """The tiny grid on SQLite only (the store-specific test above runs on both backends)."""
    from geo.grid import load_units
    from geo.store import make_engine, upgrade_schema
    from tests.grids import tiny_grid

    engine = make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    upgrade_schema(engine)
    load_units(engine, tiny_grid(), kind="bundled", note="tiny test grid")
    yield engine
    engine.dispose()


def _at(days_before: int) -> datetime:
    return datetime.combine(AS_OF - timedelta(days=days_before), datetime.min.time()) \
        + timedelta(hours=10)


def _dump(engine) -> list:  # noqa: ANN001
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(schema.warning)
                                               .order_by(schema.warning.c.warning_id))]


def test_runs_are_idempotent_states_survive_and_scope_is_enforced(tiny_engine):
    insert_cases(tiny_engine, [
        case(V1S, case_id="G", registered_at=_at(3), people_count=8, category="=HYPERLINK(1)"),
        case(V3S, case_id="A", registered_at=_at(13)),  # 受理临期
    ])
    store = Store(tiny_engine, Settings())
    first = run_warnings(store, as_of=AS_OF)
    assert first.found == 2 and first.inserted == 2
    before = _dump(tiny_engine)
    again = run_warnings(store, as_of=AS_OF)
    assert again.skipped and _dump(tiny_engine) == before
    forced = run_warnings(store, as_of=AS_OF, force=True)
    assert (forced.inserted, forced.updated, forced.deactivated) == (0, 0, 0)
    assert _dump(tiny_engine) == before  # same inputs, same warnings, same ids

    collective = warnings_in(store, V1S)
    assert list(collective["rule"]) == ["collective_people"]
    warning_id = collective["warning_id"].iloc[0]
    with pytest.raises(WarningStateError):  # outside the street office's scope
        set_state(store, warning_id, "seen", actor="乙街道", scope="440104001000")
    with pytest.raises(WarningStateError):  # 新 → 已解除 is allowed, 新 → 新 is not
        set_state(store, warning_id, "new", actor="甲")
    set_state(store, warning_id, "handling", actor="网格员甲", note="已上门", scope=V1S)
    # a later data date: the acceptance reminder becomes overdue, the handled one keeps its state
    later = run_warnings(store, as_of=AS_OF + timedelta(days=3))
    assert later.inserted == 1 and later.deactivated == 1  # 受理临期 → 超期未受理
    kept = warnings_in(store, V1S).iloc[0]
    assert (kept["warning_id"], kept["state"], kept["state_by"]) == (warning_id, "handling",
                                                                     "网格员甲")
    assert set(warnings_in(store, "440104000000")["rule"]) == {"acceptance_overdue"}
    with tiny_engine.connect() as conn:
        events = conn.execute(sa.select(schema.warning_event)).mappings().all()
    assert [(e["from_state"], e["to_state"], e["actor"], e["note"]) for e in events] == [
        ("new", "handling", "网格员甲", "已上门")]


def test_cli_runs_and_exports_one_row_per_warning(sqlite_tiny, tmp_path):
    tiny_engine = sqlite_tiny
    insert_cases(tiny_engine, [
        case(V1S, case_id="G", registered_at=_at(3), people_count=8, category="=HYPERLINK(1)"),
        case(V3S, case_id="A", registered_at=_at(13)),
    ])
    result = run_cli(tiny_engine, ["warnings", "run", "--as-of", "2025-06-30"])
    assert result.exit_code == 0, result.output
    assert "预警 2 条" in result.output
    again = run_cli(tiny_engine, ["warnings", "run", "--as-of", "2025-06-30"])
    assert "未改动" in again.output
    target = tmp_path / "w.csv"
    out = run_cli(tiny_engine, ["warnings", "export", "--level", "red", "-o", str(target)])
    assert out.exit_code == 0, out.output
    rows = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8-sig"))))
    assert len(rows) == 2
    for column in ("id", "rule", "level", "unit_code", "period_start", "period_end", "observed",
                   "expected", "case_ids"):
        assert column in rows[0]
    by_rule = {r["rule"]: r for r in rows}
    assert by_rule["collective_people"]["case_ids"] == "G"
    assert by_rule["collective_people"]["category"] == "'=HYPERLINK(1)"  # formula neutralised
    assert by_rule["acceptance_due_soon"]["level"] == "red"
    data = json.loads(run_cli(tiny_engine, ["warnings", "export", "--format", "json",
                                            "--level", "yellow"]).output)
    assert data == []
    bad = run_cli(tiny_engine, ["warnings", "export", "--unit", "12ab"])
    assert bad.exit_code != 0 and "Traceback" not in bad.output


def test_the_watcher_runs_after_an_ingest_and_not_otherwise(sqlite_tiny):
    tiny_engine = sqlite_tiny
    store = Store(tiny_engine, Settings())
    watcher = WarningWatcher(store)  # each run is a child `python -m gridgov warnings run`
    assert watcher.check() is True  # a first run on the store as it is
    first = latest_run(store)
    assert first is not None and first["store_version"] == store.version()
    assert watcher.check() is False  # nothing moved
    insert_cases(tiny_engine, [case(V1S, case_id="G", registered_at=_at(1), people_count=6)])
    assert watcher.check() is True
    ran = latest_run(store)
    assert ran["run_id"] > first["run_id"] and "collective_people=1" in ran["message"]
    assert json.loads(ran["hot_units"]) == {}  # stored with the run (the tiny grid has none)


def test_the_watcher_waits_for_a_burst_of_writes_to_end(sqlite_tiny, monkeypatch):
    """Live intake moves the version every few seconds: one run once the store is still."""
    from layers.warnings import watcher as watcher_module

    store = Store(sqlite_tiny, Settings())
    clock = [1000.0]
    monkeypatch.setattr(watcher_module.time, "monotonic", lambda: clock[0])
    watcher = WarningWatcher(store, quiet=60.0, max_wait=600.0)
    ran = []
    monkeypatch.setattr(watcher_module.subprocess, "run", lambda *a, **k: ran.append(1) or
                        type("Done", (), {"returncode": 0, "stdout": "", "stderr": ""})())
    assert watcher.check() is False  # due, but the store just changed (as far as it knows)
    for minute in range(1, 10):  # a write every 30 s for 4.5 minutes
        insert_cases(sqlite_tiny, [case(V1S, case_id=f"B{minute}", registered_at=_at(1))])
        clock[0] += 30
        assert watcher.check() is False
    clock[0] += 61  # a minute of quiet
    assert watcher.check() is True and ran == [1]
    # a steady stream still gets a run after max_wait
    watcher = WarningWatcher(store, quiet=60.0, max_wait=120.0)
    for k in range(6):
        insert_cases(sqlite_tiny, [case(V1S, case_id=f"S{k}", registered_at=_at(1))])
        clock[0] += 30
        watcher.check()
    assert len(ran) == 2


def test_counts_by_unit_equal_the_warnings_each_unit_holds(tiny_engine):
    """The one-pass count per unit equals filtering the warnings unit by unit, at every level."""
    from layers.warnings.storage import counts_by_unit

    insert_cases(tiny_engine, [
        case(V1S, case_id="G", registered_at=_at(3), people_count=8),  # 集体访: red
        case(V1S, case_id="H", registered_at=_at(4), people_count=9),
        case(V3S, case_id="A", registered_at=_at(13)),  # 受理临期: yellow
        case(V4S, case_id="B", registered_at=_at(20)),  # 超期未受理
    ])
    store = Store(tiny_engine, Settings())
    run_warnings(store, as_of=AS_OF)
    codes = ["440100000000", "440103000000", "440104000000", "440103001000", "440104001000",
             "440104002000", V1S, V3S, V4S, "440103101001"]
    got = counts_by_unit(store, codes)
    assert got["code"].tolist() == codes
    for code, red, yellow in got.itertuples(index=False):
        inside = warnings_in(store, code)
        inside = inside[inside["state"].isin(WARNING_OPEN_STATES)]
        assert (red, yellow) == ((inside["level"] == "red").sum(),
                                 (inside["level"] == "yellow").sum()), code
    assert got["red"].iloc[0] + got["yellow"].iloc[0] > 2  # not a test of zeros
