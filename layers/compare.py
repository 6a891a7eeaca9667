"""同比 and 环比: a unit's rates against the same period a year before and the period before.

The change is in percentage points (the city's own reports speak this way: "比去年同期上升了
27 个百分点"), computed as the difference of the two periods' rates, each from
:func:`layers.views.unit_metrics` exactly as the KPI card of that period would show it. A
comparison is given only when the data covers the other period
(:func:`layers.periods.comparison_period`) and both rates rest on enough cases (the metrics'
``R_rankable``); otherwise it is None, and the dashboard shows nothing rather than a guess.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import numpy as np
import pandas as pd

from geo.store import Store
from layers.filters import Filters
from layers.metrics import RATES
from layers.periods import COMPARISONS_ZH, Period, comparison_period
from layers.views import city_view, unit_row


def comparison_filters(filters: Filters, *, first: date | None, last: date | None
                       ) -> dict[str, Filters]:
    """The filters of each comparison the data covers: {"yoy": …, "mom": …} (some may lack)."""
    out = {}
    for kind in COMPARISONS_ZH:
        other = comparison_period(Period(filters.date_from, filters.date_to), kind,
                                  first=first, last=last)
        if other is not None:
            out[kind] = replace(filters, date_from=other.start, date_to=other.end)
    return out


def kpi_changes(store: Store, code: str, *, filters: Filters, first: date | None,
                last: date | None) -> dict[str, dict[str, float | None]]:
    """For each rate, its change in percentage points: {rate: {"yoy": pp, "mom": pp}}."""
    now = unit_row(store, code, filters=filters)  # what the card shows
    out: dict[str, dict[str, float | None]] = {rate: {} for rate in RATES}
    for kind, other_filters in comparison_filters(filters, first=first, last=last).items():
        then = unit_row(store, code, filters=other_filters)
        for rate in RATES:
            out[rate][kind] = points(now, then, rate)
    return out


def ranking_changes(store: Store, code: str, *, rate: str, filters: Filters,
                    first: date | None, last: date | None) -> pd.DataFrame:
    """For each child of ``code``: its change of ``rate`` (columns code, yoy, mom; pp or NaN)."""
    now = city_view(store, code, filters=filters).ranking.set_index("code")
    out = pd.DataFrame({"code": now.index})
    for kind in COMPARISONS_ZH:
        out[kind] = np.nan
    for kind, other_filters in comparison_filters(filters, first=first, last=last).items():
        then = city_view(store, code, filters=other_filters).ranking.set_index("code")
        out[kind] = [points(now.loc[c].to_dict(), then.loc[c].to_dict() if c in then.index
                            else {}, rate) for c in out["code"]]
    return out.astype({kind: float for kind in COMPARISONS_ZH})


def points(now: dict, then: dict, rate: str) -> float | None:
    """The change of a rate in percentage points, or None without enough cases on both sides."""
    values = []
    for row in (now, then):
        value, enough = row.get(rate), row.get(rate + "_rankable")
        if value is None or pd.isna(value) or not bool(enough):
            return None
        values.append(float(value))
    return round(100 * (values[0] - values[1]), 1)

