"""Attach cases and stations to the grid (落格): point, nearest, code, address, unassigned.

The rule, applied to every row in this order, each step only to rows the previous
steps left unplaced:

1. **point** — the point lies in a cell of the finest level in the store (grid cells
   if any are loaded, else villages); a point on a shared border goes to the cell with
   the smallest code (geo.locate's tie rule, deterministic);
2. **nearest** — the point lies outside every cell but within
   ``settings.nearest_max_m`` of one (rivers, coastline, GPS noise); the distance is kept;
3. **code** — a given grid/village/street code (网格/村居/镇街代码, or 问题属地代码 of that
   level) that exists in the current grid;
4. **address** — 问题属地 and the address text read level by level below what a code
   already gives (:mod:`etl.address`): a district, a street inside it, a village inside
   that street; never a village the text does not pin down. The finest level reached is
   kept, with the reason it stops there and the candidate units (``attach_level``,
   ``attach_note``, ``attach_candidates``) and which parts matched (``address_match``);
   ``attach_level`` is filled for every case placed by code or address (a point always
   lies in a cell of the finest level, so point and nearest leave it empty);
5. **code** (street or district) — a known street or district code the address could not
   refine: the case counts for that unit;
6. **unassigned** — kept and counted (未落格).

An office's correction of a case's village (:mod:`etl.corrections`) overrides all of this
at every later ingest and re-attach.

Parents (street, district) always come from the attached unit's own codes, not from the
source. Location is done by :mod:`geo.locate`; this module only orders the fallbacks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
from sqlalchemy.engine import Engine

from etl.address import SEP, AddressMatch, AddressParser, read_aliases
from etl.clean import Extent
from geo.errors import StoreError
from geo.locate import PointLocator, attach_points
from geo.settings import Settings
from geo.store import Store, current_boundary_version, read_units
from geo.vocab import LEVELS

ATTACH_COLUMNS: tuple[str, ...] = (
    "grid_code", "village_code", "street_code", "district_code", "attach_method",
    "attach_distance_m", "attach_level", "attach_note", "attach_candidates", "address_match",
)
CODE_LEVELS: tuple[str, ...] = ("grid", "village", "street", "district")
_DEPTH = {"district": 1, "street": 2, "village": 3, "grid": 4}


@dataclass
class GridIndex:
    """Everything needed to attach points to the current grid, built once per version.

    Attributes
    ----------
    units
        Current units (no geometry): code, name, level, parent_code, indexed by code.
    level
        The finest level present (grid, else village …) that points attach to.
    locator
        geo.locate.PointLocator over the cells of ``level``.
    extent
        Box of those cells (WGS-84).
    boundary_version
        The store's current boundary version.
    aliases
        The user's address aliases (``settings.address_aliases_file``), or None.
    """

    units: pd.DataFrame
    level: str
    locator: PointLocator
    extent: Extent
    boundary_version: int
    aliases: pd.DataFrame | None = None

    @cached_property
    def ancestors(self) -> pd.DataFrame:
        """Per unit code: its own and its parents' grid/village/street/district codes."""
        parent = self.units["parent_code"].to_dict()
        level = self.units["level"].to_dict()
        rows = {}
        for code in self.units.index:
            chain = dict.fromkeys(CODE_LEVELS)
            node = code
            while node is not None and node in level:
                if level[node] in chain:
                    chain[level[node]] = node
                node = parent.get(node)
            rows[code] = chain
        frame = pd.DataFrame.from_dict(rows, orient="index", columns=list(CODE_LEVELS))
        return frame.astype(object).where(frame.notna(), None)

    @cached_property
    def cell_ancestors(self) -> dict[str, np.ndarray]:
        """Ancestor codes per locator cell index, as object arrays (for fast take)."""
        table = self.ancestors.reindex(self.locator.codes)
        return {lvl: table[lvl].to_numpy(dtype=object) for lvl in CODE_LEVELS}

    @cached_property
    def level_rank(self) -> pd.Series:
        """Code → depth of its level (district 1 … grid 4); unknown codes are missing."""
        ranks = {lvl: i for i, lvl in enumerate(LEVELS)}
        return self.units["level"].map(ranks)

    @cached_property
    def address(self) -> AddressParser:
        """The address reader over this grid's names and the user's aliases (etl.address)."""
        return AddressParser(self.units, aliases=self.aliases)


def grid_index(store: Store) -> GridIndex:
    """Return the attach index of the store's current grid (cached in the store).

    Building it takes about a second, so it is kept across data writes and rebuilt only when
    the boundary version changes.

    Raises
    ------
    StoreError
        When no grid is loaded (run ``gridgov init`` first).
    """
    engine = store.engine
    alias_file = store.settings.address_aliases_file

    def stamp() -> tuple:
        return current_boundary_version(engine), _file_stamp(alias_file)

    def build() -> GridIndex:
        version = current_boundary_version(engine)
        if version is None:
            raise StoreError(
                "数据库中还没有网格，请先运行 gridgov init / no grid in the store: run `gridgov init`"
            )
        index = _build_index(engine, int(version))
        if alias_file:
            index.aliases = read_aliases(alias_file, known_codes=index.units.index)
        return index

    return store.cached_on(("grid_index", alias_file), stamp, build)


def _file_stamp(path: str) -> tuple | None:
    if not path:
        return None
    try:
        stat = os.stat(path)
    except OSError:
        return (path, None)
    return (path, stat.st_mtime_ns, stat.st_size)


def attach_frame(frame: pd.DataFrame, grid: GridIndex, *, settings: Settings) -> pd.DataFrame:
    """Attach every row of a cleaned frame; see the module docstring for the rule.

    Returns
    -------
    DataFrame
        :data:`ATTACH_COLUMNS`, same index as ``frame``.
    """
    return pd.DataFrame(attach_columns(frame, frame["lon"].to_numpy(float),
                                       frame["lat"].to_numpy(float), grid, settings=settings),
                        index=frame.index)


def attach_columns(frame: pd.DataFrame, lon: np.ndarray, lat: np.ndarray, grid: GridIndex, *,
                   settings: Settings) -> dict[str, np.ndarray]:
    """The rule of :func:`attach_frame` as arrays, for rows whose points are ``lon``/``lat``.

    A live case (one row, :mod:`etl.intake`) then builds no frame of ten columns for a row it
    reads straight back; ``frame`` is read only for the hints of rows no point places.

    Parameters
    ----------
    frame
        Cleaned rows with, optionally, the hint columns grid_code, village_code, street_code,
        district_code, problem_place_code, problem_place and address.
    lon, lat
        The rows' points, WGS-84, NaN when unknown.

    Returns
    -------
    dict
        :data:`ATTACH_COLUMNS` → an array of ``len(frame)`` values.
    """
    n = len(frame)
    attached = np.full(n, None, dtype=object)  # code of the unit attached to
    method = np.full(n, "unassigned", dtype=object)
    distance = np.full(n, np.nan)
    note = np.full(n, None, dtype=object)
    candidates = np.full(n, None, dtype=object)
    parts = np.full(n, None, dtype=object)
    result = attach_points(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float),
                           grid.locator, max_distance_m=settings.nearest_max_m)
    placed = result.index >= 0
    out = {lvl: np.full(n, None, dtype=object) for lvl in CODE_LEVELS}
    for lvl in CODE_LEVELS:
        out[lvl][placed] = grid.cell_ancestors[lvl][result.index[placed]]
    method[placed] = result.method[placed]
    distance[placed] = np.where(result.method[placed] == "nearest", result.distance_m[placed],
                                np.nan)
    attached[placed] = grid.locator.codes[result.index[placed]]
    todo = np.flatnonzero(~placed)
    if len(todo):
        hints = frame.iloc[todo]
        best, best_level = _code_hints(hints, grid)
        by_code = np.isin(best_level, ("grid", "village"))
        attached[todo[by_code]] = best[by_code]
        method[todo[by_code]] = "code"
        rest = todo[~by_code]
        if len(rest):
            known, known_level = best[~by_code], best_level[~by_code]
            found = _match_address(frame.iloc[rest], known, known_level, grid)
            for i, (row, match) in enumerate(zip(rest, found, strict=True)):
                hint_depth = _DEPTH.get(known_level[i], 0)
                if match.depth > hint_depth:
                    attached[row], method[row] = match.code, "address"
                elif known[i] is not None:
                    attached[row], method[row] = known[i], "code"
                note[row] = match.note
                candidates[row] = grid.address.describe(match.candidates) or None
                parts[row] = match.parts
        fallback = todo[method[todo] != "unassigned"]
        table = grid.ancestors.reindex(attached[fallback])
        for lvl in CODE_LEVELS:
            out[lvl][fallback] = table[lvl].to_numpy(dtype=object)
    level = np.full(n, None, dtype=object)  # point/nearest: a cell of grid.level, left empty
    if len(todo):
        known = todo[method[todo] != "unassigned"]
        level[known] = grid.units["level"].reindex(attached[known]).to_numpy(dtype=object)
    return {
        "grid_code": out["grid"], "village_code": out["village"], "street_code": out["street"],
        "district_code": out["district"], "attach_method": method, "attach_distance_m": distance,
        "attach_level": level, "attach_note": note,
        "attach_candidates": candidates, "address_match": parts,
    }


# -- helpers -------------------------------------------------------------------------------


def _build_index(engine: Engine, version: int) -> GridIndex:
    attrs = read_units(engine, with_geometry=False)
    levels = [lvl for lvl in CODE_LEVELS if (attrs["level"] == lvl).any()]
    if not levels:
        raise StoreError("网格中没有区/镇街/村居单元 / the grid holds no units below the city")
    finest = levels[0]
    cells = read_units(engine, level=finest)
    locator = PointLocator(cells["code"].tolist(), cells.geometry.to_numpy())
    minx, miny, maxx, maxy = cells.total_bounds
    units = attrs[["code", "name", "level", "parent_code"]].set_index("code")
    units = units.astype(object).where(units.notna(), None)
    return GridIndex(units, finest, locator, Extent(minx, miny, maxx, maxy), version)


def _code_hints(hints: pd.DataFrame, grid: GridIndex) -> tuple[np.ndarray, np.ndarray]:
    """Return the finest known unit code per row (any level below the city) and its level.

    Codes come from the grid/village/street/district code columns and 问题属地代码 (or a
    code written in the 问题属地 column).
    """
    candidates = []
    for column in ("grid_code", "village_code", "problem_place_code", "street_code",
                   "district_code", "problem_place"):
        if column in hints:
            candidates.append(hints[column].astype(object).where(hints[column].notna(), None))
    n = len(hints)
    if not candidates:
        return np.full(n, None, dtype=object), np.full(n, None, dtype=object)
    stacked = pd.concat(candidates, axis=1, ignore_index=True)
    ranks = np.stack([c.map(grid.level_rank).to_numpy(dtype=float) for c in candidates], axis=1)
    ranks = np.where(np.isnan(ranks), -1, ranks)
    best = ranks.argmax(axis=1)
    best_rank = ranks[np.arange(n), best]
    codes = stacked.to_numpy(dtype=object)[np.arange(n), best]
    usable = best_rank >= LEVELS.index("district")
    codes = np.where(usable, codes, None)
    levels = np.array([LEVELS[int(r)] if ok else None for r, ok in zip(best_rank, usable)],
                      dtype=object)
    return codes, levels


def _match_address(rows: pd.DataFrame, known: np.ndarray, known_level: np.ndarray,
                   grid: GridIndex) -> list[AddressMatch]:
    """Read 问题属地 and 地址 (in that order) below the unit a code already gives."""
    text = None
    for column in ("problem_place", "address"):
        if column in rows:
            part = rows[column].astype(object).where(rows[column].notna(), "").to_numpy(object)
            text = part if text is None else text + SEP + part
    n = len(rows)
    if text is None:
        text = np.full(n, "", dtype=object)
    district = [grid.ancestors.at[c, "district"] if c is not None else None for c in known]
    street = [c if lvl == "street" else None for c, lvl in zip(known, known_level)]
    return grid.address.parse_many(list(text), district, street)
