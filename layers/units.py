"""The grid units as the views name them: lookups, paths and children, cached per boundary version.

Every page names units (breadcrumbs, pickers, list rows); reading ``grid_unit`` for each would
cost a query per name, so the current units' attributes are read once per boundary version
into the store's cache and every lookup afterwards is a dictionary access.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from geo.codes import level_of, prefix_of
from geo.errors import CodeError
from geo.store import Store, current_boundary_version, read_units
from geo.vocab import LEVEL_NAMES_ZH, LEVELS

MAP_LEVELS = LEVELS[:4]
"""Levels the map drills through (基础网格 are listed, not mapped)."""


@dataclass(frozen=True)
class Unit:
    """One grid unit as the dashboard names it."""

    code: str
    name: str
    level: str
    parent_code: str | None

    @property
    def level_zh(self) -> str:
        """The level in Chinese (区, 镇街, 村居 …)."""
        return LEVEL_NAMES_ZH.get(self.level, self.level)


def units_frame(store: Store) -> pd.DataFrame:
    """Return the current units' attributes (no geometry), indexed by code, cached in the store."""
    engine = store.engine

    def build() -> pd.DataFrame:
        frame = read_units(engine, with_geometry=False)
        return frame.set_index("code", drop=False)

    return store.cached_on(("units",), lambda: current_boundary_version(engine), build)


def unit_of(store: Store, code: str) -> Unit:
    """Return the current unit with this code.

    Raises
    ------
    CodeError
        The code is malformed or no current unit has it.
    """
    level_of(code)
    unit = _units_by_code(store).get(code)
    if unit is None:
        raise CodeError(f"没有代码为 {code} 的网格单元 / no current unit has code {code}")
    return unit


def _units_by_code(store: Store) -> dict[str, Unit]:
    """Every current unit by code, built once per boundary version (a view names dozens)."""
    engine = store.engine

    def build() -> dict[str, Unit]:
        frame = units_frame(store)
        return {code: Unit(code=code, name=str(name), level=str(level),
                           parent_code=_clean_code(parent))
                for code, name, level, parent in zip(
                    frame["code"], frame["name"], frame["level"], frame["parent_code"],
                    strict=True)}

    return store.cached_on(("units_by_code",), lambda: current_boundary_version(engine), build)


def unit_path(store: Store, code: str) -> list[Unit]:
    """Return the chain of units from the city down to ``code`` (for the breadcrumb)."""
    path = [unit_of(store, code)]
    while path[0].parent_code:
        path.insert(0, unit_of(store, path[0].parent_code))
    return path


def children_of(store: Store, code: str, *, level: str) -> pd.DataFrame:
    """Return the current units of ``level`` inside unit ``code`` (code, name, parent_code).

    Ordered by code; the city holds every unit of the level.
    """
    frame = units_frame(store)
    chosen = frame[frame["level"] == level]
    if level_of(code) != "city":
        chosen = chosen[chosen["code"].str.startswith(prefix_of(code))]
    return chosen[["code", "name", "parent_code"]].reset_index(drop=True)


def names_of(store: Store, codes: pd.Series) -> pd.Series:
    """Return the unit name of each code ('' for a missing or unknown code)."""
    names = units_frame(store)["name"]
    return codes.map(names).fillna("").astype(str)


def child_level(level: str) -> str | None:
    """Return the level below ``level`` shown on the map (None below village)."""
    return MAP_LEVELS[MAP_LEVELS.index(level) + 1] if level in MAP_LEVELS[:-1] else None


def picker_label(store: Store, code: str) -> str:
    """名称（镇街，区） for a village, 名称（区） for a street: tells same-named units apart."""
    path = unit_path(store, code)
    parents = [u.name for u in reversed(path[1:-1])]
    return f"{path[-1].name}（{'，'.join(parents)}）" if parents else path[-1].name


def picker_labels(store: Store, codes: list[str]) -> list[str]:
    """:func:`picker_label` of many units at once (dictionary lookups, for long pickers)."""
    units = _units_by_code(store)
    out = []
    for code in codes:
        unit = units.get(code)
        chain, parent = [], units.get(unit.parent_code) if unit and unit.parent_code else None
        while parent is not None and parent.level != "city":  # stop below the city
            chain.append(parent.name)
            parent = units.get(parent.parent_code) if parent.parent_code else None
        name = unit.name if unit else code
        out.append(f"{name}（{'，'.join(chain)}）" if chain else name)
    return out


def _clean_code(value: object) -> str | None:
    """Return a stored parent code, or None for a missing one (stored NULL, NaN or 'NaN')."""
    if isinstance(value, str) and value.isdigit():
        return value
    return None

