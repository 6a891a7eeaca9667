"""Running the warnings: compute every rule on a data date and store the result (idempotent).

:func:`compute_warnings` is pure (the store is only read): the case table, the case state on
the data date, every strong rule, the surges and the emerging hot spots.
:func:`run_warnings` stores them (:mod:`layers.warnings.storage`) and records the run in
``warning_run`` with the store version it read; a second run on the same store version, data
date and rule settings finds the first one and changes nothing. ``gridgov warnings run`` calls it, by
hand or from the dashboard server's :class:`layers.warnings.watcher.WarningWatcher` (in a
child process, after every ingest).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import date, datetime

import sqlalchemy as sa

from geo import schema
from geo.store import Store
from layers.casedata import CaseTable, case_table, minutes_to_datetime
from layers.rules import CaseState, Rules, case_state, resolve_as_of
from layers.warnings.definitions import rules_version
from layers.warnings.hotspots import hot_unit_codes, hotspot_tests, hotspots, village_graph
from layers.warnings.records import Warning
from layers.warnings.signals import strong_signals
from layers.warnings.storage import upsert_warnings, warning_rows
from layers.warnings.surveillance import surges

log = logging.getLogger(__name__)


@dataclass
class Computed:
    """What one computation found: the warnings, the table and state they were judged on."""

    warnings: list[Warning]
    table: CaseTable
    state: CaseState
    timings: dict[str, float] = field(default_factory=dict)
    hot_units: dict[str, str] = field(default_factory=dict)
    """Code → 'hot' / 'emerging' of every hot village (the map's layer; stored with the run)."""


@dataclass
class RunSummary:
    """What :func:`run_warnings` did."""

    run_id: int | None
    as_of: datetime
    store_version: int
    found: int
    inserted: int = 0
    updated: int = 0
    deactivated: int = 0
    skipped: bool = False
    duration_s: float = 0.0
    by_rule: dict[str, int] = field(default_factory=dict)

    def line(self) -> str:
        """One bilingual line for the CLI and the log."""
        if self.skipped:
            return (f"预警已是最新（截至 {self.as_of:%Y-%m-%d %H:%M}，共 {self.found} 条），未改动 / "
                    f"warnings already current ({self.found} as of {self.as_of:%Y-%m-%d}); "
                    "nothing changed")
        return (f"预警 {self.found} 条（新增 {self.inserted}，更新 {self.updated}，不再出现 "
                f"{self.deactivated}），截至 {self.as_of:%Y-%m-%d %H:%M} / {self.found} warnings "
                f"({self.inserted} new, {self.updated} updated, {self.deactivated} no longer "
                f"found) as of {self.as_of:%Y-%m-%d}")


def compute_warnings(store: Store, *, as_of: datetime | date | None = None) -> Computed:
    """Compute every warning on ``as_of`` (default: the data's own date); nothing is written."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    table = case_table(store)
    settings = store.settings
    state = case_state(table, Rules.of(settings), as_of)
    timings["load"] = time.perf_counter() - started
    found: list[Warning] = []
    hot: dict[str, str] = {}

    def hotspot_step() -> list[Warning]:
        if "village" not in table.levels:
            return []
        graph = village_graph(store)
        tests = hotspot_tests(table, state, settings, graph)
        hot.update(hot_unit_codes(tests))
        return hotspots(table, state, settings, graph, tests)

    for name, step in (
        ("strong", lambda: strong_signals(table, state, settings)),
        ("surge", lambda: surges(table, state, settings)),
        ("hotspot", hotspot_step),
    ):
        began = time.perf_counter()
        found.extend(step())
        timings[name] = time.perf_counter() - began
    return Computed(found, table, state, timings, hot)


def run_warnings(store: Store, *, as_of: datetime | date | None = None,
                 force: bool = False) -> RunSummary:
    """Compute and store every warning; a repeat of an identical run changes nothing.

    Parameters
    ----------
    as_of
        Judge at this moment (a date means the end of that day); default the data's own date.
    force
        Recompute even when a run on the same store version, data date and rules exists.
    """
    started = time.perf_counter()
    version = store.version()
    table = case_table(store)
    moment = resolve_as_of(table, as_of)
    as_of_dt = minutes_to_datetime(moment)
    rules = rules_version(store.settings)
    previous = _previous_run(store, version=version, as_of=as_of_dt, rules=rules)
    if previous is not None and not force:
        return RunSummary(run_id=previous.run_id, as_of=as_of_dt, store_version=version,
                          found=previous.found, skipped=True)
    run_id = _open_run(store, version=version, as_of=as_of_dt, given=as_of is not None,
                       rules=rules)
    try:
        computed = compute_warnings(store, as_of=minutes_to_datetime(moment))
        rows = warning_rows(computed.warnings, computed.table, moment)
        with store.engine.begin() as conn:
            changes = upsert_warnings(conn, rows)
            by_rule = rows["rule"].value_counts().to_dict()
            duration = time.perf_counter() - started
            conn.execute(schema.warning_run.update().where(schema.warning_run.c.run_id == run_id)
                         .values(status="ok", finished_at=datetime.now(), found=len(rows),
                                 duration_s=round(duration, 3),
                                 message=";".join(f"{k}={v}" for k, v in sorted(by_rule.items())),
                                 hot_units=json.dumps(computed.hot_units, sort_keys=True),
                                 **changes))
    except Exception as error:
        _fail_run(store, run_id, error)
        raise
    summary = RunSummary(run_id=run_id, as_of=as_of_dt, store_version=version, found=len(rows),
                         duration_s=round(time.perf_counter() - started, 3),
                         by_rule={str(k): int(v) for k, v in by_rule.items()}, **changes)
    log.info("warnings: %s", summary.line())
    return summary


def latest_run(store: Store) -> dict | None:
    """The newest successful run (run_id, as_of, store_version, found …), or None."""
    t = schema.warning_run
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(t).where(t.c.status == "ok").order_by(t.c.run_id.desc())
                           .limit(1)).mappings().first()
    return dict(row) if row else None


def _previous_run(store: Store, *, version: int, as_of: datetime, rules: str):  # noqa: ANN202
    t = schema.warning_run
    with store.engine.connect() as conn:
        return conn.execute(sa.select(t.c.run_id, t.c.found).where(
            t.c.status == "ok", t.c.store_version == version, t.c.as_of == as_of,
            t.c.rules_version == rules).order_by(t.c.run_id.desc()).limit(1)).first()


def _open_run(store: Store, *, version: int, as_of: datetime, given: bool, rules: str) -> int:
    t = schema.warning_run
    with store.engine.begin() as conn:
        result = conn.execute(t.insert().values(
            started_at=datetime.now(), as_of=as_of, as_of_given=given, store_version=version,
            rules_version=rules, status="running", found=0, inserted=0, updated=0,
            deactivated=0))
        return int(result.inserted_primary_key[0])


def _fail_run(store: Store, run_id: int, error: Exception) -> None:
    t = schema.warning_run
    with store.engine.begin() as conn:
        conn.execute(t.update().where(t.c.run_id == run_id).values(
            status="failed", finished_at=datetime.now(), message=str(error)[:500]))
