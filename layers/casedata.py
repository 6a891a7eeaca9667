"""A columnar, in-memory copy of the cases table (信访件) per store, for fast metrics.

Every metric screen asks the same question with a different filter, so the case table is read
once per store into numpy arrays (strings as categorical codes, timestamps as ``datetime64``)
and every query afterwards is array arithmetic. The copy is keyed by the engine URL and
refreshed when the store changes: a new or finished ingest run (``ingest_run``), new or
changed cases, or a new boundary version. Reads select only the columns metrics need (flags
packed into one integer, coarser codes only where the finer one is missing, repeat links
resolved by a join in SQL), and each column comes back as one newline-joined text built by
the database (``group_concat`` / ``string_agg``) that pyarrow parses in C, so a million cases
load in a few seconds on either backend.

Cases are tied to units at every level from their finest known code: a case attached to a
village counts in that village's street, district and city even if a coarser code column
disagrees, so counts roll up exactly. Codes not in the current grid count as unassigned
(未落格) at that level.

Personal fields (petitioner name, phone, ID hash) are never read here.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pcsv
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from geo.store import Store, is_postgis, read_units

READ_TIME_COLUMNS = (
    "registered_at",
    "accepted_at",
    "due_at",
    "replied_at",
    "closed_at",
    "rated_at",
)
"""Timestamps metrics read (``datetime64[s]``, naive Asia/Shanghai)."""
OTHER_TIME_COLUMNS = ("transferred_at", "followed_up_at")
"""Timestamps only the data date needs; read as one max() each, not copied."""
FLAG_COLUMNS = ("extended", "is_repeat", "is_backlog")
CATEGORICAL_COLUMNS = (
    "rating",
    "rating_state",
    "status",
    "category",
    "purpose",
    "channel",
    "registered_level",
)
CODE_COLUMNS = ("village_code", "street_code", "district_code", "grid_code")
FINE_TO_COARSE = ("grid", "village", "street", "district", "city")
_READ_NAMES = (
    "case_id", *READ_TIME_COLUMNS, "flags", *CATEGORICAL_COLUMNS, "village_code", "street_code",
    "district_code", "grid_code", "repeated_at",
)
_TIMESTAMP_NAMES = frozenset((*READ_TIME_COLUMNS, "repeated_at"))
_CODE_NAMES = tuple(name for name in _READ_NAMES if name not in _TIMESTAMP_NAMES
                    and name not in ("flags", "case_id"))
_ARROW_TYPES = {
    **{name: pa.timestamp("us") for name in _TIMESTAMP_NAMES},
    "flags": pa.int64(),
    "case_id": pa.string(),
    **{name: pa.dictionary(pa.int32(), pa.string()) for name in _CODE_NAMES},
}


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


def case_table(store: Store) -> CaseTable:
    """Return the store's case table, cached in the store until the store version moves.

    The deadline used to fill a missing due_at (60 + 30 days by default) comes from the
    store's settings.
    """
    settings = store.settings
    deadline = (settings.default_deadline_days, settings.extension_days)
    version = store.version()
    return store.cached(("case_table",), lambda: _build_table(store.engine, stamp=(version,),
                                                             deadline=deadline),
                        version=version)


def load_cases(store: Store) -> pd.DataFrame:
    """Return the in-memory case table (cached; do not modify it).

    Returns
    -------
    pandas.DataFrame
        One row per case: ``case_id`` (信访件编号; no personal fields), :data:`READ_TIME_COLUMNS`
        (``datetime64[s]``, naive Asia/Shanghai; due_at filled), :data:`FLAG_COLUMNS` (bool),
        :data:`CATEGORICAL_COLUMNS` and :data:`CODE_COLUMNS` (categoricals; street and
        district codes filled from the village code), and ``repeated_at``.
    """
    return case_table(store).frame


def data_as_of(store: Store) -> datetime | None:
    """Return the data's "as of" moment: the latest timestamp anywhere in the cases table.

    An export is taken at some moment and nothing in it can be later, so the latest timestamp
    is the best estimate of the export date; overdue and rating-window rules are judged at it.
    None when there are no cases.
    """
    return table_as_of(case_table(store))


def table_as_of(table: CaseTable) -> datetime | None:
    """Return :func:`data_as_of` for an already loaded table (no store round trip)."""
    return table.memo("as_of", lambda: _latest_timestamp(table))


def data_range(store: Store) -> tuple[date, date] | None:
    """Return the first and last registration day (登记日期) in the store, or None when empty."""
    frame = case_table(store).frame
    registered = frame["registered_at"].dropna()
    if registered.empty:
        return None
    return registered.min().date(), registered.max().date()


# --------------------------------------------------------------------------- private helpers


def _build_table(engine: Engine, *, stamp: tuple, deadline: tuple[int, int]) -> CaseTable:
    units = read_units(engine, with_geometry=False)
    with_grid = bool((units["level"] == "grid").any())
    sql = _select_sql(with_grid=with_grid)
    raw = _read_columns(engine, sql)
    frame = _typed_frame(raw, deadline=deadline)
    levels = _unit_indexes(units, frame)
    latest_other = _latest_other_timestamp(engine)
    return CaseTable(frame=frame, levels=levels, stamp=stamp, deadline=deadline,
                     _memo={"latest_other": latest_other})


def _select_sql(*, with_grid: bool) -> str:
    """The one SELECT both backends run: only what metrics need, repeats joined in SQL.

    Flags are packed into one integer; street and district codes are read only when the finer
    code is missing (a village code names its street and district); ``repeated_at`` is the first
    registration of any case whose ``repeat_of`` names this case.
    """
    items = ["c.case_id"] + [f"c.{name}" for name in READ_TIME_COLUMNS]
    items.append(
        "(CAST(c.extended AS INTEGER) + 2 * CAST(c.is_repeat AS INTEGER)"
        " + 4 * CAST(c.is_backlog AS INTEGER))"
    )
    items += [f"c.{name}" for name in CATEGORICAL_COLUMNS]
    items += [
        "c.village_code",
        "CASE WHEN c.village_code IS NULL THEN c.street_code END",
        "CASE WHEN c.village_code IS NULL AND c.street_code IS NULL THEN c.district_code END",
        "c.grid_code" if with_grid else "NULL",
        "r.first_registered",
    ]
    return (
        f"SELECT {', '.join(items)} FROM cases c LEFT JOIN ("
        "SELECT repeat_of, min(registered_at) AS first_registered FROM cases "
        "WHERE repeat_of IS NOT NULL GROUP BY repeat_of) r ON r.repeat_of = c.case_id"
    )


def _read_columns(engine: Engine, sql: str) -> dict[str, Any]:
    """Read the cases as one newline-joined text per column, parsed by pyarrow.

    ``group_concat`` (SQLite) or ``string_agg`` (PostgreSQL) builds each column's text inside
    the database in a single scan, so Python never touches a million row tuples (psycopg's
    COPY delivers one message per row, which costs more than the parsing); pyarrow parses
    timestamps and dictionary-encodes strings in C. A value containing a line break would shift
    the rows, so the row counts are checked, and the slower row-by-row read takes over when
    they disagree.
    """
    postgis = is_postgis(engine)
    outer = sql.split(" FROM cases c ", 1)
    items = _split_select(outer[0][len("SELECT "):])
    if postgis:
        texts = ", ".join(f"string_agg(COALESCE(CAST({i} AS TEXT), ''), E'\\n')" for i in items)
    else:
        texts = ", ".join(f"group_concat(IFNULL({i}, ''), char(10))" for i in items)
    query = f"SELECT count(*), {texts} FROM cases c {outer[1]}"
    conn = engine.raw_connection()
    try:
        cursor = conn.cursor()
        if postgis:  # one ordered pass, so every column lists the rows in the same order
            cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        cursor.execute(query)
        count, *columns = cursor.fetchone()
        cursor.close()
        conn.rollback()
    except engine.dialect.dbapi.Error:  # a column text over the 1 GB value limit (~50M cases)
        conn.rollback()
        return _read_rows(engine, sql)
    finally:
        conn.close()
    if not count:
        return _read_empty()
    arrays = {}
    for name, text in zip(_READ_NAMES, columns, strict=True):
        table = pcsv.read_csv(
            io.BytesIO((text + "\n").encode("utf-8")),
            read_options=pcsv.ReadOptions(column_names=[name]),
            parse_options=pcsv.ParseOptions(delimiter="\x1f", quote_char=False,
                                            ignore_empty_lines=False),
            convert_options=pcsv.ConvertOptions(column_types={name: _ARROW_TYPES[name]},
                                                strings_can_be_null=True),
        )
        if table.num_rows != count:
            return _read_rows(engine, sql)
        arrays[name] = table.column(name)
    return _arrow_columns(arrays)


def _split_select(items: str) -> list[str]:
    """Split a SELECT list on top-level commas (the list holds no string literals)."""
    parts, depth, current = [], 0, []
    for char in items:
        if char == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        depth += (char == "(") - (char == ")")
        current.append(char)
    parts.append("".join(current).strip())
    return parts


def _read_rows(engine: Engine, sql: str) -> dict[str, Any]:
    """The row-by-row read: slower, but safe for any text (used when a value holds a newline)."""
    conn = engine.raw_connection()
    try:
        cursor = conn.cursor()
        rows = cursor.execute(sql).fetchall()
        cursor.close()
    finally:
        conn.close()
    matrix = np.array(rows, dtype=object).reshape(len(rows), len(_READ_NAMES))
    raw: dict[str, Any] = {}
    for i, name in enumerate(_READ_NAMES):
        column = matrix[:, i]
        if name in _TIMESTAMP_NAMES:
            raw[name] = _parse_timestamps(column)
        elif name == "flags":
            raw[name] = column.astype(np.int64)
        elif name == "case_id":
            raw[name] = pd.array(column, dtype="str")
        else:
            raw[name] = _categorical(column)
    return raw


def _arrow_columns(columns: dict[str, Any]) -> dict[str, Any]:
    """Arrow columns → the numpy/pandas arrays :func:`_typed_frame` takes."""
    raw: dict[str, Any] = {}
    for name, column in columns.items():
        if name in _TIMESTAMP_NAMES:
            values = column.to_numpy(zero_copy_only=False)
            raw[name] = values.astype("datetime64[us]").astype("datetime64[s]")
        elif name == "flags":
            raw[name] = column.fill_null(0).to_numpy().astype(np.int64)
        elif name == "case_id":
            raw[name] = pd.array(column.to_pandas().to_numpy(dtype=object), dtype="str")
        else:
            raw[name] = _normalise_categorical(column.to_pandas())
    return raw


def _read_empty() -> dict[str, Any]:
    raw: dict[str, Any] = {}
    for name in _READ_NAMES:
        if name in _TIMESTAMP_NAMES:
            raw[name] = np.array([], dtype="datetime64[s]")
        elif name == "flags":
            raw[name] = np.array([], dtype=np.int64)
        elif name == "case_id":
            raw[name] = pd.array([], dtype="str")
        else:
            raw[name] = _categorical(np.array([], dtype=object))
    return raw


def _categorical(values: np.ndarray) -> pd.Categorical:
    """Dictionary-encode an object array of strings/None (categories sorted, -1 for None)."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True, sort=True)
    categories = pd.Index(np.asarray(uniques, dtype=object).astype(str), dtype="str")
    return pd.Categorical.from_codes(codes, categories=categories)


def _normalise_categorical(column: pd.Series) -> pd.Categorical:
    """Arrow's dictionary column as a Categorical with sorted string categories."""
    values = pd.Categorical(column)
    categories = pd.Index(values.categories.astype(str), dtype="str")
    values = values.set_categories(categories, rename=True)
    return values.reorder_categories(categories.sort_values())


def _parse_timestamps(values: np.ndarray) -> np.ndarray:
    """Parse ``YYYY-MM-DD HH:MM:SS[.ffffff]`` strings (None → NaT) with fixed-position arithmetic.

    SQLite holds SQLAlchemy DateTime values as such text. When every value has the same width
    (the normal case) the strings are joined into one byte buffer and their digits read at fixed
    positions, several times faster than any general parser; otherwise, and for rows in any
    other shape, pandas parses them.
    """
    result = np.full(len(values), np.datetime64("NaT"), dtype="datetime64[s]")
    present = np.flatnonzero(np.not_equal(values, None))
    if len(present) == 0:
        return result
    strings = values[present]
    if not all(isinstance(value, str) for value in strings[:1]):  # PostgreSQL gives datetimes
        parsed = pd.to_datetime(pd.Series(strings, dtype=object))
        result[present] = parsed.to_numpy(dtype="datetime64[s]")
        return result
    width = len(strings[0])
    joined = "".join(strings)
    if width >= 19 and len(joined) == width * len(strings) and joined.isascii():
        chars = np.frombuffer(joined.encode("ascii"), dtype=np.uint8).reshape(-1, width)
        parsed, shaped = _digits_to_seconds(chars)
    else:
        parsed = np.zeros(len(strings), dtype="datetime64[s]")
        shaped = np.zeros(len(strings), dtype=bool)
    result[present[shaped]] = parsed[shaped]
    odd = present[~shaped]
    if len(odd):
        fallback = pd.to_datetime(pd.Series(values[odd], dtype=object), format="ISO8601")
        result[odd] = fallback.to_numpy(dtype="datetime64[s]")
    return result


def _digits_to_seconds(chars: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Seconds since the epoch from rows of ASCII ``YYYY-MM-DD HH:MM:SS``; and which rows fit."""
    shaped = (
        (chars[:, 4] == 45) & (chars[:, 7] == 45) & (chars[:, 13] == 58) & (chars[:, 16] == 58)
        & ((chars[:, 10] == 32) | (chars[:, 10] == 84))
    )
    digits = chars[:, :19].astype(np.int64) - 48

    def number(first: int, width: int) -> np.ndarray:
        out = digits[:, first]
        for position in range(first + 1, first + width):
            out = out * 10 + digits[:, position]
        return out

    days = _days_from_civil(number(0, 4), number(5, 2), number(8, 2))
    seconds = days * 86400 + number(11, 2) * 3600 + number(14, 2) * 60 + number(17, 2)
    return seconds.view("datetime64[s]"), shaped


def _days_from_civil(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    y = year - (month <= 2)
    era = np.floor_divide(y, 400)
    yoe = y - era * 400
    doy = (153 * (month + np.where(month > 2, -3, 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _typed_frame(raw: dict[str, Any], *, deadline: tuple[int, int]) -> pd.DataFrame:
    flags = np.asarray(raw["flags"], dtype=np.int64)
    data: dict[str, Any] = {"case_id": raw["case_id"]}
    data.update({name: raw[name] for name in READ_TIME_COLUMNS})
    data["extended"] = (flags & 1).astype(bool)
    data["is_repeat"] = (flags & 2).astype(bool)
    data["is_backlog"] = (flags & 4).astype(bool)
    for name in CATEGORICAL_COLUMNS:
        data[name] = raw[name]
    data["grid_code"] = raw["grid_code"]
    data["village_code"] = raw["village_code"]
    data["street_code"] = _with_parent_codes(raw["street_code"], raw["village_code"], 9)
    data["district_code"] = _with_parent_codes(raw["district_code"], data["street_code"], 6)
    data["repeated_at"] = raw["repeated_at"]
    frame = pd.DataFrame(data)
    frame["due_at"] = filled_due(frame, deadline)
    return frame


def _with_parent_codes(own: pd.Categorical, finer: pd.Categorical, digits: int) -> pd.Categorical:
    """Fill a missing code from the finer code's prefix (440103001201 → 440103001000)."""
    finer_categories = np.asarray(finer.categories, dtype=object)
    derived_categories = np.array(
        [code[:digits] + "0" * (len(code) - digits) for code in finer_categories], dtype=object)
    own_values = np.asarray(own, dtype=object)
    finer_codes = np.asarray(finer.codes)
    missing = pd.isna(own_values) & (finer_codes >= 0)
    if not missing.any():
        return own
    filled = own_values.copy()
    filled[missing] = derived_categories[finer_codes[missing]]
    return _categorical(filled)


def filled_due(frame: pd.DataFrame, deadline: tuple[int, int]) -> np.ndarray:
    """Return due_at as given, else accepted_at + 60 days (+30 when extended) (办理期限, Art. 34).

    The one place the missing-deadline rule lives: the case table and the views' case lists
    both fill through it, so a case is overdue on the same day on the map and in a list.
    ``deadline`` is (default days, extension days), as in :class:`CaseTable`.
    """
    due = frame["due_at"].to_numpy()
    accepted = frame["accepted_at"].to_numpy()
    days = np.where(frame["extended"].to_numpy(), deadline[0] + deadline[1], deadline[0])
    derived = accepted + days.astype("timedelta64[D]")
    return np.where(np.isnat(due), derived, due)


def _unit_indexes(units: pd.DataFrame, frame: pd.DataFrame) -> dict[str, UnitIndex]:
    """Tie every case to a unit of every level, from its finest known code upward."""
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
            own = _category_positions(frame[column], codes)
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


def _category_positions(column: pd.Series, codes: pd.Index) -> np.ndarray:
    """Position of each case's code in ``codes`` (-1 if absent), via the 2,851 categories."""
    categories = column.cat.categories.astype(object).to_numpy()
    lookup = np.append(codes.get_indexer(categories), -1)
    return lookup[column.cat.codes.to_numpy()]


def _latest_other_timestamp(engine: Engine) -> datetime | None:
    """The latest 转送/回访 time (read in the store; these columns are not copied)."""
    sql = f"SELECT {', '.join(f'max({name})' for name in OTHER_TIME_COLUMNS)} FROM cases"
    with engine.connect() as conn:
        values = [v for v in conn.execute(sa.text(sql)).one() if v is not None]
    parsed = [pd.Timestamp(v).to_pydatetime() for v in values]
    return max(parsed) if parsed else None


def _latest_timestamp(table: CaseTable) -> datetime | None:
    """The latest event time (due dates are promises about the future, so they do not count)."""
    candidates = [table.memo("latest_other", lambda: None)]
    for name in READ_TIME_COLUMNS:
        if name == "due_at":
            continue
        values = table.frame[name].dropna()
        if not values.empty:
            candidates.append(pd.Timestamp(values.max()).to_pydatetime())
    candidates = [c for c in candidates if c is not None]
    return max(candidates) if candidates else None
