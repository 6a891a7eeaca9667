"""Benchmark: the 1,000,000-case ingest of two source trees, run alternately (A, B, A, B …).

On a machine shared with other jobs the load can double a run's time within minutes, so
two trees timed one after the other are not comparable. This script times one ingest of
tree A, then one of tree B, and so on, each in a fresh store and its own process (the
tree's ``etl`` is what that process imports), all reading the same CSV file; a pair runs
under much the same load. Reported: each tree's median wall time and CPU time of the
ingest process (less sensitive to other jobs), the median of the per-pair ratio B / A,
and the load average before each run.

    python bench/bench_ingest_ab.py --tree-a /tmp/foundation --tree-b . \\
        --workdir /tmp/gg-bench-work --pairs 3 [--no-postgis] [--no-write]

The file and the SQLite grid template come from ``bench/bench_ingest.py --workdir``
(run it once first). Writes the section ``ingest-ab`` of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from results import machine, write_section  # noqa: E402

PG_SERVER = "postgresql://postgres@127.0.0.1/postgres"

# One timed ingest in a child process whose PYTHONPATH is the tree under test.
_CHILD = textwrap.dedent("""
    import json, sys, time
    from geo.settings import Settings
    from geo.store import Store, make_engine, upgrade_schema
    from etl.ingest import ingest_cases
    url, csv = sys.argv[1:3]
    engine = make_engine(url)
    upgrade_schema(engine)  # the template may be at an older revision (not timed)
    started, cpu = time.perf_counter(), time.process_time()
    report = ingest_cases(Store(engine, Settings()), csv, crs="gcj02")
    print(json.dumps({"total": time.perf_counter() - started, "cpu": time.process_time() - cpu,
                      "outcome": report.reconciliation_line(),
                      "timings": report.timings}))
""")


def main() -> None:
    """Alternate the two trees' ingests, print and write the comparison."""
    args = _arguments()
    work = Path(args.workdir)
    csv = next(work.glob(f"cases_{args.cases}_*.csv"))
    template = work / "grid.db"
    trees = {"A": Path(args.tree_a).resolve(), "B": Path(args.tree_b).resolve()}
    results = {}
    if not args.no_sqlite:
        results["SQLite"] = _alternate(trees, csv, args.pairs,
                                       lambda i, t: _sqlite_store(template, work, f"{t}{i}"))
    if not args.no_postgis:
        pg_template = _postgis_template(args.postgis, trees["A"])
        try:
            results["PostGIS"] = _alternate(
                trees, csv, args.pairs, lambda i, t: _postgis_store(args.postgis, pg_template))
        finally:
            _on_server(args.postgis, f'DROP DATABASE IF EXISTS "{pg_template}" WITH (FORCE)')
    text = _report(results, trees, args)
    print(text)
    if not args.no_write:
        write_section("ingest-ab", text)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tree-a", required=True, help="the baseline tree (e.g. an older commit)")
    parser.add_argument("--tree-b", default=str(REPO), help="the tree measured against it")
    parser.add_argument("--label-a", default="A")
    parser.add_argument("--label-b", default="B")
    parser.add_argument("--workdir", required=True, help="bench_ingest.py's --workdir")
    parser.add_argument("-n", "--cases", type=int, default=1_000_000)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--postgis", default=PG_SERVER)
    parser.add_argument("--no-postgis", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--no-write", action="store_true")
    return parser.parse_args()


def _alternate(trees: dict[str, Path], csv: Path, pairs: int, fresh) -> dict:  # noqa: ANN001
    runs: dict[str, list[dict]] = {"A": [], "B": []}
    for i in range(pairs):
        for name, tree in trees.items():
            url, drop = fresh(i, name)
            load = os.getloadavg()[0]
            try:
                env = {**os.environ, "PYTHONPATH": str(tree)}
                out = subprocess.run([sys.executable, "-c", _CHILD, url, str(csv)], env=env,
                                     cwd=tree, capture_output=True, text=True, check=True)
            finally:
                drop()
            result = json.loads(out.stdout.strip().splitlines()[-1])
            result["load"] = load
            runs[name].append(result)
            print(f"  pair {i + 1} {name}: {result['total']:.1f} s, CPU {result['cpu']:.1f} s "
                  f"(load {load:.1f})", flush=True)
    ratios = [b["total"] / a["total"] for a, b in zip(runs["A"], runs["B"], strict=True)]
    return {"runs": runs, "ratio": statistics.median(ratios), "ratios": ratios}


def _sqlite_store(template: Path, work: Path, name: str) -> tuple[str, object]:
    path = work / f"ab-{name}.db"
    shutil.copy(template, path)

    def drop() -> None:
        for suffix in ("", "-wal", "-shm", ".lock"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)

    return f"sqlite:///{path}", drop


def _postgis_template(server: str, tree: Path) -> str:
    """A database holding the grid (built once by tree A's code) to copy for every run."""
    name = f"gridgov_ab_template_{uuid.uuid4().hex[:8]}"
    _on_server(server, f'CREATE DATABASE "{name}"')
    url = server.rsplit("/", 1)[0] + "/" + name
    code = "import sys; from geo.store import make_engine; from geo.grid import init_store; " \
           "init_store(make_engine(sys.argv[1]))"
    subprocess.run([sys.executable, "-c", code, url], env={**os.environ, "PYTHONPATH": str(tree)},
                   cwd=tree, check=True)
    return name


def _postgis_store(server: str, template: str) -> tuple[str, object]:
    name = f"gridgov_ab_{uuid.uuid4().hex[:8]}"
    _on_server(server, f'CREATE DATABASE "{name}" TEMPLATE "{template}"')

    def drop() -> None:
        _on_server(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return server.rsplit("/", 1)[0] + "/" + name, drop


def _on_server(server: str, statement: str) -> None:
    admin = sa.create_engine(server.replace("postgresql://", "postgresql+psycopg://"),
                             isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(statement))
    admin.dispose()


def _report(results: dict, trees: dict[str, Path], args: argparse.Namespace) -> str:
    labels = {"A": args.label_a, "B": args.label_b}
    lines = [
        f"## Ingest, two trees alternately ({args.cases:,} cases)",
        "",
        "`bench/bench_ingest_ab.py` — `ingest_cases` of the same messy CSV (the file of "
        "`bench/bench_ingest.py`), one run of A then one of B, each in its own process and "
        "fresh store, so that a pair shares the machine's load (it is shared with other jobs).",
        "",
        f"- Machine: {machine('pandas', 'numpy', 'pyarrow')}",
        f"- A = {labels['A']}; B = {labels['B']}. {args.pairs} pairs per store.",
        "",
        "| store | A median | B median | B / A (median of pairs) | A CPU | B CPU | A runs (load) "
        "| B runs (load) |",
        "|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for store, r in results.items():
        def cell(name: str, r=r) -> str:
            return ", ".join(f"{x['total']:.1f} ({x['load']:.1f})" for x in r["runs"][name])

        a = statistics.median(x["total"] for x in r["runs"]["A"])
        b = statistics.median(x["total"] for x in r["runs"]["B"])
        a_cpu = statistics.median(x["cpu"] for x in r["runs"]["A"])
        b_cpu = statistics.median(x["cpu"] for x in r["runs"]["B"])
        lines.append(f"| {store} | {a:.1f} s | {b:.1f} s | **{r['ratio']:.2f}** | {a_cpu:.1f} s "
                     f"| {b_cpu:.1f} s | {cell('A')} | {cell('B')} |")
    lines.append("")
    for store, r in results.items():
        for name in ("A", "B"):
            lines.append(f"- {store}, {name}: {r['runs'][name][-1]['outcome']}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
