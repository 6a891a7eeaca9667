"""Weak signals, part 1 (弱信号): a category surging in a unit against the unit's own baseline.

Every village, street and district is tested for every content category (信访内容分类) at
once, each against its own history, in the spirit of the CDC's EARS (a short current window
against a baseline of recent weeks, with a guard band between them) — but with an exact test
that suits small counts instead of EARS' normal z-score, which breaks down at the zero and
one counts most village × category cells have:

* the **current window** is the 7 days ending on the data date; the **baseline** is the
  ``surge_baseline_weeks`` (8) weeks before a guard band of ``surge_guard_weeks`` (1) week, so
  a surge that started last week does not raise its own baseline;
* under "same rate now as in the baseline", the current count ``x`` given the total
  ``x + b`` is binomial with p = 7 / (7 + baseline days): the conditional test for two Poisson
  rates (Przyborowski & Wilenski 1940), exact and valid at any count — ``scipy.stats.binom.sf``
  gives the one-sided p-value; it also accounts for the baseline being an estimate;
* false discoveries are controlled across every unit × category cell with a case in either
  window (thousands of tests per run) with Benjamini–Hochberg
  (``scipy.stats.false_discovery_control``);
* a surge needs q ≤ ``warning_fdr``, ``x ≥ surge_min_cases`` (one case is never a surge) and
  ``x`` above the expected ``b × 7 / baseline days``; less than 14 days of baseline data: no test.

The statistic reported is the rate ratio (current rate ÷ baseline rate, with half a case in
the baseline when it has none). A warning's subject is the unit, category and calendar week
(Monday–Sunday) of the data date, so daily runs in one week update one warning.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from geo.settings import Settings
from layers.casedata import NULL, CaseTable
from layers.rules import CaseState
from layers.warnings.records import Warning, day_text, unit_names

SURGE_LEVELS = ("village", "street", "district")
CURRENT_DAYS = 7
MIN_BASELINE_DAYS = 14


def surge_tests(table: CaseTable, state: CaseState, settings: Settings) -> pd.DataFrame:
    """Test every unit × category for a surge; return one row per tested cell.

    Returns
    -------
    pandas.DataFrame
        level, unit_code, category, observed, baseline, baseline_days, expected, rate_ratio,
        p_value, q_value, surge (bool); empty when there is too little history.
    """
    window = _windows(table, state, settings)
    if window is None:
        return _empty()
    current_low, baseline_low, baseline_high = window
    baseline_days = baseline_high - baseline_low + 1
    day = table.days("registered_at")
    category = table.codes("category")
    keep = state.exists & (day != NULL) & (category >= 0) & (day >= baseline_low) \
        & (day <= state.as_of_day)
    rows = np.flatnonzero(keep)
    current = day[rows] >= current_low
    in_baseline = day[rows] <= baseline_high
    n_categories = len(table.categories("category"))
    names = np.asarray(table.categories("category"), dtype=object)
    frames = []
    for level in SURGE_LEVELS:
        index = table.levels.get(level)
        if index is None or index.units.empty:
            continue
        unit = index.case_unit[rows].astype(np.int64)
        ok = unit >= 0
        cell = unit * n_categories + category[rows]
        size = len(index.units) * n_categories
        observed = np.bincount(cell[ok & current], minlength=size)
        baseline = np.bincount(cell[ok & in_baseline], minlength=size)
        tested = np.flatnonzero(observed + baseline > 0)
        codes = index.units["code"].astype(str).to_numpy(dtype=object)
        frames.append(pd.DataFrame({
            "level": level,
            "unit_code": codes[tested // n_categories],
            "category": names[tested % n_categories],
            "observed": observed[tested],
            "baseline": baseline[tested],
        }))
    if not frames:
        return _empty()
    tests = pd.concat(frames, ignore_index=True)
    return _finish_tests(tests, baseline_days=baseline_days, settings=settings)


def surges(table: CaseTable, state: CaseState, settings: Settings) -> list[Warning]:
    """Return a warning for every significant surge (see the module docstring)."""
    tests = surge_tests(table, state, settings)
    found = tests[tests["surge"]]
    if found.empty:
        return []
    current_low = state.as_of_day - CURRENT_DAYS + 1
    week_start = state.as_of_day - (state.as_of_day + 3) % 7  # day 0 (1970-01-01) is a Thursday
    day = table.days("registered_at")
    recent = np.flatnonzero(state.exists & (day >= current_low) & (day <= state.as_of_day))
    names = unit_names(table)
    category_code = {name: i for i, name in enumerate(table.categories("category"))}
    recent_category = table.codes("category")[recent]
    out = []
    for row in found.itertuples(index=False):
        index = table.levels[row.level]
        members = recent[(index.case_unit[recent] == index.position(row.unit_code))
                         & (recent_category == category_code[row.category])]
        out.append(Warning(
            rule="surge", subject=f"{row.unit_code}|{row.category}|{week_start}",
            unit_code=row.unit_code, period_start=current_low, period_end=state.as_of_day,
            observed=float(row.observed), expected=float(row.expected),
            statistic=float(row.rate_ratio), p_value=float(row.p_value),
            q_value=float(row.q_value), rows=members, category=row.category,
            reason=(f"{names.get(row.unit_code, row.unit_code)}{day_text(current_low)} 至 "
                    f"{day_text(state.as_of_day)}“{row.category}”类 {int(row.observed)} 件，"
                    f"按前 {row.baseline_days // 7} 周基线预期 {row.expected:.1f} 件（发生率比 "
                    f"{row.rate_ratio:.1f}，p {_p(row.p_value)}，FDR 校正后 q {_p(row.q_value)}）。"),
        ))
    return out


def _windows(table: CaseTable, state: CaseState, settings: Settings
             ) -> tuple[int, int, int] | None:
    """(first day of the current window, first and last day of the baseline) or None."""
    current_low = state.as_of_day - CURRENT_DAYS + 1
    baseline_high = current_low - 7 * settings.surge_guard_weeks - 1
    baseline_low = baseline_high - 7 * settings.surge_baseline_weeks + 1
    day = table.days("registered_at")
    present = day[state.exists & (day != NULL)]
    if not len(present):
        return None
    baseline_low = max(baseline_low, int(present.min()))
    if baseline_high - baseline_low + 1 < MIN_BASELINE_DAYS:
        return None
    return current_low, baseline_low, baseline_high


def _finish_tests(tests: pd.DataFrame, *, baseline_days: int, settings: Settings
                  ) -> pd.DataFrame:
    x = tests["observed"].to_numpy(np.int64)
    b = tests["baseline"].to_numpy(np.int64)
    share = CURRENT_DAYS / (CURRENT_DAYS + baseline_days)
    p = stats.binom.sf(x - 1, x + b, share)
    p = np.where(x >= settings.surge_min_cases, p, 1.0)
    tests["baseline_days"] = baseline_days
    tests["expected"] = b * CURRENT_DAYS / baseline_days
    tests["rate_ratio"] = (x / CURRENT_DAYS) / (np.maximum(b, 0.5) / baseline_days)
    tests["p_value"] = np.clip(p, 0.0, 1.0)
    tests["q_value"] = stats.false_discovery_control(tests["p_value"].to_numpy(), method="bh") \
        if len(tests) else []
    tests["surge"] = ((tests["q_value"] <= settings.warning_fdr)
                      & (x >= settings.surge_min_cases) & (x > tests["expected"]))
    return tests


def _empty() -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype=kind) for name, kind in (
        ("level", object), ("unit_code", object), ("category", object), ("observed", np.int64),
        ("baseline", np.int64), ("baseline_days", np.int64), ("expected", float),
        ("rate_ratio", float), ("p_value", float), ("q_value", float), ("surge", bool))})


def _p(value: float) -> str:
    return f"= {value:.2g}" if value >= 1e-4 else "< 0.0001"
