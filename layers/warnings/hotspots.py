"""Weak signals, part 2 (弱信号): hot and emerging hot spots of villages (Getis-Ord Gi*).

A village is part of a hot spot when it *and its neighbours* have more cases per resident
than chance spreads across the city: the local Gi* statistic (Getis & Ord 1992, with the
focal unit included) from PySAL's ``esda.G_Local(y, w, transform="B", star=True)``, on

* ``y`` = cases per 10,000 residents registered in the 28 days ending on the data date;
* ``w`` = queen contiguity of the current villages (a shared edge or corner), built with
  ``libpysal.graph.Graph.build_fuzzy_contiguity`` in EPSG:4547 with a 1 m buffer, so that
  borders drawn from different sources with sub-metre gaps still touch; cached per boundary
  version (:func:`village_graph`);
* inference from the normal approximation (``permutations=0``: deterministic, so the same
  inputs give the same warnings), one-sided for hot spots: p = P(Z ≥ z);
* Benjamini–Hochberg across all villages (``scipy.stats.false_discovery_control``).

A village is **hot** when z > 0, q ≤ ``warning_fdr`` and its own count exceeds what the city's
rate predicts for its population (a quiet village next to a hot one is not itself warned).
It is an **emerging** hot spot when it is hot now, was not in the previous 28 days — its Gi* z
then stayed below 1.645, not merely short of significance (hysteresis, so a persistent hot spot
whose significance flickers is not new every time it returns) — and its own count rose
(one-sided conditional test of the two periods, p ≤ 0.05). Each emerging hot spot is a yellow
warning (subject: the village and the 28-day block of the data
date, so it is warned at most once per block), every hot village is drawn on the map.
"""

from __future__ import annotations

import warnings as pywarnings

import geopandas as gpd
import numpy as np
import pandas as pd
from scipy import stats

from geo.crs import to_projected
from geo.settings import Settings
from geo.store import Store, current_boundary_version, read_units
from layers.casedata import NULL, CaseTable
from layers.rules import CaseState
from layers.warnings.records import Warning, day_text, unit_names

PERIOD_DAYS = 28
CONTIGUITY_BUFFER_M = 1.0
QUIET_Z = 1.645
"""Before an emerging hot spot, its Gi* z stayed below the one-sided 5 % point (hysteresis:
a persistent hot spot whose significance flickers is not "new" each time it returns)."""
RISE_P = 0.05
"""... and its own count rose: P(X ≥ now | now + before, ½) ≤ 5 % (two equal periods)."""


def village_graph(store: Store):  # noqa: ANN201 - a libpysal Graph (imported lazily)
    """Return the queen contiguity graph of the current villages, ordered by code (cached)."""
    engine = store.engine

    def build():  # noqa: ANN202
        villages = read_units(engine, level="village")
        return contiguity_graph(villages)

    return store.cached_on(("village_graph",), lambda: current_boundary_version(engine), build)


def contiguity_graph(units: gpd.GeoDataFrame):  # noqa: ANN201
    """Queen contiguity (shared edge or corner, 1 m tolerance) of ``units``, indexed by code."""
    from libpysal.graph import Graph

    frame = units[["code", "geometry"]].sort_values("code").set_index("code")
    return Graph.build_fuzzy_contiguity(to_projected(frame), buffer=CONTIGUITY_BUFFER_M)


def hotspot_tests(table: CaseTable, state: CaseState, settings: Settings, graph) -> pd.DataFrame:  # noqa: ANN001
    """Gi* for every village now and in the previous 28 days; one row per village.

    Returns
    -------
    pandas.DataFrame
        code, name, population, observed, expected, rate_per_10k, z, p_value, q_value, hot,
        hot_before, observed_before, z_before, rising, emerging, in village-code order.
    """
    index = table.levels.get("village")
    if index is None or index.units.empty:
        return pd.DataFrame()
    units = index.units
    codes = units["code"].astype(str).to_numpy()
    if list(graph.unique_ids) != list(codes):
        raise ValueError("contiguity graph and case table name different villages; rebuild it")
    population = _population(units)
    now = _period(table, state, index.case_unit, end=state.as_of_day, n=len(units))
    before = _period(table, state, index.case_unit, end=state.as_of_day - PERIOD_DAYS,
                     n=len(units))
    current = gi_star(now, population, graph, settings)
    previous = gi_star(before, population, graph, settings)
    frame = pd.DataFrame({
        "code": codes,
        "name": units["name"].astype(str).to_numpy(),
        "population": population,
        "observed": now,
        "expected": current["expected"],
        "rate_per_10k": now / population * 1e4,
        "z": current["z"],
        "p_value": current["p"],
        "q_value": current["q"],
        "hot": current["hot"],
        "hot_before": previous["hot"],
        "observed_before": before,
        "z_before": previous["z"],
    })
    rising = stats.binom.sf(now - 1, now + before, 0.5) <= RISE_P
    frame["rising"] = rising
    frame["emerging"] = frame["hot"] & (frame["z_before"] < QUIET_Z) & rising
    return frame


def hotspots(table: CaseTable, state: CaseState, settings: Settings, graph,  # noqa: ANN001
             tests: pd.DataFrame | None = None) -> list[Warning]:
    """Return a warning for every emerging hot spot (see the module docstring).

    ``tests`` are :func:`hotspot_tests` already computed on the same table and state (the
    warnings run computes them once for the warnings and for the map's hot villages).
    """
    if tests is None:
        tests = hotspot_tests(table, state, settings, graph)
    if tests.empty:
        return []
    found = tests[tests["emerging"]]
    start = state.as_of_day - PERIOD_DAYS + 1
    block = state.as_of_day - (state.as_of_day - 4) % PERIOD_DAYS  # 28-day blocks from a Monday
    day = table.days("registered_at")
    index = table.levels["village"]
    recent = np.flatnonzero(state.exists & (day >= start) & (day <= state.as_of_day))
    names = unit_names(table)
    out = []
    for row in found.itertuples(index=False):
        members = recent[index.case_unit[recent] == index.position(row.code)]
        out.append(Warning(
            rule="hotspot", subject=f"{row.code}|{block}", unit_code=row.code,
            period_start=start, period_end=state.as_of_day, observed=float(row.observed),
            expected=float(row.expected), statistic=float(row.z), p_value=float(row.p_value),
            q_value=float(row.q_value), rows=members,
            reason=(f"{names.get(row.code, row.name)}{day_text(start)} 至 {day_text(state.as_of_day)}"
                    f"共 {int(row.observed)} 件（每万人 {row.rate_per_10k:.1f} 件，按全市发生率预期 "
                    f"{row.expected:.1f} 件），与相邻村居构成热点（Gi* z = {row.z:.2f}，q = "
                    f"{row.q_value:.2g}），上一个 28 天不是热点：新发热点。"),
        ))
    return out


def _population(units: pd.DataFrame) -> np.ndarray:
    population = pd.to_numeric(units["population"], errors="coerce").to_numpy(dtype=float)
    good = np.isfinite(population) & (population > 0)
    fill = float(np.median(population[good])) if good.any() else 1000.0
    return np.where(good, population, fill)


def _period(table: CaseTable, state: CaseState, case_unit: np.ndarray, *, end: int,
            n: int) -> np.ndarray:
    day = table.days("registered_at")
    keep = state.exists & (day != NULL) & (day > end - PERIOD_DAYS) & (day <= end) \
        & (case_unit >= 0)
    return np.bincount(case_unit[keep], minlength=n).astype(float)


def gi_star(counts: np.ndarray, population: np.ndarray, graph, settings: Settings) -> dict:  # noqa: ANN001
    n = len(counts)
    expected = population * (counts.sum() / population.sum()) if population.sum() else counts
    rates = counts / population * 1e4
    if n < 3 or counts.sum() == 0 or np.ptp(rates) == 0:
        return {"z": np.zeros(n), "p": np.ones(n), "q": np.ones(n),
                "hot": np.zeros(n, dtype=bool), "expected": expected}
    from esda.getisord import G_Local

    with pywarnings.catch_warnings():
        pywarnings.simplefilter("ignore", RuntimeWarning)  # islands: 0/0 where a unit has no lag
        result = G_Local(rates, graph, transform="B", star=True, permutations=0)
    z = np.nan_to_num(np.asarray(result.Zs, dtype=float), nan=0.0)
    p = stats.norm.sf(z)
    q = stats.false_discovery_control(p, method="bh")
    hot = (z > 0) & (q <= settings.warning_fdr) & (counts > expected)
    return {"z": z, "p": p, "q": q, "hot": hot, "expected": expected}


def hot_unit_codes(tests: pd.DataFrame) -> dict[str, str]:
    """Code → 'emerging' / 'hot' of every hot village (for the map layer)."""
    if tests.empty:
        return {}
    hot = tests[tests["hot"]]
    return {code: ("emerging" if emerging else "hot")
            for code, emerging in zip(hot["code"], hot["emerging"], strict=True)}

