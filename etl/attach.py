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
4. **address** — a village or street name found in the address text (or 问题属地 name),
   restricted to the district when one is known (given code, or district name in the
   text); a name that still fits several units does not attach;
5. **code** (district only) — a known district code: the case counts for its district;
6. **unassigned** — kept and counted (未落格).

Parents (street, district) always come from the attached unit's own codes, not from the
source. Location is done by :mod:`geo.locate`; this module only orders the fallbacks.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
from sqlalchemy.engine import Engine

from etl.clean import Extent
from geo.errors import StoreError
from geo.locate import PointLocator, attach_points
from geo.settings import Settings
from geo.store import Store, current_boundary_version, read_units
from geo.vocab import LEVELS

ATTACH_COLUMNS: tuple[str, ...] = (
    "grid_code", "village_code", "street_code", "district_code", "attach_method",
    "attach_distance_m",
)
CODE_LEVELS: tuple[str, ...] = ("grid", "village", "street", "district")
_NAME_SUFFIXES = ("社区居民委员会", "居民委员会", "村民委员会", "居委会", "村委会", "委员会")


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
    """

    units: pd.DataFrame
    level: str
    locator: PointLocator
    extent: Extent
    boundary_version: int

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
    def names(self) -> dict[str, dict[str, list[str]]]:
        """Per level: searchable name → codes bearing it (full names and short forms)."""
        result: dict[str, dict[str, list[str]]] = {}
        for lvl in ("district", "street", "village", "grid"):
            sub = self.units[self.units["level"] == lvl]
            table: dict[str, list[str]] = {}
            for code, name in zip(sub.index, sub["name"], strict=True):
                for form in _name_forms(str(name), lvl):
                    table.setdefault(form, []).append(code)
            result[lvl] = table
        return result


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

    def build() -> GridIndex:
        version = current_boundary_version(engine)
        if version is None:
            raise StoreError(
                "数据库中还没有网格，请先运行 gridgov init / no grid in the store: run `gridgov init`"
            )
        return _build_index(engine, int(version))

    return store.cached_on(("grid_index",), lambda: current_boundary_version(engine), build)


def attach_frame(frame: pd.DataFrame, grid: GridIndex, *, settings: Settings) -> pd.DataFrame:
    """Attach every row of a cleaned frame; see the module docstring for the rule.

    Parameters
    ----------
    frame
        Cleaned rows with lon/lat (WGS-84, NaN when unknown) and, optionally, the hint
        columns grid_code, village_code, street_code, district_code, problem_place_code,
        problem_place and address.

    Returns
    -------
    DataFrame
        :data:`ATTACH_COLUMNS`, same index as ``frame``.
    """
    n = len(frame)
    attached = np.full(n, None, dtype=object)  # code of the unit attached to
    method = np.full(n, "unassigned", dtype=object)
    distance = np.full(n, np.nan)
    result = attach_points(frame["lon"].to_numpy(float), frame["lat"].to_numpy(float),
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
        fine, district = _code_hints(hints, grid)
        by_code = fine.notna().to_numpy()
        attached[todo[by_code]] = fine[by_code].to_numpy(dtype=object)
        method[todo[by_code]] = "code"
        rest = todo[~by_code]
        if len(rest):
            by_address = _match_address(frame.iloc[rest], district[~by_code], grid)
            hit = by_address.notna().to_numpy()
            attached[rest[hit]] = by_address[hit].to_numpy(dtype=object)
            method[rest[hit]] = "address"
            left = ~hit & district[~by_code].notna().to_numpy()
            attached[rest[left]] = district[~by_code][left].to_numpy(dtype=object)
            method[rest[left]] = "code"
        fallback = todo[method[todo] != "unassigned"]
        table = grid.ancestors.reindex(attached[fallback])
        for lvl in CODE_LEVELS:
            out[lvl][fallback] = table[lvl].to_numpy(dtype=object)
    return pd.DataFrame({
        "grid_code": out["grid"], "village_code": out["village"], "street_code": out["street"],
        "district_code": out["district"], "attach_method": method, "attach_distance_m": distance,
    }, index=frame.index)


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


def _name_forms(name: str, level: str) -> set[str]:
    forms = {name}
    for suffix in _NAME_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix) + 1:
            short = name[: -len(suffix)]
            forms.add(short)
            if suffix.startswith("社区") or suffix == "居民委员会" and not short.endswith("社区"):
                forms.add(short + "社区")
            if suffix == "村民委员会" and not short.endswith("村"):
                forms.add(short + "村")
            break
    if level == "street" and name.endswith("街道") and len(name) > 3:
        forms.add(name[:-1])  # 沙面街道 → 沙面街
    return {f for f in forms if len(f) >= 2}


def _code_hints(hints: pd.DataFrame, grid: GridIndex) -> tuple[pd.Series, pd.Series]:
    """Return the finest known grid/village/street code per row, and its district.

    The district comes from any known code given (a district code, or the district of a
    finer code), to narrow the address search.
    """
    candidates = []
    for column in ("grid_code", "village_code", "problem_place_code", "street_code",
                   "district_code", "problem_place"):
        if column in hints:
            candidates.append(hints[column].astype(object).where(hints[column].notna(), None))
    if not candidates:
        empty = pd.Series(None, index=hints.index, dtype=object)
        return empty, empty.copy()
    stacked = pd.concat(candidates, axis=1, ignore_index=True)
    ranks = np.stack([c.map(grid.level_rank).to_numpy(dtype=float) for c in candidates], axis=1)
    ranks = np.where(np.isnan(ranks), -1, ranks)
    best = ranks.argmax(axis=1)
    best_rank = ranks[np.arange(len(best)), best]
    codes = stacked.to_numpy(dtype=object)[np.arange(len(best)), best]
    district_rank = LEVELS.index("district")
    fine = pd.Series(np.where(best_rank > district_rank, codes, None), index=hints.index,
                     dtype=object)
    known = pd.Series(np.where(best_rank >= district_rank, codes, None), index=hints.index,
                      dtype=object)
    district = known.map(grid.ancestors["district"]).astype(object)
    district = district.where(district.notna(), None)
    return fine, district


def _match_address(rows: pd.DataFrame, district: pd.Series, grid: GridIndex) -> pd.Series:
    """Attach by names found in the address (or 问题属地 name): village, else street."""
    text = None
    for column in ("address", "problem_place"):
        if column in rows:
            part = rows[column].astype(object).where(rows[column].notna(), "")
            text = part if text is None else text + " " + part
    result = pd.Series(None, index=rows.index, dtype=object)
    if text is None or not (text.str.len() > 0).any():
        return result
    distinct = [str(t) for t in pd.unique(text.to_numpy(dtype=object))]
    found = {lvl: _first_name(distinct, grid.names[lvl])
             for lvl in ("district", "street", "village")}
    keys = list(zip(text.to_numpy(dtype=object), district.to_numpy(dtype=object), strict=True))
    resolved = {key: _resolve(key[0], key[1], found, grid) for key in set(keys)}
    return pd.Series([resolved[k] for k in keys], index=rows.index, dtype=object)


def _first_name(texts: list[str], table: dict[str, list[str]]) -> dict[str, str | None]:
    """The leftmost (then longest) name of ``table`` in each distinct text.

    A window scan with dictionary lookups: names are short (2–12 characters) and only
    the rows no point or code placed come here, so this stays cheap and exact.
    """
    lengths = sorted({len(n) for n in table}, reverse=True)
    found: dict[str, str | None] = {}
    for text in texts:
        hit = None
        for start in range(len(text)):
            for length in lengths:
                piece = text[start:start + length]
                if len(piece) == length and piece in table:
                    hit = piece
                    break
            if hit is not None:
                break
        found[text] = hit
    return found


def _resolve(text: str, district: str | None, found: dict, grid: GridIndex) -> str | None:
    anc = grid.ancestors
    if district is None:
        name = found["district"].get(text)
        codes = grid.names["district"].get(name, []) if name else []
        district = codes[0] if len(codes) == 1 else None
    street = None
    name = found["street"].get(text)
    if name:
        codes = [c for c in grid.names["street"][name]
                 if district is None or anc.at[c, "district"] == district]
        street = codes[0] if len(codes) == 1 else None
    name = found["village"].get(text)
    if name:
        codes = grid.names["village"][name]
        if street is not None:
            codes = [c for c in codes if anc.at[c, "street"] == street]
        elif district is not None:
            codes = [c for c in codes if anc.at[c, "district"] == district]
        if len(codes) == 1:
            return codes[0]
    return street
