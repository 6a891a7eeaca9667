"""Load test: many officials at once against ``gridgov serve`` (issue 15), one worker vs N.

For each server configuration (``--workers 1,4``: today's single waitress process, then
gunicorn workers) the script starts ``gridgov serve`` on the store on 127.0.0.1, waits until
it has warmed, measures its memory (PSS of the master and all workers together, from
``/proc/<pid>/smaps_rollup``; and the same server on an empty store, whose difference is what
the cases cost), then runs locust headless (``bench/locust_sessions.py``) with ``--users``
simulated users, each logging in as an account of its own (a grid worker per village, a
street account per street), in a mix of roles, and replaying their
sessions at a fixed arrival rate (``--rate`` views per second per user), bounded by
``--run-time`` and ``--max-requests``. Users log in while they are spawned (``--users / 10``
per second, a morning's logins compressed into ten seconds); statistics start once all are
in (the last login resets locust's statistics), so the figures are of views, not of the
argon2 logins. It reports,
per configuration and in the same run: p95 and median per view, views per second delivered,
errors, and memory after the run.

Why locust: a maintained load generator whose users are plain Python (the same login and
callback code as the tests, :mod:`tests.dashboard.dash_client`), with per-request statistics,
a fixed per-user throughput and a headless mode; it runs in its own process, so the server's
figures are not disturbed by the client's interpreter, and its users are ``FastHttpUser``s
(geventhttpclient), which leave more of the two cores to the server than ``requests`` does.
Install it with ``pip install -e '.[bench]'``.

Only 127.0.0.1: the script never sends a request anywhere else.

Usage::

    python bench/bench_load.py --store /tmp/scale-1m.db|postgresql://… [--empty-store /tmp/scale-empty.db]
        [--workers 1,4] [--users 50] [--rate 0.2] [--run-time 60] [--max-requests 20000]
        [--json out.json]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from load_mix import role_counts, roles  # noqa: E402
from results import process_memory, wait_http  # noqa: E402

HOST = "127.0.0.1"
MIX = {"grid_worker": 45, "street": 30, "district": 15, "city": 10}
"""Share of simulated users per role: many grid workers, few city leaders (2,850 / 178 / 11 / 1
in a real city; the heavier views are given more weight than their head count)."""


def main() -> None:
    args = _parse()
    started = time.perf_counter()
    plan_path = Path(tempfile.mkdtemp(prefix="gridgov-load-")) / "plan.json"
    plan = _plan(args)
    plan_path.write_text(json.dumps(plan, ensure_ascii=False), encoding="utf-8")
    print(f"plan ready ({time.perf_counter() - started:.0f} s): {plan['cases']:,} cases",
          file=sys.stderr)
    results = []
    for workers in args.workers:
        empty = _served(args.empty_store, workers, None, args, plan_path) if args.empty_store \
            else None
        served = _served(args.store, workers, plan_path, args, plan_path)
        served["empty_pss"] = empty["warm"]["pss"] if empty else None
        results.append(served)
        print(json.dumps(served, ensure_ascii=False)[:2000], file=sys.stderr)
    report = {"cases": plan["cases"], "users": args.users, "rate": args.rate,
              "run_time_s": args.run_time, "results": results, "load": _loadavg()}
    if args.json:
        Path(args.json).write_text(json.dumps(report, ensure_ascii=False, indent=1),
                                   encoding="utf-8")
    print(_markdown(report))


# --------------------------------------------------------------------------- the plan


def _plan(args: argparse.Namespace) -> dict:
    """Accounts (one per simulated user), the units and cases of each one's scope, filter values.

    As in a city, every grid worker holds a village of their own and every street account a
    street of its own (a district's leaders and the city's share theirs): 50 users are 50
    accounts, not one account per role whose views the server's caches would answer after
    the first user. The grid workers' villages lie in the street accounts' streets and those
    in the district accounts' districts, so a drill-down lands where others work, as it does
    in a morning meeting.
    """
    import sqlalchemy as sa

    from geo import schema
    from geo.accounts import add_user, cli_actor, create_demo_accounts, drop_demo_accounts
    from geo.settings import Settings
    from geo.store import Store, make_engine, read_units
    from layers.warnings.watcher import WarningWatcher

    settings = Settings(basemap="none", mode="demo")
    store = Store(make_engine(_url(args.store)), settings)
    if WarningWatcher(store).due():  # otherwise the server's watcher runs them mid-test
        began = time.perf_counter()
        WarningWatcher(store).check()
        print(f"warnings run first: {time.perf_counter() - began:.0f} s", file=sys.stderr)
    password, _demo = create_demo_accounts(store.engine, settings=settings)
    units = read_units(store.engine, with_geometry=False)
    parent = dict(zip(units["code"], units["parent_code"]))
    by_level = {level: list(group["code"]) for level, group in units.groupby("level")}
    city = by_level["city"][0]

    def under(code: str, level: str) -> list[str]:
        out = []
        for unit in by_level[level]:
            up = unit
            while up is not None and up != code:
                up = parent.get(up)
            if up == code:
                out.append(unit)
        return out

    c = schema.cases.c
    with store.engine.connect() as conn:
        total = conn.execute(sa.select(sa.func.count()).select_from(schema.cases)).scalar()
        categories = [row[0] for row in conn.execute(
            sa.select(c.category).where(c.category.is_not(None)).distinct().limit(6))]
        window = conn.execute(sa.select(sa.func.max(c.registered_at))).scalar()
        busiest = {level: [row[0] for row in conn.execute(
            sa.select(column).where(column.is_not(None)).group_by(column)
            .order_by(sa.func.count().desc(), column))]
            for level, column in (("district", c.district_code), ("street", c.street_code),
                                  ("village", c.village_code))}

    counts = role_counts(args.users, roles(MIX))
    districts = busiest["district"][:max(1, counts["district"])]
    streets = [s for s in busiest["street"] if parent.get(s) in districts][:max(1, counts["street"])]
    villages = [v for v in busiest["village"] if parent.get(v) in streets][
        :max(1, counts["grid_worker"])]
    scopes = {"city": [city] * counts["city"], "district": districts, "street": streets,
              "grid_worker": villages}
    actor = cli_actor()
    drop_demo_accounts(store.engine, prefix="load-")  # an earlier run's, on a store benched in place
    plan_accounts: dict[str, list[dict]] = {}
    with store.engine.connect() as conn:
        def cases(column: sa.Column | None, code: str) -> list[str]:
            query = sa.select(c.case_id).order_by(sa.func.random()).limit(60)
            if column is not None:
                query = query.where(column == code)
            return list(conn.execute(query).scalars())

        for role, codes in scopes.items():
            plan_accounts[role] = []
            for number, code in enumerate(codes[:max(1, counts[role])], start=1):
                username = f"load-{role.replace('_', '-')}-{number:02d}"
                add_user(store.engine, username=username, display_name=f"压测{number:02d}",
                         role=role, scope_code=code, password=password, settings=settings,
                         actor=actor, must_change=False, demo=True)
                level = {"city": "city", "district": "district", "street": "street",
                         "grid_worker": "village"}[role]
                if level == "city":
                    children, child_page, column = by_level["district"], "city", None
                elif level == "district":
                    children, child_page, column = under(code, "street"), "street", c.district_code
                elif level == "street":
                    children, child_page, column = under(code, "village"), "village", c.street_code
                else:
                    children, child_page, column = [], "village", c.village_code
                in_streets = [code] if level == "street" else under(code, "street") \
                    if level in ("city", "district") else []
                in_villages = [code] if level == "village" else under(code, "village")
                plan_accounts[role].append({
                    "username": username, "unit": code, "children": children,
                    "child_page": child_page, "streets": in_streets, "villages": in_villages,
                    "cases": cases(column, code),
                    "export_page": "street" if in_streets else "village",
                    "export_unit": (in_streets or in_villages or [None])[0],
                })
    store.dispose()
    window_from = (window - timedelta(days=90)).date().isoformat() if window else "2026-01-01"
    return {"password": password, "accounts": plan_accounts, "mix": MIX, "city_code": city,
            "categories": categories or ["其他"], "window_from": window_from,
            "views_per_user_s": args.rate, "export_share": args.export_share, "cases": total}


# --------------------------------------------------------------------------- one server


def _served(store_path: str, workers: int, plan: Path | None, args: argparse.Namespace,
            plan_path: Path) -> dict:
    """Start ``gridgov serve --workers N`` on a store; warm-up, memory, and (with a plan) load."""
    port = _free_port()
    base = f"http://{HOST}:{port}"
    env = {**os.environ, "GRIDGOV_BASEMAP": "none", "GRIDGOV_MODE": "demo",
           "PYTHONPATH": str(ROOT)}
    log = Path(tempfile.mkstemp(prefix="gridgov-serve-", suffix=".log")[1])
    began = time.perf_counter()
    with log.open("wb") as out:
        master = subprocess.Popen([sys.executable, "-m", "gridgov", "--db",
                                   _url(store_path), "serve", "--host", HOST,
                                   "--port", str(port), "--workers", str(workers)],
                                  env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_http(base + "/login", process=master, log=log, timeout=args.start_timeout)
        answering_s = time.perf_counter() - began
        warm = _settle(master.pid)
        warm_s = time.perf_counter() - began
        result = {"store": store_path, "workers": workers, "answering_s": answering_s,
                  "warm_s": warm_s, "warm": warm}
        if plan is None:
            return result
        cpu_before = _cpu_tree(master.pid)
        result["load"] = _locust(base, plan_path, args)
        result["server_cpu_s"] = _cpu_tree(master.pid) - cpu_before
        result["after"] = _memory_tree(master.pid)
        result["alive"] = master.poll() is None
        return result
    finally:
        master.terminate()
        try:
            master.wait(timeout=60)
        except subprocess.TimeoutExpired:
            master.kill()
            master.wait()
        log.unlink(missing_ok=True)


def _locust(base: str, plan: Path, args: argparse.Namespace) -> dict:
    """Run locust headless against ``base``; per-name statistics from its CSV."""
    if not base.startswith(f"http://{HOST}:"):
        raise SystemExit("load tests only against 127.0.0.1")
    prefix = Path(tempfile.mkdtemp(prefix="gridgov-locust-")) / "run"
    env = {**os.environ, "GRIDGOV_LOAD_PLAN": str(plan),
           "GRIDGOV_LOAD_MAX_REQUESTS": str(args.max_requests), "PYTHONPATH": str(ROOT)}
    spawn_rate = max(1.0, args.users / 10)
    began = time.perf_counter()
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-m", "locust", "-f", str(ROOT / "bench" / "locust_sessions.py"),
                    "--headless", "-u", str(args.users), "-r", str(spawn_rate),
                    "--run-time", f"{args.run_time}s", "--host", base, "--csv", str(prefix),
                    "--only-summary", "--loglevel", "WARNING",
                    "--stop-timeout", "30"],
                   env=env, check=False, timeout=args.run_time + 300,
                   stdout=subprocess.DEVNULL, stderr=Path(f"{prefix}.log").open("wb"))
    user_errors = Path(f"{prefix}.log").read_text(errors="replace").count("Traceback")
    elapsed = time.perf_counter() - began
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    locust_cpu = (children.ru_utime + children.ru_stime
                  - children_before.ru_utime - children_before.ru_stime)
    rows = list(csv.DictReader(Path(f"{prefix}_stats.csv").open(encoding="utf-8")))
    failures = list(csv.DictReader(Path(f"{prefix}_failures.csv").open(encoding="utf-8")))
    stats = {}
    for row in rows:
        key = f"{row['Type']} {row['Name']}".strip()
        stats[key] = {"n": int(row["Request Count"]), "failures": int(row["Failure Count"]),
                      "median_ms": _num(row["50%"]), "p95_ms": _num(row["95%"]),
                      "max_ms": _num(row["Max Response Time"]), "rps": float(row["Requests/s"])}
    return {"elapsed_s": elapsed, "stats": stats, "user_errors": user_errors,
            "locust_cpu_s": locust_cpu,
            "failures": [{k: f[k] for k in ("Method", "Name", "Error", "Occurrences")}
                         for f in failures][:20]}


def _num(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


# --------------------------------------------------------------------------- processes


def _url(store: str) -> str:
    """A store path is a SQLite file; a URL (``postgresql://…``) is used as it is."""
    return store if "://" in store else f"sqlite:///{store}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (the gunicorn master's workers)."""
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        try:
            todo.extend(int(p) for p in Path(f"/proc/{current}/task/{current}/children")
                        .read_text().split())
        except OSError:
            pass
    return out




def _cpu_tree(pid: int) -> float:
    """CPU seconds (user + system) of ``pid`` and its descendants, the exited ones included."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for process in _tree(pid):
        try:
            fields = Path(f"/proc/{process}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(v) for v in fields[11:15]) / tick  # utime stime cutime cstime
    return total


def _memory_tree(pid: int) -> dict:
    """PSS summed over the master and its workers (shared pages counted once), and RSS each."""
    parts = {p: process_memory(p) for p in _tree(pid)}
    return {"pss": sum(m["pss"] for m in parts.values()),
            "rss_each": [round(m["rss"]) for m in parts.values()], "processes": len(parts)}


def _settle(pid: int, *, quiet_s: float = 10.0, limit_s: float = 900.0) -> dict:
    """Wait until memory is steady for ``quiet_s`` (the single process warms in a thread)."""
    deadline = time.monotonic() + limit_s
    last, steady_since = _memory_tree(pid), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(1.0)
        now = _memory_tree(pid)
        if abs(now["pss"] - last["pss"]) > 2.0 or now["processes"] != last["processes"]:
            last, steady_since = now, time.monotonic()
        elif time.monotonic() - steady_since >= quiet_s:
            return now
    return _memory_tree(pid)


def _loadavg() -> str:
    try:
        return Path("/proc/loadavg").read_text().split(" ", 3)[:3].__str__()
    except OSError:
        return "?"


# --------------------------------------------------------------------------- report


def _markdown(r: dict) -> str:
    lines = [f"## Load: {r['users']} users, {r['rate']} views/s each, {r['run_time_s']} s, "
             f"{r['cases']:,} cases (`bench/bench_load.py`)", "",
             f"Load average at the end: {r['load']}.", "",
             "| server | views | views/s | errors | p95 view (worst view) | median view | "
             "PSS warm (minus empty) | PSS after | start / warm |",
             "|---|---|---|---|---|---|---|---|---|"]
    for s in r["results"]:
        stats = s["load"]["stats"]
        views = {k: v for k, v in stats.items() if k.startswith("VIEW ")}
        n = sum(v["n"] for v in views.values())
        errors = sum(v["failures"] for k, v in stats.items()
                     if k != "Aggregated" and not k.startswith("ALLVIEWS"))
        errors += s["load"].get("user_errors", 0)  # a user that died (e.g. a failed login)
        worst = max(views.items(), key=lambda kv: kv[1]["p95_ms"] or 0) if views else ("-", {})
        all_p95 = (stats.get("ALLVIEWS all views") or {}).get("p95_ms") or 0
        median = sorted(v["median_ms"] or 0 for v in views.values())
        empty = s.get("empty_pss")
        net = f" ({s['warm']['pss'] - empty:.0f})" if empty else ""
        label = "waitress, 1 process" if s["workers"] == 1 else f"gunicorn, {s['workers']} workers"
        lines.append(
            f"| {label} | {n} | {(stats.get('ALLVIEWS all views') or {}).get('rps', 0):.1f} | "
            f"{errors} | "
            f"{all_p95:.0f} ms ({worst[0][5:]}: {worst[1].get('p95_ms') or 0:.0f} ms) | "
            f"{median[len(median) // 2] if median else 0:.0f} ms | {s['warm']['pss']:.0f} MB{net} | "
            f"{s['after']['pss']:.0f} MB | {s['answering_s']:.0f} s / {s['warm_s']:.0f} s |")
    lines.append("")
    for s in r["results"]:
        load = s["load"]
        if "server_cpu_s" in s:
            lines.append(f"CPU during the run ({load['elapsed_s']:.0f} s, logins included), "
                         f"{s['workers']} worker(s): server {s['server_cpu_s']:.0f} s "
                         f"({s['server_cpu_s'] / load['elapsed_s']:.2f} cores), locust "
                         f"{load.get('locust_cpu_s', 0):.0f} s.")
    lines += ["", "p95 per view:", "", "| view | " + " | ".join(
        f"{s['workers']} proc" for s in r["results"]) + " |",
        "|---|" + "---|" * len(r["results"])]
    names = sorted({k for s in r["results"] for k in s["load"]["stats"] if k.startswith("VIEW ")})
    for name in names:
        cells = []
        for s in r["results"]:
            v = s["load"]["stats"].get(name)
            cells.append(f"{v['p95_ms']:.0f} ms (n={v['n']})" if v and v['n'] else "—")
        lines.append(f"| {name[5:]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--store", default="/tmp/scale-1m.db")
    parser.add_argument("--empty-store", default=None,
                        help="an initialised store without cases (memory baseline)")
    parser.add_argument("--workers", type=lambda s: [int(x) for x in s.split(",")],
                        default=[1, 2])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--rate", type=float, default=0.2, help="views per second per user")
    parser.add_argument("--run-time", type=int, default=60, help="seconds of load per server")
    parser.add_argument("--max-requests", type=int, default=20_000)
    parser.add_argument("--export-share", type=float, default=0.3,
                        help="share of session rounds that end with a CSV export")
    parser.add_argument("--start-timeout", type=float, default=900.0)
    parser.add_argument("--json", default=None, help="write the raw results here")
    return parser.parse_args()


if __name__ == "__main__":
    main()
