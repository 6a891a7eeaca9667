"""Benchmark: vectorised GCJ-02/BD-09 conversions of geo.crs versus a per-point Python loop.

Run from the repository root::

    python bench/bench_crs.py                    # 1,000,000 points, 5 runs, updates docs
    python bench/bench_crs.py -n 100000 --runs 3 --no-write

Writes (or replaces) the section "## CRS conversion" of docs/benchmarks.md: machine, data
size, median of the runs for each vectorised call, and the baseline beside it: the same
geo.crs functions called one scalar point at a time in a Python loop (the per-point usage
style of coordtransform / eviltransform; it pays numpy's per-call overhead, so a pure-``math``
port would loop faster), timed on a subset and reported as points per second.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from results import DOCS, machine, write_section  # noqa: E402

from geo import crs  # noqa: E402

DATA = REPO / "geo" / "data"
SECTION = "## CRS conversion"


def _time(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--points", type=int, default=1_000_000)
    parser.add_argument("--loop-points", type=int, default=20_000, help="baseline subset")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-write", action="store_true", help="do not touch docs/benchmarks.md")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(3)
    lon = rng.uniform(112.96, 114.06, args.points)
    lat = rng.uniform(22.51, 23.93, args.points)
    g_lon, g_lat = crs.wgs84_to_gcj02(lon, lat)
    sub = slice(0, min(args.loop_points, args.points))

    rows = []
    for name, func, x, y in [
        ("wgs84_to_gcj02", crs.wgs84_to_gcj02, lon, lat),
        ("gcj02_to_wgs84 (iterative)", crs.gcj02_to_wgs84, g_lon, g_lat),
        ("bd09_to_wgs84", crs.bd09_to_wgs84, *crs.gcj02_to_bd09(g_lon, g_lat)),
    ]:
        vec = _time(lambda f=func, a=x, b=y: f(a, b), args.runs)
        xs, ys = x[sub].tolist(), y[sub].tolist()
        loop = _time(
            lambda f=func, a=xs, b=ys: [f(p, q) for p, q in zip(a, b, strict=True)],
            max(1, args.runs // 2),
        )
        rows.append((name, vec, args.points / vec, len(xs) / loop))
        print(
            f"{name:28s} vectorised {vec:8.3f} s   {args.points / vec:12,.0f} pt/s   "
            f"loop {len(xs) / loop:10,.0f} pt/s"
        )

    districts = gpd.read_file(DATA / "districts_gcj02.geojson")
    n_vertices = int(shapely.get_num_coordinates(districts.geometry.values).sum())
    poly = _time(
        lambda: crs.transform_geometry(districts.geometry, source="gcj02", target="wgs84"),
        args.runs,
    )
    print(f"districts gcj02->wgs84: {n_vertices} vertices in {poly * 1000:.1f} ms")

    lines = [
        SECTION,
        "",
        f"Machine: {machine('numpy', 'shapely')}.",
        f"Data: {args.points:,} uniform random points over Guangzhou's bounds; baseline loop on "
        f"the first {len(lon[sub]):,}. Median of {args.runs} runs (baseline: "
        f"{max(1, args.runs // 2)}). Script: `bench/bench_crs.py`.",
        "",
        "| call | vectorised, s | vectorised, points/s | baseline: scalar-call loop, points/s |",
        "|---|---:|---:|---:|",
        *[f"| `{n}` | {v:.3f} | {r:,.0f} | {b:,.0f} |" for n, v, r, b in rows],
        "",
        f"`transform_geometry` of the 11 real district polygons ({n_vertices:,} vertices, "
        f"GCJ-02 → WGS-84): {poly * 1000:.1f} ms.",
    ]
    text = "\n".join(lines)
    if not args.no_write:
        write_section("crs", text)
        print(f"wrote {DOCS}")
    else:
        print(text)


if __name__ == "__main__":
    main()
