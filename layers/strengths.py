"""镇街"两强": each street's 吸附能力 (absorbing petitions locally) against its 化解能力 (resolving them).

For the streets of a district (or of the city), in the view's window and filters:

- 吸附率 (absorption): cases first registered at street level or below (镇街, 村居) ÷ cases
  whose registering level is known; 越级率: registered at city level or above (市, 省, 国家) ÷
  the same. Counted on the cases registered in the window, exactly as every count is
  (:func:`layers.metrics.case_selection`).
- 化解能力: the street's 一次性化解率 and 按期办结率 (:func:`layers.views.unit_metrics`).

A street is strong in absorption when its 吸附率 is at least the median of the streets shown, and
strong in resolution when both its rates are at least their medians [I]; 两强 when both. Only
streets whose rates rest on enough cases (``R_rankable``) take part; the others are listed
without a quadrant.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from geo.store import Store
from geo.vocab import CITY_CODE
from layers.casedata import case_table
from layers.filters import Filters
from layers.metrics import case_selection
from layers.rules import Rules, case_state
from layers.views import unit_metrics

LOCAL = ("镇街", "村居")
"""Registering levels that count as absorbed (street level or below)."""
ABOVE = ("市", "省", "国家")
"""Registering levels that count as 越级 (city level or above)."""
RESOLVE = ("first_time_resolution", "on_time_completion")
"""The rates of 化解能力."""


def two_strengths(store: Store, code: str, *, filters: Filters) -> pd.DataFrame:
    """Return the streets of unit ``code`` (a district or the city) with both strengths.

    Cached until the data changes (the server warms every district's before it serves).

    Returns
    -------
    DataFrame
        Columns code, name, cases, known, absorb, skip (fractions or NaN), the two rates,
        ``ranked`` (enough cases for both rates), ``strong_absorb``, ``strong_resolve``,
        ``both`` (两强); streets sorted by name.
    """
    return store.cached(("two_strengths", code, filters),
                        lambda: _two_strengths(store, code, filters=filters), shared=True)


def _two_strengths(store: Store, code: str, *, filters: Filters) -> pd.DataFrame:
    parent = None if code == CITY_CODE else code
    streets = unit_metrics(store, level="street", filters=filters, parent_code=parent)
    streets = streets[streets["row_type"] == "unit"]
    if parent:
        streets = streets[streets["parent_code"] == parent]
    out = streets[["code", "name", "cases", *RESOLVE,
                   *(r + "_rankable" for r in RESOLVE)]].copy()
    known, local, above = _levels(store, filters)
    out["known"] = [int(known.get(c, 0)) for c in out["code"]]
    with np.errstate(divide="ignore", invalid="ignore"):
        out["absorb"] = [local.get(c, 0) / known[c] if known.get(c) else np.nan
                         for c in out["code"]]
        out["skip"] = [above.get(c, 0) / known[c] if known.get(c) else np.nan
                       for c in out["code"]]
    ranked = out[[r + "_rankable" for r in RESOLVE]].fillna(False).astype(bool).all(axis=1) \
        & out["absorb"].notna()
    out["ranked"] = ranked
    shown = out[ranked]
    median = {c: shown[c].median() for c in ("absorb", *RESOLVE)} if len(shown) else {}
    out["strong_absorb"] = ranked & (out["absorb"] >= median.get("absorb", np.inf))
    out["strong_resolve"] = ranked & np.logical_and.reduce(
        [out[r] >= median.get(r, np.inf) for r in RESOLVE])
    out["both"] = out["strong_absorb"] & out["strong_resolve"]
    return out.sort_values("name").reset_index(drop=True)


def _levels(store: Store, filters: Filters) -> tuple[dict, dict, dict]:
    """Per street code: cases with a known registering level, absorbed ones, 越级 ones."""
    table = case_table(store)
    state = case_state(table, Rules.of(store.settings), None)
    selected = case_selection(table, state, filters) & ~table.is_missing("registered_level")
    codes = table.codes("street_code")
    names = table.categories("street_code")
    out = []
    for mask in (selected, selected & table.is_value("registered_level", LOCAL),
                 selected & table.is_value("registered_level", ABOVE)):
        picked = codes[mask & (codes >= 0)]
        counts = np.bincount(picked, minlength=len(names))
        out.append({str(names[i]): int(n) for i, n in enumerate(counts) if n})
    return out[0], out[1], out[2]
