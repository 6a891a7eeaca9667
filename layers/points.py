"""Case points for the map (案件点位): each case where few, counted cells where many.

Read from the columnar table (never row by row from SQL), with the view's selection and the
rules' urgency, so a point's colour is the case's state in every list. Up to ``limit`` located
cases are returned one by one (each opens its case page); beyond that they are counted in
square cells whose size doubles until at most ``limit`` cells remain, each cell carrying its
count, how many are overdue or due soon, and its worst urgency. A whole city of a million cases
so becomes a few thousand cells: small to send and quick to draw.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import numpy as np
import pandas as pd

from geo.store import Store
from geo.vocab import STATUS_ZH
from layers.casedata import case_table
from layers.filters import Filters
from layers.metrics import case_selection
from layers.rules import URGENCY, Rules, case_state

POINT_LIMIT = 2_000
"""Individual points (or cells) sent at most."""
FIRST_CELL_DEG = 0.002
"""The smallest aggregation cell (≈ 200 m here)."""


@dataclass
class CasePoints:
    """What the case-point overlay draws.

    Attributes
    ----------
    mode
        ``points`` (one row per case) or ``cells`` (one row per counted cell).
    items
        points: case_id, lon, lat, urgency, category, status_zh; cells: lon, lat (the mean
        of the cell's cases), count, overdue, soon, urgency (the worst in the cell).
    total
        Located cases selected (the map note says how many are drawn and how).
    unlocated
        Selected cases without coordinates (placed by code or address).
    cell_deg
        The cell size in degrees (cells mode).
    """

    mode: str
    items: pd.DataFrame
    total: int
    unlocated: int
    cell_deg: float = 0.0


def case_points(
    store: Store,
    code: str,
    *,
    filters: Filters | None = None,
    as_of: datetime | date | None = None,
    only_open: bool = False,
    limit: int = POINT_LIMIT,
) -> CasePoints:
    """Return the case points of unit ``code`` for the map (see the module docstring)."""
    table = case_table(store)
    state = case_state(table, Rules.of(store.settings), as_of)
    chosen = case_selection(table, state, filters or Filters()) & table.in_unit(code)
    if only_open:
        chosen &= state.open
    lon, lat = table.numbers["lon"], table.numbers["lat"]
    located = chosen & ~np.isnan(lon) & ~np.isnan(lat)
    rows = np.flatnonzero(located)
    unlocated = int(chosen.sum() - len(rows))
    urgency = state.urgency[rows]
    if len(rows) <= limit:
        status = pd.Series(table.categoricals["status"][rows], dtype=object)
        items = pd.DataFrame({
            "case_id": table.case_id.take(rows),
            "lon": lon[rows].astype(float), "lat": lat[rows].astype(float),
            "urgency": np.asarray(URGENCY, dtype=object)[urgency],
            "category": pd.Series(table.categoricals["category"][rows], dtype=object).to_numpy(),
            "status_zh": status.map(STATUS_ZH).fillna(status).to_numpy(dtype=object),
        })
        return CasePoints("points", items, len(rows), unlocated)
    return cell_counts(lon[rows].astype(np.float64), lat[rows].astype(np.float64), urgency,
                  limit=limit, unlocated=unlocated)


def cell_counts(lon: np.ndarray, lat: np.ndarray, urgency: np.ndarray, *, limit: int,
           unlocated: int) -> CasePoints:
    """Count cases in square cells, doubling the cell until at most ``limit`` remain.

    The cases are sorted into the smallest cells once; a doubled cell is the integer half of
    its cells' indexes (``floor(floor(x / s) / 2) == floor(x / 2s)``, and halving is exact in
    floating point), so each doubling only re-counts the distinct cells, not the cases.
    """
    size = FIRST_CELL_DEG
    ix = np.floor(lon / size).astype(np.int64)
    iy = np.floor(lat / size).astype(np.int64)
    base, inverse = np.unique((ix << 32) + (iy & 0xFFFFFFFF), return_inverse=True)
    cx, cy = base >> 32, base & 0xFFFFFFFF
    cy = np.where(cy >= 1 << 31, cy - (1 << 32), cy)  # back to signed
    unique = base
    while len(unique) > limit:
        size *= 2
        cx, cy = cx >> 1, cy >> 1  # arithmetic shift: floor division by two
        unique, coarse = np.unique((cx << 32) + (cy & 0xFFFFFFFF), return_inverse=True)
        inverse = coarse[inverse]
        cx, cy = unique >> 32, unique & 0xFFFFFFFF
        cy = np.where(cy >= 1 << 31, cy - (1 << 32), cy)
    count = np.bincount(inverse)
    items = pd.DataFrame({
        "lon": np.bincount(inverse, weights=lon) / count,
        "lat": np.bincount(inverse, weights=lat) / count,
        "count": count,
        "overdue": np.bincount(inverse, weights=(urgency == 3)).astype(np.int64),
        "soon": np.bincount(inverse, weights=(urgency == 2)).astype(np.int64),
    })
    worst = np.zeros(len(unique), dtype=np.int8)
    for level in range(1, len(URGENCY)):  # the worst urgency present in each cell
        worst[np.bincount(inverse[urgency == level], minlength=len(unique)) > 0] = level
    items["urgency"] = np.asarray(URGENCY, dtype=object)[worst]
    return CasePoints("cells", items, len(lon), unlocated, cell_deg=size)
