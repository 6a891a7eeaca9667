"""显微镜 (microscope): what drives one unit's cases, compared with the city.

Three views of a unit's cases registered in the ``days`` (90) days up to the data date:

* **over-represented categories** (高发类别): for each category, the unit's count ``x`` of its
  ``n`` cases against the city's share ``p``: one-sided binomial test P(X ≥ x | n, p)
  (``scipy.special.bdtrc``, the binomial tail ``scipy.stats.binom.sf`` is built on),
  Benjamini–Hochberg across the categories (:func:`bh_adjust`); over-represented when
  q ≤ ``warning_fdr`` and ``x`` exceeds ``n × p``;
* **recurrent places** (重复发生地点): 50 m cells (EPSG:4547 coordinates floored to 50 m) holding
  two cases or more, most cases first (addresses are personal text and are not read);
* **handling units** (承办单位) with the worst 按期办结率, counted with the metric's own rule
  (:func:`layers.metrics.output_mask`: 初件 due in the window, closed on or before the due
  day), ranked when the denominator reaches ``min_cases_for_rate``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import numpy as np
import pandas as pd

from geo.crs import lonlat_to_xy, xy_to_lonlat
from geo.store import Store
from geo.vocab import CITY_CODE
from layers.casedata import NULL, case_table
from layers.lists import display_columns
from layers.metrics import output_day, output_mask
from layers.rules import Rules, case_state
from layers.warnings.records import case_ids_of

CELL_M = 50.0
TOP_PLACES = 10


@dataclass
class Microscope:
    """The 显微镜 of one unit.

    Attributes
    ----------
    categories
        category, observed, share, city_share, expected, ratio, p_value, q_value,
        over_represented — every category present in the unit or the city, most over first.
    places
        lon, lat (cell centre, WGS-84), cases, top_category, case_ids (list) — cells with ≥ 2.
    handling
        handling_unit, on_time, due, rate, rankable — worst rankable first.
    """

    code: str
    period_start: date
    period_end: date
    cases: int
    categories: pd.DataFrame
    places: pd.DataFrame
    handling: pd.DataFrame


def microscope(store: Store, code: str, *, days: int = 90, reference: str = CITY_CODE,
               as_of: datetime | date | None = None) -> Microscope:
    """Return the 显微镜 of unit ``code`` over the ``days`` days up to the data date.

    Categories are compared with ``reference`` (the city by default; an account sees only its
    own area, so the dashboard passes the account's scope unit: a street office compares a
    village with its own street, never with figures from outside its area).
    """
    table = case_table(store)
    rules = Rules.of(store.settings)
    state = case_state(table, rules, as_of)
    end = state.as_of_day
    start = end - days + 1
    day = table.days("registered_at")
    window = state.exists & (day != NULL) & (day >= start) & (day <= end)
    unit = table.in_unit(code)
    rows = np.flatnonzero(window & unit)
    from layers.casedata import day_of_number

    return Microscope(
        code=code, period_start=day_of_number(start), period_end=day_of_number(end),
        cases=len(rows),
        categories=_categories(table, rows, np.flatnonzero(window & table.in_unit(reference)),
                               store.settings.warning_fdr),
        places=_places(table, rows),
        handling=_handling(store, table, state, rules, unit, start=start, end=end),
    )


def bh_adjust(p: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (q), as ``scipy.stats.false_discovery_control``.

    Written out (five lines) because importing ``scipy.stats`` for it costs every serving
    process some 60 MB; tests check it against scipy's on random p-values.
    """
    p = np.asarray(p, dtype=float)
    m = len(p)
    if not m:
        return p
    order = np.argsort(p, kind="stable")
    scaled = p[order] * m / np.arange(1, m + 1)
    q = np.minimum.accumulate(scaled[::-1])[::-1].clip(max=1.0)
    out = np.empty(m)
    out[order] = q
    return out


def _categories(table, rows: np.ndarray, city_rows: np.ndarray, fdr: float) -> pd.DataFrame:  # noqa: ANN001
    names = np.asarray(table.categories("category"), dtype=object)
    codes = table.codes("category")
    size = len(names)
    unit_counts = np.bincount(codes[rows][codes[rows] >= 0], minlength=size)
    city_counts = np.bincount(codes[city_rows][codes[city_rows] >= 0], minlength=size)
    n, total = int(unit_counts.sum()), int(city_counts.sum())
    present = np.flatnonzero((unit_counts + city_counts) > 0)
    if not n or not total or not len(present):
        return pd.DataFrame(columns=["category", "observed", "share", "city_share", "expected",
                                     "ratio", "p_value", "q_value", "over_represented"])
    x, share = unit_counts[present], city_counts[present] / total
    # imported here: only a 显微镜 needs it, and at start it would cost every serving process
    # 13 MB (the warnings page imports this module)
    from scipy import special

    p = np.where(x > 0, special.bdtrc(np.maximum(x - 1, 0), n, share), 1.0)  # P(X ≥ x)
    q = bh_adjust(p)
    expected = n * share
    frame = pd.DataFrame({
        "category": names[present], "observed": x, "share": x / n, "city_share": share,
        "expected": expected, "ratio": np.where(expected > 0, x / np.maximum(expected, 1e-9), np.nan),
        "p_value": p, "q_value": q, "over_represented": (q <= fdr) & (x > expected),
    })
    return frame.sort_values(["over_represented", "q_value", "observed"],
                             ascending=[False, True, False]).reset_index(drop=True)


def _places(table, rows: np.ndarray) -> pd.DataFrame:  # noqa: ANN001
    lon, lat = table.numbers["lon"][rows], table.numbers["lat"][rows]
    ok = np.isfinite(lon) & np.isfinite(lat)
    rows = rows[ok]
    columns = ["lon", "lat", "cases", "top_category", "case_ids"]
    if not len(rows):
        return pd.DataFrame(columns=columns)
    x, y = lonlat_to_xy(lon[ok].astype(float), lat[ok].astype(float))
    cell = pd.DataFrame({"cx": np.floor(x / CELL_M).astype(np.int64),
                         "cy": np.floor(y / CELL_M).astype(np.int64), "row": rows})
    sizes = cell.groupby(["cx", "cy"])["row"].transform("size")
    cell = cell[sizes >= 2]
    if cell.empty:
        return pd.DataFrame(columns=columns)
    names = np.append(np.asarray(table.categories("category"), dtype=object), "未分类")
    out = []
    for (cx, cy), group in cell.groupby(["cx", "cy"]):
        member = group["row"].to_numpy()
        cats = pd.Series(names[table.codes("category")[member]])
        clon, clat = xy_to_lonlat((cx + 0.5) * CELL_M, (cy + 0.5) * CELL_M)
        out.append({"lon": round(float(clon), 6), "lat": round(float(clat), 6),
                    "cases": len(member), "top_category": cats.mode().iloc[0],
                    "case_ids": case_ids_of(table, member)})
    frame = pd.DataFrame(out, columns=columns)
    return frame.sort_values("cases", ascending=False).head(TOP_PLACES).reset_index(drop=True)


def _handling(store: Store, table, state, rules: Rules, unit: np.ndarray, *, start: int,  # noqa: ANN001
              end: int) -> pd.DataFrame:
    columns = ["handling_unit", "on_time", "due", "rate", "rankable"]
    due_day = output_day(table, rules, "on_time_completion_den")
    cohort = unit & (due_day != NULL) & (due_day >= start) & (due_day <= end)
    den = cohort & output_mask(table, state, rules, "on_time_completion_den")
    rows = np.flatnonzero(den)
    if not len(rows):
        return pd.DataFrame(columns=columns)
    num = output_mask(table, state, rules, "on_time_completion_num")[rows]
    ids = case_ids_of(table, rows)
    handling = display_columns(store.engine, ids, ("handling_unit",))
    units = handling["handling_unit"].reindex(ids).fillna("（未填承办单位）")
    frame = pd.DataFrame({"handling_unit": units.to_numpy(), "on_time": num.astype(int),
                          "due": 1}).groupby("handling_unit", as_index=False).sum()
    frame["rate"] = frame["on_time"] / frame["due"]
    frame["rankable"] = frame["due"] >= store.settings.min_cases_for_rate
    return frame.sort_values(["rankable", "rate", "due"], ascending=[False, True, False]
                             ).reset_index(drop=True)[columns]
