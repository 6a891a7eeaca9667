"""A columnar, in-memory copy of the cases table (信访件) per store, for fast metrics.

Every metric screen asks the same question with a different filter, so the case table is read
once per store into numpy arrays (strings as categorical codes, timestamps as ``datetime64``)
and every query afterwards is array arithmetic. The copy is keyed by the engine URL and
refreshed when the store changes: a new or finished ingest run (``ingest_run``), a different
number of cases, or a new boundary version. Reads select only the columns metrics need; on
SQLite timestamps are converted to epoch seconds inside SQLite, on PostGIS the rows stream
out with ``COPY … TO STDOUT``, so a million cases load in a few seconds on either backend.

Cases are tied to units at every level from their finest known code: a case attached to a
village counts in that village's street, district and city even if a coarser code column
disagrees, so counts roll up exactly. Codes not in the current grid count as unassigned
(未落格) at that level.

Personal fields (petitioner name, phone, ID hash) are never read here.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from geo.settings import Settings
from geo.store import is_postgis, read_units

TIME_COLUMNS = (
    "registered_at",
    "transferred_at",
    "accepted_at",
    "due_at",
    "replied_at",
    "closed_at",
    "followed_up_at",
    "rated_at",
)
FLAG_COLUMNS = ("extended", "is_repeat", "is_backlog")
TEXT_COLUMNS = (
    "case_id",
    "repeat_of",
    "rating",
    "rating_state",
    "status",
    "category",
    "purpose",
    "channel",
    "registered_level",
    "grid_code",
    "village_code",
    "street_code",
    "district_code",
)
CATEGORICAL_COLUMNS = TEXT_COLUMNS[2:]
FINE_TO_COARSE = ("grid", "village", "street", "district", "city")
_NAT = -(2**63)
_NAT_SQL = "(-9223372036854775807 - 1)"


@dataclass
class UnitIndex:
    """The current units of one level and, for every case, the index of its unit (-1: none).

    Attributes
    ----------
    units
        Unit attributes (code, name, level, parent_code, kind, area_km2, population,
        population_estimated, geometry_source, boundary_version), ordered by code.
    case_unit
        int32 array, one entry per case: the row of ``units`` the case belongs to, -1 when the
        case is unassigned at this level.
    """

    units: pd.DataFrame
    case_unit: np.ndarray


@dataclass
class CaseTable:
    """The cached copy of one store's cases, with derived arrays metrics reuse.

    Attributes
    ----------
    frame
        One row per case: timestamps as ``datetime64[s]`` (due_at filled from accepted_at +
        deadline where missing), flags as bool, strings as categoricals, plus
        ``repeated_at`` (the first registration of a repeat petition of this case, NaT if none).
    levels
        level -> :class:`UnitIndex` for every level the current grid holds.
    stamp
        What the store looked like when read; a different stamp means re-read.
    """

    frame: pd.DataFrame
    levels: dict[str, UnitIndex]
    stamp: tuple
    deadline: tuple[int, int]
    _memo: dict[Any, Any] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.frame)

    def array(self, name: str) -> np.ndarray:
        """Return a column as a numpy array (categoricals as int codes, -1 for missing)."""
        key = ("array", name)
        if key not in self._memo:
            column = self.frame[name]
            if isinstance(column.dtype, pd.CategoricalDtype):
                self._memo[key] = column.cat.codes.to_numpy()
            else:
                self._memo[key] = column.to_numpy()
        return self._memo[key]

    def days(self, name: str) -> np.ndarray:
        """Return a timestamp column floored to calendar days (``datetime64[D]``)."""
        key = ("days", name)
        if key not in self._memo:
            self._memo[key] = self.array(name).astype("datetime64[D]")
        return self._memo[key]

    def codes_of(self, column: str, values: tuple[str, ...]) -> np.ndarray:
        """Return the categorical codes of ``values`` in a column (absent values are skipped)."""
        categories = self.frame[column].cat.categories
        return np.flatnonzero(categories.isin(list(values))).astype(np.int16)

    def memo(self, key: Any, build: Any) -> Any:
        """Return a cached derived value, building it once per loaded copy."""
        if key not in self._memo:
            self._memo[key] = build()
        return self._memo[key]


_CACHE: dict[str, CaseTable] = {}
_LOCK = threading.Lock()


def case_table(engine: Engine, *, settings: Settings | None = None) -> CaseTable:
    """Return the store's cached case table, re-reading it when the store has changed.

    Parameters
    ----------
    engine
        The store.
    settings
        Supplies the deadline (60 + 30 days by default) used to fill a missing due_at.
    """
    settings = settings or Settings()
    deadline = (settings.default_deadline_days, settings.extension_days)
    key = _engine_key(engine)
    stamp = _read_stamp(engine)
    cached = _CACHE.get(key)
    if cached is not None and cached.stamp == stamp and cached.deadline == deadline:
        return cached
    with _LOCK:
        cached = _CACHE.get(key)
        if cached is not None and cached.stamp == stamp and cached.deadline == deadline:
            return cached
        table = _build_table(engine, stamp=stamp, deadline=deadline)
        _CACHE[key] = table
        return table


def load_cases(engine: Engine, *, settings: Settings | None = None) -> pd.DataFrame:
    """Return the in-memory case table (cached; do not modify it).

    Returns
    -------
    pandas.DataFrame
        One row per case with the columns of :data:`TIME_COLUMNS`, :data:`FLAG_COLUMNS` and
        :data:`TEXT_COLUMNS` plus ``repeated_at``; timestamps ``datetime64[s]`` (naive
        Asia/Shanghai), strings categorical. No personal fields.
    """
    return case_table(engine, settings=settings).frame


def clear_cache(engine: Engine | None = None) -> None:
    """Forget the cached copy of one store (or of all stores), e.g. after editing cases in place."""
    with _LOCK:
        if engine is None:
            _CACHE.clear()
        else:
            _CACHE.pop(_engine_key(engine), None)


def data_as_of(engine: Engine, *, settings: Settings | None = None) -> datetime | None:
    """Return the data's "as of" moment: the latest timestamp anywhere in the cases table.

    An export is taken at some moment and nothing in it can be later, so the latest timestamp
    is the best estimate of the export date; overdue and rating-window rules are judged at it.
    None when there are no cases.
    """
    table = case_table(engine, settings=settings)
    return table.memo("as_of", lambda: _latest_timestamp(table.frame))


def data_range(engine: Engine, *, settings: Settings | None = None) -> tuple[date, date] | None:
    """Return the first and last registration day (登记日期) in the store, or None when empty."""
    frame = case_table(engine, settings=settings).frame
    registered = frame["registered_at"].dropna()
    if registered.empty:
        return None
    return registered.min().date(), registered.max().date()


# --------------------------------------------------------------------------- private helpers


def _engine_key(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def _read_stamp(engine: Engine) -> tuple:
    """One cheap round trip that changes whenever the cases or the grid change."""
    table_id = "'cases'::regclass::oid" if is_postgis(engine) else "0"
    sql = (
        "SELECT (SELECT max(run_id) FROM ingest_run), (SELECT count(finished_at) FROM ingest_run),"
        " (SELECT count(*) FROM cases), (SELECT max(version) FROM boundary_version), "
        f"{table_id}"
    )
    with engine.connect() as conn:
        return tuple(conn.execute(sa.text(sql)).one())


def _build_table(engine: Engine, *, stamp: tuple, deadline: tuple[int, int]) -> CaseTable:
    raw = _read_postgis(engine) if is_postgis(engine) else _read_sqlite(engine)
    frame = _typed_frame(raw, deadline=deadline)
    levels = _unit_indexes(engine, frame)
    frame = frame.drop(columns=["repeat_of"])
    return CaseTable(frame=frame, levels=levels, stamp=stamp, deadline=deadline)


def _select_list(postgis: bool) -> list[str]:
    items = []
    for name in TIME_COLUMNS:
        if postgis:
            items.append(f"COALESCE(CAST(EXTRACT(EPOCH FROM {name}) AS BIGINT), {_NAT_SQL})")
        else:
            items.append(f"IFNULL(CAST(strftime('%s', {name}) AS INTEGER), {_NAT_SQL})")
    items += [f"CAST({name} AS INTEGER)" for name in FLAG_COLUMNS]
    items += list(TEXT_COLUMNS)
    return items


_ALL_COLUMNS = (*TIME_COLUMNS, *FLAG_COLUMNS, *TEXT_COLUMNS)


def _read_sqlite(engine: Engine) -> dict[str, Any]:
    sql = f"SELECT {', '.join(_select_list(False))} FROM cases"
    conn = engine.raw_connection()
    try:
        cursor = conn.cursor()
        cursor.execute(sql)
        rows = cursor.fetchall()
        cursor.close()
    finally:
        conn.close()
    if not rows:
        return {name: [] for name in _ALL_COLUMNS}
    columns = list(zip(*rows, strict=True))
    return dict(zip(_ALL_COLUMNS, columns, strict=True))


def _read_postgis(engine: Engine) -> dict[str, Any]:
    sql = f"COPY (SELECT {', '.join(_select_list(True))} FROM cases) TO STDOUT WITH (FORMAT csv)"
    buffer = io.BytesIO()
    conn = engine.raw_connection()
    try:
        cursor = conn.cursor()
        with cursor.copy(sql) as copy:
            for block in copy:
                buffer.write(block)
        cursor.close()
        conn.commit()
    finally:
        conn.close()
    buffer.seek(0)
    dtypes = {name: "int64" for name in (*TIME_COLUMNS, *FLAG_COLUMNS)}
    dtypes.update({name: "object" for name in TEXT_COLUMNS})
    if buffer.getbuffer().nbytes == 0:
        return {name: [] for name in _ALL_COLUMNS}
    frame = pd.read_csv(
        buffer, header=None, names=list(_ALL_COLUMNS), dtype=dtypes, keep_default_na=False,
        na_values={name: [""] for name in TEXT_COLUMNS},
    )
    return {name: frame[name].to_numpy() for name in _ALL_COLUMNS}


def _typed_frame(raw: dict[str, Any], *, deadline: tuple[int, int]) -> pd.DataFrame:
    data: dict[str, Any] = {}
    for name in TIME_COLUMNS:
        seconds = np.asarray(raw[name], dtype=np.int64)
        data[name] = seconds.view("datetime64[s]")
    for name in FLAG_COLUMNS:
        data[name] = np.asarray(raw[name], dtype=np.int64).astype(bool)
    data["case_id"] = pd.array(np.asarray(raw["case_id"], dtype=object), dtype="string")
    data["repeat_of"] = np.asarray(raw["repeat_of"], dtype=object)
    for name in CATEGORICAL_COLUMNS:
        values = np.asarray(raw[name], dtype=object)
        data[name] = pd.Categorical(np.where(pd.isna(values), None, values))
    frame = pd.DataFrame(data)
    frame["due_at"] = _filled_due(frame, deadline)
    frame["repeated_at"] = _first_repeat(frame)
    return frame


def _filled_due(frame: pd.DataFrame, deadline: tuple[int, int]) -> np.ndarray:
    """due_at as given, else accepted_at + 60 days (+30 when extended) (办理期限, Art. 34)."""
    due = frame["due_at"].to_numpy()
    accepted = frame["accepted_at"].to_numpy()
    days = np.where(frame["extended"].to_numpy(), deadline[0] + deadline[1], deadline[0])
    derived = accepted + days.astype("timedelta64[D]")
    return np.where(np.isnat(due), derived, due)


def _first_repeat(frame: pd.DataFrame) -> np.ndarray:
    """Per case: when a repeat petition (重复信访) of it was first registered; NaT if never."""
    repeat_of = frame["repeat_of"].to_numpy()
    has_link = ~pd.isna(repeat_of)
    result = np.full(len(frame), np.datetime64("NaT"), dtype="datetime64[s]")
    if not has_link.any():
        return result
    links = pd.Series(frame["registered_at"].to_numpy()[has_link], index=repeat_of[has_link])
    first = links.groupby(level=0).min()
    position = pd.Index(first.index).get_indexer(frame["case_id"].to_numpy(dtype=object))
    found = position >= 0
    result[found] = first.to_numpy()[position[found]]
    return result


def _unit_indexes(engine: Engine, frame: pd.DataFrame) -> dict[str, UnitIndex]:
    """Tie every case to a unit of every level, from its finest known code upward."""
    units = read_units(engine, with_geometry=False)
    levels: dict[str, UnitIndex] = {}
    child_level: str | None = None
    n = len(frame)
    for level in FINE_TO_COARSE:
        level_units = units[units["level"] == level].sort_values("code").reset_index(drop=True)
        if level_units.empty and level != "city":
            continue
        codes = pd.Index(level_units["code"].astype(str))
        column = f"{level}_code"
        if column in frame:
            own = codes.get_indexer(frame[column].astype(object).to_numpy())
        else:
            own = np.full(n, -1, dtype=np.int64)
        if child_level is not None:
            child = levels[child_level]
            parents = child.units["parent_code"].astype(object).to_numpy()
            parent_of_child = codes.get_indexer(parents)
            known = child.case_unit >= 0
            from_child = np.where(known, parent_of_child[np.maximum(child.case_unit, 0)], -1)
            own = np.where(from_child >= 0, from_child, own)
        if level == "city" and len(codes) == 1:
            district = levels.get("district")
            if district is not None:
                own = np.where(district.case_unit >= 0, 0, own)
        levels[level] = UnitIndex(units=level_units, case_unit=own.astype(np.int32))
        child_level = level
    return levels


def _latest_timestamp(frame: pd.DataFrame) -> datetime | None:
    latest = None
    for name in TIME_COLUMNS:
        if name == "due_at":  # a deadline is a promise about the future, not an event
            continue
        values = frame[name].dropna()
        if not values.empty:
            top = values.max()
            latest = top if latest is None or top > latest else latest
    return None if latest is None else pd.Timestamp(latest).to_pydatetime()
