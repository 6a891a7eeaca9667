"""The columnar case table (信访件): the one way cases are read for counting, listing and mapping.

Every screen asks the same questions of the same cases with different filters, so the case
table is read once per store version into compact arrays and every query afterwards is array
arithmetic (:mod:`layers.rules`, :mod:`layers.metrics`, :mod:`layers.lists`). Lists and exports
select rows here by mask and scope, and only then fetch display columns for those case ids
from SQL.

Compact by design (a million cases take well under 100 MB):

* timestamps are ``int32`` minutes since 1970-01-01 (naive Asia/Shanghai), ``NULL`` =
  :data:`NULL` (the smallest int32); calendar days come from them on demand; a timestamp
  most cases lack (复查, 积案) is kept sparse (:class:`SparseColumn`);
* strings with few values (status, category, channel …) are categorical codes;
* flags are booleans, coordinates ``float32``, 涉及人数 ``int32`` (0 = not given);
* the petitioner (信访人) is an ``int32`` person index (``numbers["person"]``, -1 = unknown):
  cases with the same salted ID hash, else the same phone number, share an index. The key
  text is built in the database, dictionary-encoded by pyarrow and dropped at once: only the
  index stays, so repeat petitioners (重复访) can be grouped without any personal text;
* personal fields (petitioner name, phone, ID hash, address, description) are never kept.

Reads select only these columns, each built by the database as one newline-joined text
(``group_concat`` / ``string_agg``) that pyarrow parses in C, so a million cases load in a
few seconds on either backend. Parsing allocates several times the table's own size for a
moment; those buffers come from the system allocator and are handed back to the operating
system once the table is built (``malloc_trim``), so a served process keeps only the table.
The table is cached in the :class:`geo.store.Store` under the store version.

Cases are tied to units at every level from their finest known code: a case attached to a
village counts in that village's street, district and city even if a coarser code column
disagrees, so counts roll up exactly. Codes not in the current grid count as unassigned
(未落格) at that level.
"""

from __future__ import annotations

import gc
import io
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from geo.memory import release_free_memory
from geo.store import Store, is_postgis, read_units
from layers.caseids import CaseIds

NULL = np.iinfo(np.int32).min
"""The missing value of every int32 time and day array."""
MINUTES_PER_DAY = 1440

TIME_COLUMNS = (
    "registered_at",
    "accepted_at",
    "due_at",
    "replied_at",
    "closed_at",
    "followed_up_at",
    "rated_at",
    "reviewed_at",
    "backlog_at",
)
"""Timestamps kept per case (int32 minutes); ``repeated_at`` is derived (see below). 延期 is a
flag here (its time is shown on the case page, read from SQL)."""
KEPT_DAYS = ("registered_at", "closed_at")
"""Day-number columns kept once computed (the cohort dates most metric queries window: every
view counts by registration, and the close order reads closing days); other columns' days,
办理期限 included, are computed when asked (under a millisecond per million cases), so the table does not
double its size: four bytes per case each."""
FLAG_COLUMNS = ("extended", "is_repeat", "is_backlog", "has_leader")
"""Flags; ``has_leader`` is "a 包案领导 is named" (the name itself is not read)."""
CATEGORICAL_COLUMNS = (
    "rating",
    "rating_state",
    "status",
    "category",
    "purpose",
    "channel",
    "registered_level",
    "attach_method",
)
CODE_COLUMNS = ("village_code", "street_code", "district_code", "grid_code")
FINE_TO_COARSE = ("grid", "village", "street", "district", "city")
_LATEST_ONLY = ("transferred_at",)
"""Timestamps only the data date needs: read as one max(), not copied."""

_TIMES = (*TIME_COLUMNS, "repeated_at")
_NUMBERS = ("lon", "lat", "people_count", "person")
_READ_NAMES = ("case_id", *_TIMES, "flags", *CATEGORICAL_COLUMNS, *CODE_COLUMNS, *_NUMBERS)
_PERSON_KEY = (
    "CASE WHEN c.petitioner_id_hash IS NOT NULL AND c.petitioner_id_hash <> ''"
    " THEN 'i' || c.petitioner_id_hash"
    " WHEN c.petitioner_phone IS NOT NULL AND trim(c.petitioner_phone) <> ''"
    " THEN 'p' || replace(replace(trim(c.petitioner_phone), '-', ''), ' ', '') END"
)
"""The petitioner key (信访人): the salted ID hash, else the phone digits; read only to be
turned into an int32 index (see the module docstring)."""
_TEXT_NAMES = (*CATEGORICAL_COLUMNS, *CODE_COLUMNS)
_ARROW_TYPES = {
    **{name: pa.timestamp("us") for name in _TIMES},
    "flags": pa.int64(),
    "case_id": pa.string(),
    **{name: pa.dictionary(pa.int32(), pa.string()) for name in _TEXT_NAMES},
    "lon": pa.float64(),
    "lat": pa.float64(),
    "people_count": pa.int64(),
    "person": pa.string(),
}


SPARSE_SHARE = 0.1
"""A time column with a value in at most this share of cases is kept sparse (rows and values:
at most a fifth of the dense size). On the demo, 复查, 积案 and repeat times are each in under 4 %
of cases: 12 MB of a million cases' 40 MB of times were NULLs."""


@dataclass(frozen=True)
class SparseColumn:
    """A mostly missing int32 time column: the rows that have a value, and those values."""

    length: int
    rows: np.ndarray
    """int32 positions of the cases that have a value, ascending."""
    values: np.ndarray
    """int32 minutes, one per entry of ``rows``."""

    @classmethod
    def of(cls, dense: np.ndarray) -> SparseColumn:
        rows = np.flatnonzero(dense != NULL).astype(np.int32)
        return cls(len(dense), rows, dense[rows])

    @property
    def nbytes(self) -> int:
        return int(self.rows.nbytes + self.values.nbytes)

    def dense(self, rows: np.ndarray | None = None) -> np.ndarray:
        """The column (or its ``rows``) as int32 minutes, :data:`NULL` where missing."""
        if rows is None:
            out = np.full(self.length, NULL, dtype=np.int32)
            out[self.rows] = self.values
            return out
        rows = np.asarray(rows)
        if rows.dtype == bool:
            rows = np.flatnonzero(rows)
        if not len(self.rows):
            return np.full(len(rows), NULL, dtype=np.int32)
        at = np.minimum(np.searchsorted(self.rows, rows), len(self.rows) - 1)
        return np.where(self.rows[at] == rows, self.values[at], NULL).astype(np.int32)


def compact_times(times: dict[str, np.ndarray]) -> dict[str, np.ndarray | SparseColumn]:
    """Keep each mostly missing time column as a :class:`SparseColumn` (see :data:`SPARSE_SHARE`)."""
    return {name: SparseColumn.of(column)
            if len(column) and np.count_nonzero(column != NULL) <= SPARSE_SHARE * len(column)
            else column for name, column in times.items()}


@dataclass
class UnitIndex:
    """The current units of one level and, for every case, the index of its unit (-1: none).

    Attributes
    ----------
    units
        Unit attributes (code, name, level, parent_code, kind, area_km2, population,
        population_estimated, geometry_source, boundary_version), ordered by code.
    case_unit
        One entry per case: the row of ``units`` the case belongs to, -1 when the case is
        unassigned at this level (the narrowest of int8, int16, int32 that holds the level).
    """

    units: pd.DataFrame
    case_unit: np.ndarray

    def position(self, code: str) -> int:
        """Return the row of unit ``code`` (-1 when this level has no such unit)."""
        hit = np.flatnonzero(self.units["code"].to_numpy() == code)
        return int(hit[0]) if len(hit) else -1


@dataclass
class CaseTable:
    """The cached columnar copy of one store's cases, with derived arrays memoised on it.

    Attributes
    ----------
    case_id
        信访件编号 per case (:class:`layers.caseids.CaseIds`: a stem code and a number each).
    times
        name -> int32 minutes since 1970 (:data:`NULL` when missing) for :data:`TIME_COLUMNS`
        and ``repeated_at`` (the first registration of a case that repeats this one); due_at
        is filled from accepted_at + the deadline where the source gave none. A mostly
        missing column is a :class:`SparseColumn`: read them with :meth:`minutes`.
    flags
        name -> bool array for :data:`FLAG_COLUMNS`.
    categoricals
        name -> pandas Categorical for :data:`CATEGORICAL_COLUMNS` and :data:`CODE_COLUMNS`.
    numbers
        ``lon``/``lat`` (float32, NaN when unknown), ``people_count`` (涉及人数, int32, 0 when
        not given) and ``person`` (信访人 index, int32, -1 when neither an ID hash nor a phone
        is known; equal indices = the same petitioner within this copy only).
    levels
        level -> :class:`UnitIndex` for every level the current grid holds.
    version
        The store version this copy was read at.
    deadline
        (default days, extension days) used to fill due_at.
    latest_other
        The latest timestamp among columns not copied (转送), for the data date.
    """

    case_id: CaseIds
    times: dict[str, np.ndarray | SparseColumn]
    flags: dict[str, np.ndarray]
    categoricals: dict[str, pd.Categorical]
    numbers: dict[str, np.ndarray]
    levels: dict[str, UnitIndex]
    version: int
    deadline: tuple[int, int]
    latest_other: int = NULL
    stamp: tuple[int, int] = (0, 0)
    """(store version, newest ``case_event`` id) read in one statement just before the cases:
    :func:`refresh_table` reads only the cases of later live events when they account for
    every write since."""
    _memo: dict[Any, Any] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.case_id)

    def minutes(self, name: str, rows: np.ndarray | None = None) -> np.ndarray:
        """Return a timestamp column as int32 minutes since 1970 (:data:`NULL` when missing).

        ``rows`` selects some cases. A sparse column is expanded on every call (about a
        millisecond per million cases; those columns are read rarely).
        """
        column = self.times[name]
        if isinstance(column, SparseColumn):
            return column.dense(rows)
        return column if rows is None else column[rows]

    def days(self, name: str, rows: np.ndarray | None = None) -> np.ndarray:
        """Return a timestamp column as int32 calendar-day numbers (:data:`NULL` when missing).

        ``rows`` selects some cases; the whole columns of :data:`KEPT_DAYS` are kept once
        computed, the others are computed each time.
        """
        if name in KEPT_DAYS:
            whole = self.memo(("days", name), lambda: to_days(self.minutes(name)))
            return whole if rows is None else whole[rows]
        return to_days(self.minutes(name, rows))

    def codes(self, name: str) -> np.ndarray:
        """Return a categorical column's integer codes (-1 for missing)."""
        return self.memo(("codes", name), lambda: np.asarray(self.categoricals[name].codes))

    def categories(self, name: str) -> pd.Index:
        """Return a categorical column's values, in code order."""
        return self.categoricals[name].categories

    def is_value(self, name: str, values: tuple[str, ...] | list[str]) -> np.ndarray:
        """Return which cases have one of ``values`` in a categorical column."""
        categories = self.categories(name)
        wanted = np.flatnonzero(categories.isin(list(values)))
        codes = self.codes(name)
        if len(wanted) == 0:
            return np.zeros(len(self), dtype=bool)
        if len(wanted) == 1:
            return codes == wanted[0]
        lookup = np.zeros(len(categories) + 1, dtype=bool)
        lookup[wanted + 1] = True
        return lookup[codes + 1]

    def is_missing(self, name: str) -> np.ndarray:
        """Return which cases have no value in a categorical column."""
        return self.codes(name) < 0

    def position_of(self, case_id: str) -> int:
        """Return the row of a case id, or -1 (its number compared in C: under a ms per million)."""
        return self.case_id.position(str(case_id))

    def in_unit(self, code: str) -> np.ndarray:
        """Return which cases belong to unit ``code`` (every case for the city)."""
        from geo.codes import level_of

        level = level_of(code)
        if level == "city":
            return np.ones(len(self), dtype=bool)
        index = self.levels.get(level)
        if index is None:
            return np.zeros(len(self), dtype=bool)
        position = index.position(code)
        if position < 0:
            return np.zeros(len(self), dtype=bool)
        return index.case_unit == position

    def memo(self, key: Any, build: Any) -> Any:
        """Return a derived value, building it once per loaded copy.

        Two threads asking at once may both build it; both get the first one stored
        (``dict.setdefault`` is atomic), so a memoised lock or cache is one object.
        """
        try:
            return self._memo[key]
        except KeyError:
            return self._memo.setdefault(key, build())

    def nbytes(self) -> int:
        """Bytes held by the copied columns (not the memo): the table's own footprint."""
        total = self.case_id.nbytes
        for group in (self.times, self.flags, self.numbers):
            total += sum(int(a.nbytes) for a in group.values())
        total += sum(int(np.asarray(c.codes).nbytes) for c in self.categoricals.values())
        return total


def case_table(store: Store) -> CaseTable:
    """Return the store's case table, current at the store version.

    Cached in the store; when the version moves, the table is brought up to date by
    :func:`refresh_table` (only the cases written since are read, when that is safe) instead of
    being read again. The deadline used to fill a missing due_at (60 + 30 days by default)
    comes from the store's settings.
    """
    settings = store.settings
    deadline = (settings.default_deadline_days, settings.extension_days)
    version = store.version()
    engine = store.engine

    def build() -> CaseTable:
        return _build_table(engine, version=version, deadline=deadline)

    def refresh(old: CaseTable, _old_version: int, new_version: int) -> CaseTable:
        return refresh_table(engine, old, version=new_version, deadline=deadline)

    return store.cached(("refresh", "case_table"), build, refresh=refresh, version=version)


def table_as_of(table: CaseTable) -> datetime | None:
    """Return the data's "as of" moment: the latest event time anywhere in the case table.

    An export is taken at some moment and nothing in it can be later, so the latest timestamp
    is the best estimate of the export date; deadlines are judged at it. Due dates are promises
    about the future, so they do not count. None when there are no cases.
    """

    def latest() -> int:
        candidates = [table.latest_other]
        for name in TIME_COLUMNS:
            if name != "due_at" and len(table):
                column = table.times[name]
                values = column.values if isinstance(column, SparseColumn) else column
                if len(values):
                    candidates.append(int(values.max()))
        return max(candidates)

    value = table.memo("as_of", latest)
    return None if value == NULL else minutes_to_datetime(value)


def data_as_of(store: Store) -> datetime | None:
    """Return :func:`table_as_of` of the store's case table."""
    return table_as_of(case_table(store))


def data_range(store: Store) -> tuple[date, date] | None:
    """Return the first and last registration day (登记日期) in the store, or None when empty."""
    registered = case_table(store).minutes("registered_at")
    present = registered[registered != NULL]
    if not len(present):
        return None
    return minutes_to_datetime(int(present.min())).date(), \
        minutes_to_datetime(int(present.max())).date()


# --------------------------------------------------------------------------- conversions


def to_days(minutes: np.ndarray) -> np.ndarray:
    """int32 minutes → int32 day numbers (floor), :data:`NULL` kept."""
    days = np.floor_divide(minutes, np.int32(MINUTES_PER_DAY))
    return np.where(minutes == NULL, np.int32(NULL), days).astype(np.int32, copy=False)


def minutes_of(moment: datetime | date | np.datetime64 | pd.Timestamp) -> int:
    """A moment as int32 minutes since 1970 (a date means the end of that day, 23:59)."""
    if isinstance(moment, date) and not isinstance(moment, datetime):
        moment = datetime(moment.year, moment.month, moment.day, 23, 59, 59)
    return int(np.datetime64(pd.Timestamp(moment).to_datetime64(), "m").astype(np.int64))


def day_number(day: date | datetime) -> int:
    """A calendar day as its day number (days since 1970-01-01)."""
    if isinstance(day, datetime):
        day = day.date()
    return int(np.datetime64(day, "D").astype(np.int64))


def day_of_number(number: int) -> date:
    """The calendar day of a day number."""
    return np.datetime64(int(number), "D").astype(date)


def minutes_to_datetime(value: int) -> datetime:
    """int32 minutes since 1970 → naive datetime."""
    return np.datetime64(int(value), "m").astype("datetime64[s]").astype(datetime)


def as_datetime64(minutes: np.ndarray) -> np.ndarray:
    """int32 minutes → ``datetime64[m]`` (NaT for :data:`NULL`), for display frames."""
    out = minutes.astype(np.int64).view("datetime64[m]").copy()
    out[minutes == NULL] = np.datetime64("NaT")
    return out


# --------------------------------------------------------------------------- refreshing

REFRESH_MAX_WRITES = 10_000
"""More live writes than this since the last read: read the whole table again."""
LIVE_SOURCES = ("api", "user")
"""Event sources of single-case writes (the Open311 API and the QR form; an office's correction),
each of which bumps the store version once and appends exactly one event, in one transaction."""


def refresh_table(engine: Engine, old: CaseTable, *, version: int,
                  deadline: tuple[int, int]) -> CaseTable:
    """Bring a case table up to date, reading only the cases written since, when that is safe.

    Incremental when every store write since the table was read was a single-case live write:
    the store version moved by exactly as many steps as there are new ``case_event`` rows, all of
    them from :data:`LIVE_SOURCES`, and none of the cases written repeats another (a repeat
    changes the other case's ``repeated_at``). Then only those cases are read (by id) and merged:
    updated ones in place, new ones appended, categories widened where needed, the petitioner
    index matched in the store, the unit indexes recomputed. Any other write (an ingest, a
    boundary import, a re-attach, a raw SQL change) makes it read the whole table again.
    """
    stamp = _stamp(engine)
    written = stamp[0] - old.stamp[0]
    if old.deadline != deadline or not 0 < written <= REFRESH_MAX_WRITES or not len(old):
        return _build_table(engine, version=version, deadline=deadline)
    case_ids = _live_writes(engine, old.stamp, stamp)
    if case_ids is None:
        return _build_table(engine, version=version, deadline=deadline)
    merged = _merge(engine, old, case_ids, version=version, deadline=deadline, stamp=stamp)
    return merged if merged is not None else _build_table(engine, version=version,
                                                          deadline=deadline)


def _stamp(engine: Engine) -> tuple[int, int]:
    sql = ("SELECT (SELECT max(version) FROM store_version), (SELECT max(id) FROM case_event)")
    with engine.connect() as conn:
        version, event = conn.execute(sa.text(sql)).one()
    return int(version or 0), int(event or 0)


def _live_writes(engine: Engine, before: tuple[int, int], now: tuple[int, int]) -> list[str] | None:
    """The cases of the live writes between two stamps, or None when other writes happened."""
    sql = "SELECT case_id, source FROM case_event WHERE id > :a AND id <= :b"
    with engine.connect() as conn:
        events = conn.execute(sa.text(sql), {"a": before[1], "b": now[1]}).all()
    if len(events) != now[0] - before[0] or any(e.source not in LIVE_SOURCES for e in events):
        return None
    return list(dict.fromkeys(e.case_id for e in events))


def _merge(engine: Engine, old: CaseTable, case_ids: list[str], *, version: int,
           deadline: tuple[int, int], stamp: tuple[int, int]) -> CaseTable | None:
    """``old`` with the current values of ``case_ids`` (None: a full read is needed).

    ``repeated_at`` (the first registration of a case repeating this one) is kept from ``old``:
    live writes change no case's 重复件原件 (``repeat_of``) nor any registration time, and a new
    case cannot yet be named as the original of another (a new case that names an original
    itself makes it a full read).
    """
    total, repeating, latest_transfer, keys = _written_facts(engine, case_ids)
    with_grid = "grid" in old.levels
    raw = _read_cases(engine, _select_sql(with_grid=with_grid, repeats=False), case_ids)
    if not len(raw["case_id"]):
        return None
    batch = _parts(raw, deadline)
    ids = list(batch["case_id"])
    position = _positions(old, ids)
    fresh = position < 0
    if any(ids[i] in repeating for i in np.flatnonzero(fresh)):
        return None
    if len(old) + int(fresh.sum()) != total:
        return None  # a case went missing: not an append
    repeated = batch["times"]["repeated_at"]
    repeated[~fresh] = old.minutes("repeated_at", position[~fresh])
    rows = (position, fresh)
    batch["numbers"]["person"] = _person_indices(engine, old, ids, keys)
    table = CaseTable(
        case_id=_merged_ids(old.case_id, ids, fresh),
        times=compact_times({n: _merged(old.minutes(n), batch["times"][n], rows)
                             for n in old.times}),
        flags={n: _merged(old.flags[n], batch["flags"][n], rows) for n in old.flags},
        categoricals={n: _merged_categorical(old.categoricals[n], batch["categoricals"][n], rows)
                      for n in old.categoricals},
        numbers={n: _merged(old.numbers[n], batch["numbers"][n], rows) for n in old.numbers},
        levels={}, version=version, deadline=deadline,
        latest_other=max(old.latest_other, latest_transfer), stamp=stamp)
    units = pd.concat([index.units for index in old.levels.values()], ignore_index=True)
    table.levels = _unit_indexes(units, table)  # the grid is the same: no boundary import since
    return table


def _positions(old: CaseTable, ids: Any) -> np.ndarray:
    """Row of each id in ``old`` (-1: new)."""
    return old.case_id.positions([str(i) for i in ids])


def _written_facts(engine: Engine, case_ids: list[str]) -> tuple:
    """(cases in the store, the written ones that repeat another, their latest 转送, their
    petitioner keys)."""
    c = sa.table("cases", sa.column("case_id"), sa.column("repeat_of"),
                 sa.column("transferred_at"))
    with engine.connect() as conn:
        total = conn.execute(sa.text("SELECT count(*) FROM cases")).scalar_one()
        repeating = set(conn.execute(sa.select(c.c.case_id).where(
            c.c.case_id.in_(case_ids), c.c.repeat_of.is_not(None))).scalars())
        latest = conn.execute(sa.select(sa.func.max(c.c.transferred_at)).where(
            c.c.case_id.in_(case_ids))).scalar()
        keys = dict(conn.execute(sa.text(
            f"SELECT c.case_id, {_PERSON_KEY} FROM cases c WHERE c.case_id IN :ids").bindparams(
            sa.bindparam("ids", expanding=True)), {"ids": case_ids}).all())
    transfer = minutes_of(pd.Timestamp(latest)) if latest is not None else NULL
    return int(total), repeating, transfer, keys


def _person_indices(engine: Engine, old: CaseTable, written: list[str], keys: dict) -> np.ndarray:
    """Petitioner indices of the written cases: an earlier case's index for a known person.

    The table keeps no person keys (module docstring), so the store is asked which other case
    has the same key (:func:`_same_person`); cases of a new person share a new index.
    """
    wanted = sorted({k for k in (keys.get(i) for i in written) if k})
    known: dict[str, int] = {}
    for key, other in _same_person(engine, wanted, written).items():
        at = old.position_of(other)
        if at >= 0 and old.numbers["person"][at] >= 0:
            known[key] = int(old.numbers["person"][at])
    following = int(old.numbers["person"].max(initial=-1)) + 1
    out = np.full(len(written), -1, dtype=np.int32)
    for i, case_id in enumerate(written):
        key = keys.get(case_id)
        if not key:
            continue
        if key not in known:
            known[key] = following
            following += 1
        out[i] = known[key]
    return out


def _same_person(engine: Engine, wanted: list[str], written: list[str]) -> dict[str, str]:
    """Key → one other case with that petitioner key (:data:`_PERSON_KEY`), in one scan each.

    ID-hash keys compare the hash column as it is; phone keys first keep the phones that end in
    their last four digits (a plain comparison the database makes fast), then compare digits.
    """
    found: dict[str, str] = {}
    hashes = [k[1:] for k in wanted if k.startswith("i")]
    phones = [k[1:] for k in wanted if k.startswith("p")]
    expanding = {"written": sa.bindparam("written", expanding=True)}
    with engine.connect() as conn:
        if hashes:
            query = sa.text("SELECT c.petitioner_id_hash, min(c.case_id) FROM cases c WHERE "
                            "c.petitioner_id_hash IN :hashes AND c.case_id NOT IN :written "
                            "GROUP BY c.petitioner_id_hash").bindparams(
                sa.bindparam("hashes", expanding=True), expanding["written"])
            for value, other in conn.execute(query, {"hashes": hashes, "written": written}):
                found["i" + value] = str(other)
        if phones:
            digits = "replace(replace(trim(c.petitioner_phone), '-', ''), ' ', '')"
            tails = " OR ".join(f"c.petitioner_phone LIKE :t{i}" for i in range(len(phones)))
            query = sa.text(
                f"SELECT {digits}, min(c.case_id) FROM cases c WHERE ({tails}) AND "
                "(c.petitioner_id_hash IS NULL OR c.petitioner_id_hash = '') AND "
                f"{digits} IN :phones AND c.case_id NOT IN :written GROUP BY {digits}"
            ).bindparams(sa.bindparam("phones", expanding=True), expanding["written"])
            params = {f"t{i}": "%" + p[-4:] + "%" for i, p in enumerate(phones)}
            for value, other in conn.execute(query, {**params, "phones": phones,
                                                     "written": written}):
                found["p" + value] = str(other)
    return found


def _merged(old: np.ndarray, new: np.ndarray, rows: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    position, fresh = rows
    out = np.concatenate([old, new[fresh].astype(old.dtype)])
    kept = ~fresh
    out[position[kept]] = new[kept]
    return out


def _merged_ids(old: CaseIds, new: list[str], fresh: np.ndarray) -> CaseIds:
    if not fresh.any():
        return old
    return old.append(CaseIds.from_strings([i for i, f in zip(new, fresh, strict=True) if f]))


def _merged_categorical(old: pd.Categorical, new: pd.Categorical,
                        rows: tuple[np.ndarray, np.ndarray]) -> pd.Categorical:
    categories = old.categories
    extra = new.categories.difference(categories)
    old_codes = np.asarray(old.codes)
    if len(extra):
        categories = categories.append(extra).sort_values()
        remap = np.append(categories.get_indexer(old.categories), -1)  # code -1 stays -1
        old_codes = remap[old_codes]
    lookup = np.append(categories.get_indexer(new.categories), -1)
    new_codes = lookup[np.asarray(new.codes)]
    codes = _merged(old_codes.astype(np.int64), new_codes.astype(np.int64), rows)
    return pd.Categorical.from_codes(codes, categories=categories)


# --------------------------------------------------------------------------- reading


def _build_table(engine: Engine, *, version: int, deadline: tuple[int, int]) -> CaseTable:
    with _transient_memory():
        table = _read_table(engine, version=version, deadline=deadline)
    if len(table) >= TRIM_AFTER_ROWS:
        gc.collect()  # the Python text of the parse, then the heap itself, back to the OS
        release_free_memory()
    return table


TRIM_AFTER_ROWS = 100_000
"""Tables at least this large hand their parse buffers back to the OS at once (a full garbage
collection costs a fraction of a second: worth it for a big table, not for a small one)."""


@contextmanager
def _transient_memory():
    """Parse with the system allocator, so the parse buffers can go back to the OS.

    pyarrow's default pool (mimalloc) keeps freed pages for reuse, and so does glibc for
    Python objects; both would keep the transient parse buffers (several hundred MB for a
    million cases) resident for the life of the server.
    """
    previous = pa.default_memory_pool()
    pa.set_memory_pool(pa.system_memory_pool())
    try:
        yield
    finally:
        pa.set_memory_pool(previous)


def _read_table(engine: Engine, *, version: int, deadline: tuple[int, int]) -> CaseTable:
    stamp = _stamp(engine)  # before the read: what is written meanwhile is read again next time
    units = read_units(engine, with_geometry=False)
    with_grid = bool((units["level"] == "grid").any())
    raw = _read_columns(engine, _select_sql(with_grid=with_grid))
    parts = _parts(raw, deadline)
    parts["times"] = compact_times(parts["times"])
    table = CaseTable(**parts, levels={}, version=version, deadline=deadline,
                      latest_other=_latest_other_timestamp(engine), stamp=stamp)
    table.levels = _unit_indexes(units, table)
    return table


def _parts(raw: dict[str, Any], deadline: tuple[int, int]) -> dict[str, Any]:
    """The table's arrays from the converted columns: due_at filled, flags unpacked, parents."""
    flags = np.asarray(raw["flags"], dtype=np.int64)
    times = {name: raw[name] for name in _TIMES}
    times["due_at"] = filled_due(times["due_at"], times["accepted_at"], flags & 1 > 0, deadline)
    categoricals = {name: raw[name] for name in CATEGORICAL_COLUMNS}
    categoricals["grid_code"] = raw["grid_code"]
    categoricals["village_code"] = raw["village_code"]
    categoricals["street_code"] = _with_parent_codes(raw["street_code"], raw["village_code"], 9)
    categoricals["district_code"] = _with_parent_codes(raw["district_code"],
                                                       categoricals["street_code"], 6)
    return {
        "case_id": raw["case_id"], "times": times,
        "flags": {name: (flags >> bit & 1).astype(bool) for bit, name in enumerate(FLAG_COLUMNS)},
        "categoricals": categoricals, "numbers": {name: raw[name] for name in _NUMBERS},
    }


def filled_due(due: np.ndarray, accepted: np.ndarray, extended: np.ndarray,
               deadline: tuple[int, int]) -> np.ndarray:
    """Return due_at as given, else accepted_at + 60 days (+30 when extended) (办理期限, Art. 34).

    The one place the missing-deadline rule lives; ``deadline`` is (default days, extension
    days). All arrays are int32 minutes.
    """
    days = np.where(extended, deadline[0] + deadline[1], deadline[0]).astype(np.int64)
    derived = np.where(accepted == NULL, NULL, accepted.astype(np.int64) + days * MINUTES_PER_DAY)
    return np.where(due == NULL, derived, due).astype(np.int32)


def _select_sql(*, with_grid: bool, repeats: bool = True) -> str:
    """The one SELECT both backends run: only what the layers need, repeats joined in SQL.

    Flags are packed into one integer; street and district codes are read only when the finer
    code is missing (a village code names its street and district); ``repeated_at`` is the first
    registration of any case whose ``repeat_of`` names this case (``repeats=False``: left empty,
    for the refresh, which takes it from the table; the join costs a scan of every case).
    """
    first = "r.first_registered" if repeats else "NULL"
    items = ["c.case_id"] + [f"c.{name}" for name in TIME_COLUMNS] + [first]
    items.append(
        "(CAST(c.extended AS INTEGER) + 2 * CAST(c.is_repeat AS INTEGER)"
        " + 4 * CAST(c.is_backlog AS INTEGER)"
        " + 8 * (CASE WHEN c.backlog_leader IS NOT NULL AND c.backlog_leader <> '' THEN 1"
        " ELSE 0 END))"
    )
    items += [f"c.{name}" for name in CATEGORICAL_COLUMNS]
    items += [
        "c.village_code",
        "CASE WHEN c.village_code IS NULL THEN c.street_code END",
        "CASE WHEN c.village_code IS NULL AND c.street_code IS NULL THEN c.district_code END",
        "c.grid_code" if with_grid else "NULL",
        "c.lon", "c.lat", "c.people_count", _PERSON_KEY,
    ]
    if not repeats:
        return f"SELECT {', '.join(items)} FROM cases c"
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
        if postgis:
            count, columns = _postgis_texts(cursor, query, len(items))
        else:
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
        return _convert({name: pa.array([], type=_ARROW_TYPES[name]) for name in _READ_NAMES})
    arrays = {}
    for name, text in zip(_READ_NAMES, columns, strict=True):
        parsed = pcsv.read_csv(
            io.BytesIO((text + "\n").encode("utf-8")),
            read_options=pcsv.ReadOptions(column_names=[name]),
            parse_options=pcsv.ParseOptions(delimiter="\x1f", quote_char=False,
                                            ignore_empty_lines=False),
            convert_options=pcsv.ConvertOptions(column_types={name: _ARROW_TYPES[name]},
                                                strings_can_be_null=True),
        )
        if parsed.num_rows != count:
            return _read_rows(engine, sql)
        arrays[name] = parsed.column(name).combine_chunks()
    return _convert(arrays)


POSTGIS_CHUNK_ROWS = 2_000_000
"""Cases per aggregate on PostgreSQL: its result row must stay under the protocol's 1 GB
(about 115 bytes of text per case: at 10,000,000 cases one row would need 1.15 GB)."""


def _postgis_texts(cursor: Any, query: str, n_columns: int) -> tuple[int, list[str | None]]:
    """Run the column aggregate over ranges of the table's pages; join each column's texts.

    One snapshot for every range (REPEATABLE READ), so the ranges partition the rows exactly,
    and one ordered pass per range (no parallel workers), so every column lists the rows of a
    range in the same order. Without ranges, a table of 10,000,000 cases failed with "Cannot
    enlarge string buffer" and the row-by-row fallback ran out of memory.
    """
    cursor.connection.rollback()  # SET TRANSACTION must open the transaction
    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")
    # exact, not pg_class.reltuples: after a bulk load the statistics may count one batch
    cursor.execute("SELECT pg_relation_size('cases') / current_setting('block_size')::int, "
                   "count(*) FROM cases")
    pages, rows = cursor.fetchone()
    per_page = max(1.0, float(rows) / pages) if pages and rows else 1.0
    step = max(1, int(POSTGIS_CHUNK_ROWS / per_page))
    starts = list(range(0, int(pages or 0), step)) or [0]
    total, parts = 0, [[] for _ in range(n_columns)]
    for i, start in enumerate(starts):
        where = f" WHERE c.ctid >= '({start},0)'::tid"
        if i + 1 < len(starts):  # the last range is open: it holds every later page
            where += f" AND c.ctid < '({starts[i + 1]},0)'::tid"
        cursor.execute(query + where)
        count, *columns = cursor.fetchone()
        if not count:
            continue
        total += count
        for part, text in zip(parts, columns, strict=True):
            part.append(text)
    return total, ["\n".join(part) if part else None for part in parts]


def _split_select(items: str) -> list[str]:
    """Split a SELECT list on top-level commas (the list holds no commas inside literals)."""
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
        cursor.execute(sql)
        rows = cursor.fetchall()
        cursor.close()
    finally:
        conn.close()
    return _row_arrays(rows)


def _read_cases(engine: Engine, sql: str, case_ids: list[str]) -> dict[str, Any]:
    """The row-by-row read of some cases, by id (bound parameters: ids are data)."""
    query = sa.text(sql + " WHERE c.case_id IN :ids").bindparams(
        sa.bindparam("ids", expanding=True))
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(query, {"ids": case_ids})]
    return _row_arrays(rows)


def _row_arrays(rows: list[tuple]) -> dict[str, Any]:
    matrix = np.array(rows, dtype=object).reshape(len(rows), len(_READ_NAMES))
    arrays: dict[str, Any] = {}
    for i, name in enumerate(_READ_NAMES):
        column = [None if v is None else v for v in matrix[:, i]]
        if name in _TIMES:
            parsed = pd.to_datetime(pd.Series(column, dtype=object), format="ISO8601")
            arrays[name] = pa.array(parsed.to_numpy(dtype="datetime64[us]"),
                                    type=pa.timestamp("us"), from_pandas=True)
        elif name in _TEXT_NAMES:
            arrays[name] = pa.array([None if v is None else str(v) for v in column],
                                    type=pa.string()).dictionary_encode()
        else:
            arrays[name] = pa.array(column, type=_ARROW_TYPES[name], from_pandas=True)
    return _convert(arrays)


def _convert(arrays: dict[str, pa.Array]) -> dict[str, Any]:
    """Arrow columns → the compact numpy/pandas arrays the table holds."""
    out: dict[str, Any] = {}
    for name, column in arrays.items():
        if name in _TIMES:
            micros = pc.cast(column, pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
            minutes = np.floor_divide(micros.astype(np.int64), 60_000_000)
            nulls = column.is_null().to_numpy(zero_copy_only=False)
            out[name] = np.where(nulls, NULL, minutes).astype(np.int32)
        elif name == "flags":
            out[name] = column.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
        elif name == "case_id":
            out[name] = CaseIds.from_arrow(column)
        elif name in ("lon", "lat"):
            out[name] = column.to_numpy(zero_copy_only=False).astype(np.float32)
        elif name == "people_count":
            out[name] = column.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int32)
        elif name == "person":
            out[name] = _person_index(column)
        else:
            out[name] = _sorted_categorical(column)
    return out


def _person_index(column: pa.Array) -> np.ndarray:
    """The petitioner keys as int32 indices (-1 for none); the key text is not kept."""
    indices = pc.dictionary_encode(column).indices
    return indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int32)


def _sorted_categorical(column: pa.Array) -> pd.Categorical:
    """A dictionary (or string) column as a Categorical with sorted string categories."""
    values = pd.Categorical(column.to_pandas())
    categories = pd.Index(values.categories.astype(str), dtype="str")
    values = values.set_categories(categories, rename=True)
    return values.reorder_categories(categories.sort_values())


def _categorical(values: np.ndarray) -> pd.Categorical:
    """Dictionary-encode an object array of strings/None (categories sorted, -1 for None)."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True, sort=True)
    categories = pd.Index(np.asarray(uniques, dtype=object).astype(str), dtype="str")
    return pd.Categorical.from_codes(codes, categories=categories)


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


def _unit_indexes(units: pd.DataFrame, table: CaseTable) -> dict[str, UnitIndex]:
    """Tie every case to a unit of every level, from its finest known code upward."""
    levels: dict[str, UnitIndex] = {}
    child_level: str | None = None
    n = len(table)
    for level in FINE_TO_COARSE:
        level_units = units[units["level"] == level].sort_values("code").reset_index(drop=True)
        if level_units.empty and level != "city":
            continue
        codes = pd.Index(level_units["code"].astype(str))
        column = f"{level}_code"
        if column in table.categoricals:
            own = _category_positions(table.categoricals[column], codes)
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
        narrow = _narrowest(len(level_units))
        levels[level] = UnitIndex(units=level_units, case_unit=own.astype(narrow))
        child_level = level
    return levels


def _narrowest(units: int) -> type:
    """The smallest signed integer type holding every row of a level and -1 (none).

    The city and its 11 districts take one byte per case, streets and villages two: four levels
    of a million cases hold 6 MB instead of 8 (issue 15's memory budget).
    """
    for kind in (np.int8, np.int16):
        if units < np.iinfo(kind).max:
            return kind
    return np.int32


def _category_positions(column: pd.Categorical, codes: pd.Index) -> np.ndarray:
    """Position of each case's code in ``codes`` (-1 if absent), via the few categories."""
    categories = column.categories.astype(object).to_numpy()
    lookup = np.append(codes.get_indexer(categories), -1)
    return lookup[np.asarray(column.codes)]


def _latest_other_timestamp(engine: Engine) -> int:
    """The latest 转送 time (read in the store; the column is not copied), as minutes."""
    sql = f"SELECT {', '.join(f'max({name})' for name in _LATEST_ONLY)} FROM cases"
    with engine.connect() as conn:
        values = [v for v in conn.execute(sa.text(sql)).one() if v is not None]
    return max((minutes_of(pd.Timestamp(v)) for v in values), default=NULL)
