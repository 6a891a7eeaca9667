"""Benchmark: read 100,000 distinct address strings against the bundled grid (etl.address).

Run from the repository root::

    python bench/bench_address.py            # 100,000 addresses, 5 runs
    python bench/bench_address.py -n 20000 --runs 3 --no-write

The addresses are written the ways clerks write them, for random villages of the bundled
Guangzhou grid: with or without 广州市 and the district, district with or without 区,
street as 街道 / 街 / 镇, village as its official name or a short form (居委会, 社区, 村委会,
村), with spaces or full-width digits, followed by a road and a house number (so every
string is distinct). Timed: building the parser once, and ``AddressParser.parse_many``
over all of them (each distinct string read once). Checked: every address that names
district, street and village lands in that village.

Writes the section between ``<!-- bench:address -->`` and ``<!-- /bench:address -->`` of
docs/benchmarks.md and leaves every other section alone.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from results import DOCS, machine, write_section  # noqa: E402

from etl.address import AddressParser, name_forms  # noqa: E402
from geo.bundled import read_divisions  # noqa: E402

ROADS = ("中山路", "解放路", "人民路", "建设路", "东风路", "环市路", "新港路", "工业大道", "沿江路")
TARGET_S = 5.0
BASELINE = ("Baseline: the leftmost-name matcher this replaces (`etl.attach` at foundation "
            "8b1ca9d), on the same 100,000 strings, measured once on this machine: 5.40 s; "
            "32,542 in the right village, **20,391 in a wrong one**, 47,067 in none.")


def main() -> None:
    """Generate the addresses, time the parser, write the report."""
    args = _arguments()
    units = read_divisions()
    started = time.perf_counter()
    parser = AddressParser(units)
    build_s = time.perf_counter() - started
    texts, expected = _addresses(units, n=args.addresses, seed=args.seed)
    times = []
    for _ in range(args.runs):
        started = time.perf_counter()
        results = parser.parse_many(texts, [None] * len(texts), [None] * len(texts))
        times.append(time.perf_counter() - started)
    right = sum(r.village == e for r, e in zip(results, expected, strict=True))
    text = _report(len(texts), build_s, times, right, args.runs)
    print(text)
    if not args.no_write:
        write_section("address", text)
        print(f"wrote {DOCS}")


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", "--addresses", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-write", action="store_true", help="do not touch docs/")
    return parser.parse_args()


def _addresses(units, *, n: int, seed: int) -> tuple[list[str], list[str]]:  # noqa: ANN001
    rng = np.random.default_rng(seed)
    name = dict(zip(units["code"], units["name"], strict=True))
    parent = dict(zip(units["code"], units["parent_code"], strict=True))
    villages = units.loc[units["level"] == "village", "code"].to_numpy()
    seen: set[str] = set()
    texts, expected = [], []
    while len(texts) < n:
        village = villages[rng.integers(len(villages))]
        street = parent[village]
        district = parent[street]
        pieces = []
        if rng.random() < 0.5:
            pieces.append("广州市")
        forms = [f for f, _how in name_forms(name[district], "district")]
        pieces.append(forms[rng.integers(len(forms))])
        forms = [f for f, how in name_forms(name[street], "street") if "办" not in f]
        pieces.append(forms[rng.integers(len(forms))])
        forms = [f for f, _how in name_forms(name[village], "village")]
        pieces.append(forms[rng.integers(len(forms))])
        number = str(rng.integers(1, 2000))
        if rng.random() < 0.2:
            number = number.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
        pieces.append(ROADS[rng.integers(len(ROADS))] + number + "号")
        text = (" " if rng.random() < 0.2 else "").join(pieces)
        if text not in seen:
            seen.add(text)
            texts.append(text)
            expected.append(village)
    return texts, expected


def _report(n: int, build_s: float, times: list[float], right: int, runs: int) -> str:
    median = statistics.median(times)
    return "\n".join([
        f"## Address parsing ({n:,} distinct addresses)",
        "",
        "`bench/bench_address.py` — `etl.address.AddressParser.parse_many` over addresses "
        "written as clerks write them (with or without 广州市 and the district, short and "
        "official forms of street and village, spaces, full-width digits, a road and number).",
        "",
        f"- Machine: {machine('pandas', 'numpy')}",
        f"- Data: {n:,} distinct strings for random villages of the bundled grid "
        "(11 districts, 178 streets, 2,851 villages; 11,800 name forms).",
        f"- Target: ≤ {TARGET_S:.0f} s. Median of {runs} runs.",
        f"- {BASELINE}",
        "",
        "| measure | time |",
        "|---|---:|",
        f"| build the parser (names, forms, automaton) | {build_s:.2f} s |",
        f"| parse {n:,} addresses | **{median:.2f} s** ({n / median:,.0f} per s; runs "
        f"{', '.join(f'{t:.2f}' for t in times)}) |",
        "",
        f"- Landed in the village the text names: {right:,} of {n:,}.",
    ])


if __name__ == "__main__":
    main()
