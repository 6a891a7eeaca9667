"""Benchmark: every metric for all 2,851 villages over 1,000,000 cases, with a filter.

Run from the repository root (PostGIS at ``--pg-url``; the script creates the database)::

    python bench/bench_metrics.py                      # 1,000,000 cases, SQLite + PostGIS
    python bench/bench_metrics.py -n 200000 --runs 10 --no-write

What is measured, per backend (median and p95 of ``--runs`` queries each):

* load: reading the cases into the in-memory columnar copy (``layers.casedata``), cold;
* ``compute_metrics(level="village")`` with a filter (a 3-month window and one category, then a
  6-month window with two channels, alternating), after the copy is loaded — this includes the
  store round trip that checks whether the copy is still current;
* the same without a filter, and at street level;
* baseline: the simplest in-database query, ``SELECT village_code, count(*) … GROUP BY`` with
  the same filter — a single count per village, against every metric in memory.

The results of SQLite and PostGIS are compared and must be identical. Cases come from
``etl.demo.demo_cases`` (the demo generator) on the bundled Guangzhou grid and are written
straight into the ``cases`` table (bulk insert / COPY), not through the ETL, so the bench
measures the layers and not the loader. Writes the section between ``<!-- bench:metrics -->``
and ``<!-- /bench:metrics -->`` of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from results import DOCS, machine, write_section  # noqa: E402

from geo import schema  # noqa: E402
from geo.grid import init_store  # noqa: E402
from geo.settings import Settings  # noqa: E402
from geo.store import Store, is_postgis, make_engine, read_units  # noqa: E402
from layers.casedata import case_table  # noqa: E402
from layers.coverage import compute_coverage  # noqa: E402
from layers.filters import Filters  # noqa: E402
from layers.metrics import compute_metrics  # noqa: E402

AS_OF = date(2025, 6, 30)
FILTERS = (
    Filters(date_from=date(2025, 1, 1), date_to=date(2025, 3, 31), category=("城乡建设",)),
    Filters(date_from=date(2024, 10, 1), date_to=date(2025, 3, 31), channel=("网上", "来访")),
)
_TIME_COLUMNS = ("registered_at", "transferred_at", "accepted_at", "due_at", "replied_at",
                 "closed_at", "followed_up_at", "rated_at")


def main() -> None:
    args = _parse_args()
    settings = Settings()
    results = {}
    frames = {}
    for backend in args.backends.split(","):
        url = _store_url(backend, args)
        engine = make_engine(url)
        print(f"[{backend}] preparing store {url} …", flush=True)
        prepared = prepare_store(engine, n=args.n, seed=args.seed, settings=settings)
        print(f"[{backend}] {prepared}", flush=True)
        results[backend], frames[backend] = _measure(engine, runs=args.runs, settings=settings)
        results[backend].update(_measure_coverage(engine, seed=args.seed, settings=settings))
        engine.dispose()
        print(f"[{backend}] {results[backend]}", flush=True)
    identical = _identical(frames)
    section = _render(results, n=args.n, runs=args.runs, identical=identical)
    print(section)
    if not args.no_write:
        write_section("metrics", section)
        print(f"wrote {DOCS}")


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=1_000_000, help="number of cases")
    parser.add_argument("--runs", type=int, default=30, help="queries per measurement")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--backends", default="sqlite,postgis")
    parser.add_argument("--workdir", default="/tmp/gridgov_bench")
    parser.add_argument("--pg-url", default=None,
                        help="PostGIS database URL (default: postgresql://postgres@127.0.0.1/"
                        "gridgov_bench_N, created if missing)")
    parser.add_argument("--no-write", action="store_true", help="do not update docs")
    return parser.parse_args()


def _store_url(backend: str, args: argparse.Namespace) -> str:
    if backend == "sqlite":
        Path(args.workdir).mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{args.workdir}/metrics_{args.n}.db"
    url = args.pg_url or f"postgresql://postgres@127.0.0.1/gridgov_bench_{args.n}"
    server, name = url.rsplit("/", 1)
    admin = sa.create_engine(server.replace("postgresql://", "postgresql+psycopg://") +
                             "/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"),
                              {"n": name}).scalar()
        if not exists:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url


# --------------------------------------------------------------------------- data


def prepare_store(engine: sa.Engine, *, n: int, seed: int, settings: Settings) -> str:
    """Grid via init_store, then ``n`` demo cases unless the store already holds exactly them."""
    started = time.perf_counter()
    init_store(engine)
    marker = f"bench_metrics n={n} seed={seed} as_of={AS_OF}"
    with engine.connect() as conn:
        done = conn.execute(sa.select(sa.func.count()).select_from(schema.ingest_run).where(
            schema.ingest_run.c.message == marker)).scalar()
        count = conn.execute(sa.select(sa.func.count()).select_from(schema.cases)).scalar()
    if done and count == n:
        return f"reused {count:,} cases"
    villages = read_units(engine, level="village")
    cases = _demo_cases(villages, n=n, seed=seed, settings=settings)
    with engine.begin() as conn:
        conn.execute(sa.delete(schema.cases))
    if is_postgis(engine):
        _copy_postgis(engine, cases)
    else:
        _insert_sqlite(engine, cases)
    with engine.begin() as conn:
        conn.execute(sa.insert(schema.ingest_run).values(
            kind="demo", started_at=datetime.now(), finished_at=datetime.now(), status="ok",
            rows_read=n, inserted=n, message=marker))
        if is_postgis(engine):
            conn.execute(sa.text("ANALYZE cases"))
    return f"loaded {n:,} cases in {time.perf_counter() - started:.0f} s"


def _demo_cases(villages, *, n: int, seed: int, settings: Settings) -> pd.DataFrame:
    """The demo generator's cases, in the store's column set (bookkeeping columns filled)."""
    from etl.demo import demo_cases  # a bench script may use the ETL; layers never does

    frame = demo_cases(villages, n=n, seed=seed, as_of=AS_OF, settings=settings)
    keep = [c.name for c in schema.cases.columns if c.name in frame.columns]
    frame = frame[keep].copy()
    frame["attach_method"] = "point"
    frame["row_hash"] = "bench"
    frame["run_id"] = 1
    frame["updated_at"] = pd.Timestamp(AS_OF)
    return frame


def _insert_sqlite(engine: sa.Engine, cases: pd.DataFrame) -> None:
    columns = list(cases.columns)
    data = []
    for name in columns:
        column = cases[name]
        if pd.api.types.is_datetime64_any_dtype(column) or name in _TIME_COLUMNS:
            text = np.datetime_as_string(column.to_numpy().astype("datetime64[s]"), unit="s")
            values = np.char.add(np.char.replace(text, "T", " "), ".000000").astype(object)
            values[column.isna().to_numpy()] = None
        elif column.dtype == bool:
            values = column.to_numpy().astype(int).astype(object)
        else:
            values = column.astype(object).where(column.notna(), None).to_numpy()
        data.append(values)
    rows = list(zip(*data, strict=True))
    sql = (f"INSERT INTO cases ({', '.join(columns)}) "
           f"VALUES ({', '.join('?' for _ in columns)})")
    conn = engine.raw_connection()
    try:
        cursor = conn.cursor()
        for start in range(0, len(rows), 100_000):
            cursor.executemany(sql, rows[start:start + 100_000])
        conn.commit()
    finally:
        conn.close()


def _copy_postgis(engine: sa.Engine, cases: pd.DataFrame) -> None:
    columns = list(cases.columns)
    buffer = io.StringIO()
    cases.to_csv(buffer, index=False, header=False, date_format="%Y-%m-%d %H:%M:%S")
    payload = buffer.getvalue().encode("utf-8")
    conn = engine.raw_connection()
    try:
        cursor = conn.cursor()
        with cursor.copy(f"COPY cases ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv)") as cp:
            for start in range(0, len(payload), 1 << 24):
                cp.write(payload[start:start + (1 << 24)])
        conn.commit()
    finally:
        conn.close()


# --------------------------------------------------------------------------- measurement


def _measure(engine: sa.Engine, *, runs: int, settings: Settings) -> tuple[dict, pd.DataFrame]:
    store = Store(engine, settings)
    loads = []
    for _ in range(3):
        store.clear()
        started = time.perf_counter()
        case_table(store)
        loads.append(time.perf_counter() - started)
    table = case_table(store)
    result = {"load_s": statistics.median(loads), "cases": len(table),
              "table_mb": table.nbytes() / 1e6}
    frame = compute_metrics(store, level="village", filters=FILTERS[0])
    # the first query also builds the per-level sort order for the quantiles; not timed
    compute_metrics(store, level="street", filters=FILTERS[0])
    result["filtered_village"] = _timed(runs, lambda i: compute_metrics(
        store, level="village", filters=FILTERS[i % 2]))
    result["unfiltered_village"] = _timed(runs, lambda i: compute_metrics(store, level="village"))
    result["filtered_street"] = _timed(runs, lambda i: compute_metrics(
        store, level="street", filters=FILTERS[i % 2]))
    result["baseline_sql_count"] = _timed(max(5, runs // 3), lambda i: _baseline(
        engine, FILTERS[i % 2]))
    result["units"] = int((frame["row_type"] == "unit").sum())
    return result, frame


def _measure_coverage(engine: sa.Engine, *, seed: int, settings: Settings) -> dict:
    """Cold and cached ``compute_coverage(level="village")`` over the demo station network."""
    with engine.connect() as conn:
        stations = conn.execute(sa.select(sa.func.count()).select_from(schema.station)).scalar()
    if not stations:
        from etl.demo import demo_stations

        villages = read_units(engine, level="village")
        streets = read_units(engine, level="street", with_geometry=False)
        districts = read_units(engine, level="district", with_geometry=False)
        frame = demo_stations(villages, streets, districts, seed=seed)
        keep = [c.name for c in schema.station.columns if c.name in frame.columns]
        with engine.begin() as conn:
            conn.execute(sa.insert(schema.station), frame[keep].assign(run_id=1).to_dict(
                "records"))
        with engine.connect() as conn:
            stations = conn.execute(sa.select(sa.func.count()).select_from(
                schema.station)).scalar()
    store = Store(engine, settings)
    started = time.perf_counter()
    compute_coverage(store, level="village")
    cold = time.perf_counter() - started
    cached = _timed(10, lambda i: compute_coverage(store, level="village"))
    return {"stations": int(stations), "coverage_cold_s": cold, "coverage_cached": cached}


def _timed(runs: int, call) -> dict:
    times = []
    for i in range(runs):
        started = time.perf_counter()
        call(i)
        times.append((time.perf_counter() - started) * 1000)
    return {"median_ms": statistics.median(times), "p95_ms": float(np.percentile(times, 95))}


def _baseline(engine: sa.Engine, filters: Filters) -> pd.DataFrame:
    """One count per village, filtered and grouped in the database."""
    t = schema.cases
    query = sa.select(t.c.village_code, sa.func.count()).group_by(t.c.village_code)
    if filters.date_from:
        query = query.where(t.c.registered_at >= datetime.combine(filters.date_from,
                                                                  datetime.min.time()))
    if filters.date_to:
        query = query.where(t.c.registered_at < datetime.combine(filters.date_to,
                                                                 datetime.max.time()))
    if filters.category:
        query = query.where(t.c.category.in_(filters.category))
    if filters.channel:
        query = query.where(t.c.channel.in_(filters.channel))
    with engine.connect() as conn:
        return pd.DataFrame(conn.execute(query).all())


def _identical(frames: dict[str, pd.DataFrame]) -> str:
    if len(frames) < 2:
        return "only one backend measured"
    first, *others = frames.values()
    same = all(first.equals(other) for other in others)
    return "identical on every backend" if same else "DIFFERENT between backends"


# --------------------------------------------------------------------------- report


def _render(results: dict, *, n: int, runs: int, identical: str) -> str:
    cpu = machine("numpy", "pandas")
    lines = [
        "## Metrics (layers.metrics)",
        "",
        "`bench/bench_metrics.py`: every metric (counts, densities, eight rates with numerator "
        "and denominator, backlog, median/p90 days to close) for all villages of the bundled "
        "grid, with a filter, on the in-memory columnar copy of the cases "
        "(`layers.casedata`).",
        "",
        f"- Machine: {cpu}",
        f"- Data: {n:,} demo cases (`etl.demo.demo_cases`, seed 7, as of {AS_OF}), "
        f"{next(iter(results.values()))['units']:,} villages",
        "- Filters (alternating): 2025-01-01…2025-03-31 + category 城乡建设; "
        "2024-10-01…2025-03-31 + channel 网上/来访",
        f"- Queries: median and p95 of {runs} runs each (after the copy is loaded); every "
        "query includes the store round trip that checks the copy is current",
        f"- Results: {identical}",
        f"- Load average while measuring: {os.getloadavg()[0]:.1f} on "
        f"{os.cpu_count()} cores (the machine is shared with other jobs)",
        "",
        "| backend | load copy (cold) | villages, filtered | villages, no filter | "
        "streets, filtered | baseline: SQL count per village |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for backend, r in results.items():
        def cell(key: str, r: dict = r) -> str:
            return f"{r[key]['median_ms']:.0f} ms (p95 {r[key]['p95_ms']:.0f})"

        lines.append(
            f"| {backend} | {r['load_s']:.1f} s | {cell('filtered_village')} | "
            f"{cell('unfiltered_village')} | {cell('filtered_street')} | "
            f"{cell('baseline_sql_count')} |"
        )
    first = next(iter(results.values()))
    lines += [
        "",
        f"Station coverage of all villages (`layers.coverage.compute_coverage`, "
        f"{first['stations']:,} demo stations, EPSG:4547 buffers): "
        + "; ".join(
            f"{backend} {r['coverage_cold_s']:.1f} s cold, "
            f"{r['coverage_cached']['median_ms']:.0f} ms cached"
            for backend, r in results.items()
        )
        + ".",
        "",
        "Target: ≤ 150 ms per filtered village query on both backends. The baseline computes a "
        "single count per village in the database; the layers compute every metric exactly "
        "in memory.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
