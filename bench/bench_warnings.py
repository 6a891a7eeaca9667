"""Benchmark: every warning rule over 1,000,000 demo cases, and the 预警 page's callbacks.

Run from the repository root::

    python bench/bench_warnings.py                     # 1,000,000 cases, SQLite
    python bench/bench_warnings.py -n 200000 --runs 3 --no-write

What is measured (median of ``--runs``):

* load: the columnar case table, cold (the same read every view pays once per store version);
* rules: :func:`layers.warnings.run.compute_warnings` after the load — the case state on the
  data date, every strong rule, the surges and the hot spots (the contiguity graph cached,
  as in the running server) — with the table's derived arrays cleared before each run, so the
  state is rebuilt every time; target ≤ 10 s;
* store: :func:`layers.warnings.run.run_warnings` end to end, first run (inserts) and an
  identical re-run (finds the previous run: nothing written);
* the 预警 page's callbacks (list, detail, map, 显微镜) for the city, a district and a street,
  posted through Flask's test client exactly as the browser posts them (JSON in and out),
  ``--calls`` each after one warm-up; p95 over all calls; target ≤ 200 ms;
* baseline: ``SELECT count(*) FROM cases WHERE registered_at >= <28 days>`` — the cheapest
  question a warning asks, in the database.

Cases come from ``etl.demo.demo_cases`` on the bundled grid, written straight into ``cases``
(as bench_metrics does). ``--background`` also measures the weak-signal rate of a demo built
*without* injected events (``build_demo``, 200,000 cases, daily runs over three months).
Writes the section between ``<!-- bench:warnings -->`` and ``<!-- /bench:warnings -->`` of
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_metrics import AS_OF, prepare_store  # noqa: E402
from results import machine, write_section  # noqa: E402

from geo.settings import Settings  # noqa: E402
from geo.store import Store, make_engine  # noqa: E402
from layers.casedata import case_table  # noqa: E402
from layers.warnings.hotspots import hotspots, village_graph  # noqa: E402
from layers.warnings.run import compute_warnings, run_warnings  # noqa: E402


def main() -> None:
    args = _parse_args()
    settings = Settings(basemap="none", mode="demo")  # demo data, demo accounts
    engine = make_engine(f"sqlite:///{args.db}")
    print(f"preparing {args.db} …", flush=True)
    print(prepare_store(engine, n=args.n, seed=args.seed, settings=settings), flush=True)
    store = Store(engine, settings)
    result = {"n": args.n, "runs": args.runs}
    result.update(_measure_rules(store, runs=args.runs))
    result.update(_measure_store(store))
    result.update(_measure_callbacks(store, calls=args.calls))
    result["baseline_ms"] = _baseline(engine, runs=args.runs)
    if args.background:
        result["background"] = _measure_background(Path(args.db).with_name("warn-background.db"))
    engine.dispose()
    print(json.dumps(result, ensure_ascii=False, indent=1, default=str))
    section = _render(result)
    print(section)
    if not args.no_write:
        write_section("warnings", section)


def _measure_rules(store: Store, *, runs: int) -> dict:
    store.clear()
    began = time.perf_counter()
    table = case_table(store)
    load = time.perf_counter() - began
    village_graph(store)
    totals, parts = [], []
    for _ in range(runs):
        table._memo.clear()  # rebuild the case state and every derived array each run
        began = time.perf_counter()
        computed = compute_warnings(store, as_of=AS_OF)
        totals.append(time.perf_counter() - began)
        parts.append(computed.timings)
    by_rule: dict[str, int] = {}
    for w in computed.warnings:
        by_rule[w.rule] = by_rule.get(w.rule, 0) + 1
    return {"load_s": round(load, 2), "rules_s": round(statistics.median(totals), 2),
            "rules_runs_s": [round(t, 2) for t in totals],
            "rules_parts_s": {k: round(statistics.median(p[k] for p in parts), 2)
                              for k in parts[0]},
            "warnings": len(computed.warnings), "by_rule": by_rule}


def _measure_store(store: Store) -> dict:
    with store.engine.begin() as conn:
        for table in ("warning_event", "warning", "warning_run"):
            conn.execute(sa.text(f"DELETE FROM {table}"))
    began = time.perf_counter()
    first = run_warnings(store, as_of=AS_OF)
    first_s = time.perf_counter() - began
    began = time.perf_counter()
    again = run_warnings(store, as_of=AS_OF)
    again_s = time.perf_counter() - began
    forced_began = time.perf_counter()
    forced = run_warnings(store, as_of=AS_OF, force=True)
    forced_s = time.perf_counter() - forced_began
    return {"store_first_s": round(first_s, 2), "store_rerun_s": round(again_s, 3),
            "store_forced_s": round(forced_s, 2), "stored": first.found,
            "rerun_skipped": again.skipped,
            "forced_changes": forced.inserted + forced.updated + forced.deactivated}


def _measure_callbacks(store: Store, *, calls: int) -> dict:
    from dashboard.app import create_app
    from geo.accounts import create_demo_accounts
    from layers.warnings.storage import warnings_in
    from tests.dashboard.dash_client import DashClient

    password, accounts = create_demo_accounts(store.engine, settings=store.settings)
    app = create_app(store)
    client = DashClient(app.server.test_client())
    client.login(next(a for a in accounts if a.role == "city").username, password)
    wanted = {"warn-grid.rowData": "list", "warn-detail.children": "detail",
              "warn-map-hot.data": "map", "warn-microscope.children": "microscope"}
    callbacks = {wanted[c.name]: c for c in client.callbacks() if c.name in wanted}
    frame = warnings_in(store)
    busiest = frame[frame["unit_level"] == "village"]["unit_code"].str[:9].value_counts()
    street = busiest.index[0] + "000"
    scopes = ("440100000000", street[:6] + "000000", street)
    timings: dict[str, list[float]] = {name: [] for name in callbacks}
    for scope in scopes:
        inside = warnings_in(store, scope)
        opened = inside["warning_id"].iloc[0] if len(inside) else None
        values = {"warn-query.data": {"unit": scope, "id": opened}, "warn-level.value": "",
                  "warn-rules.value": [], "warn-states.value": [], "warn-saved.data": 0,
                  "warn-selected.data": opened}
        for name, callback in callbacks.items():
            if name == "microscope" and scope == "440100000000":
                continue
            for k in range(calls + 1):
                began = time.perf_counter()
                response = client.call(callback, values)
                elapsed = time.perf_counter() - began
                assert response.status_code in (200, 204), (name, response.status_code)
                if k:  # the first call of each warms the caches
                    timings[name].append(elapsed)
    every = [t for values in timings.values() for t in values]
    return {"callback_p95_ms": round(1000 * float(np.percentile(every, 95)), 1),
            "callback_median_ms": round(1000 * statistics.median(every), 1),
            "callback_p95_by_ms": {k: round(1000 * float(np.percentile(v, 95)), 1)
                                   for k, v in timings.items() if v},
            "callback_calls": len(every)}


def _baseline(engine: sa.Engine, *, runs: int) -> float:
    start = (AS_OF - timedelta(days=27)).isoformat()
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT count(*) FROM cases WHERE registered_at >= :d"),
                         {"d": start}).scalar()
        times.append(time.perf_counter() - began)
    return round(1000 * statistics.median(times), 1)


def _measure_background(path: Path) -> dict:
    """Weak-signal warnings of a demo without injected events: daily runs over three months."""
    from etl.demo import build_demo
    from geo.grid import init_store
    from layers.rules import Rules, case_state
    from layers.warnings.surveillance import surges

    path.unlink(missing_ok=True)
    engine = make_engine(f"sqlite:///{path}")
    init_store(engine)
    store = Store(engine, Settings())
    build_demo(store, n_cases=200_000, seed=7, as_of=AS_OF, events=False)
    table = case_table(store)
    graph = village_graph(store)
    ids: dict[str, set[str]] = {"surge": set(), "hotspot": set()}
    first, last = date(2025, 4, 1), AS_OF
    day = first
    while day <= last:
        state = case_state(table, Rules.of(store.settings), day)
        ids["surge"] |= {w.warning_id for w in surges(table, state, store.settings)}
        ids["hotspot"] |= {w.warning_id for w in hotspots(table, state, store.settings, graph)}
        day += timedelta(days=1)
    units = sum(len(table.levels[level].units) for level in ("village", "street", "district"))
    months = ((last - first).days + 1) / 30.44
    total = sum(len(v) for v in ids.values())
    engine.dispose()
    return {"cases": 200_000, "days": (last - first).days + 1, "units": units,
            "surge": len(ids["surge"]), "hotspot": len(ids["hotspot"]),
            "per_100_units_per_month": round(total / units * 100 / months, 3)}


def _render(r: dict) -> str:
    lines = [
        "## Early warning (bench/bench_warnings.py)",
        "",
        f"Machine: {machine('numpy', 'scipy', 'esda', 'libpysal', 'pandas')}. "
        f"SQLite, bundled grid (2,851 villages), {r['n']:,} demo cases as of {AS_OF}, "
        f"median of {r['runs']} runs. The machine is shared: a load above 1 means other test "
        "runs took CPU too.",
        "",
        "| what | measured | target / baseline |",
        "|---|---|---|",
        f"| load the case table (cold) | {r['load_s']} s | once per store version |",
        f"| all rules (case state, strong rules, surges, hot spots) | **{r['rules_s']} s** "
        f"(runs {r['rules_runs_s']}; parts {r['rules_parts_s']}) | ≤ 10 s |",
        f"| warnings found | {r['warnings']:,} | by rule: {r['by_rule']} |",
        f"| `run_warnings` first run (compute + insert) | {r['store_first_s']} s | — |",
        f"| identical re-run | {r['store_rerun_s']} s, skipped = {r['rerun_skipped']} | "
        "nothing written |",
        f"| forced re-run | {r['store_forced_s']} s, changes = {r['forced_changes']} | 0 changes |",
        f"| 预警 page callbacks, p95 over {r['callback_calls']} calls | "
        f"**{r['callback_p95_ms']} ms** (median {r['callback_median_ms']} ms; p95 by callback "
        f"{r['callback_p95_by_ms']}) | ≤ 200 ms |",
        f"| baseline: one `count(*)` over 28 days in SQL | {r['baseline_ms']} ms | — |",
    ]
    if "background" in r:
        b = r["background"]
        lines += [
            "",
            f"Background weak signals (a demo built **without** injected events, {b['cases']:,} "
            f"cases, runs on each of {b['days']} days): {b['surge']} surge and {b['hotspot']} "
            f"hot-spot warnings over {b['units']:,} units = **{b['per_100_units_per_month']} per "
            "100 units per month** (target ≤ 1).",
        ]
    return "\n".join(lines)


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--db", default="/tmp/warn-bench-1m.db")
    parser.add_argument("--background", action="store_true")
    parser.add_argument("--no-write", action="store_true")
    return parser.parse_args()


if __name__ == "__main__":
    main()
