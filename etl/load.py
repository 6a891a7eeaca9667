"""Write cleaned, attached cases to the store: idempotent upsert and events.

Design (why it is fast and safe):

* **One transaction per run.** Every batch of a run is written inside one database
  transaction together with the run's rejects, events and final ledger counts, so a
  failure anywhere leaves no partial batch and no partial run (the ledger itself, the
  store lock and the staging folders are :mod:`etl.ledger`'s).
* **Upsert by case_id with a row hash.** Incoming rows are classified in pandas against
  the stored ``(case_id, row_hash, status)``: new rows are inserted, rows whose hash
  differs are updated, equal ones are counted ``unchanged`` and not touched. Running
  the same file twice therefore writes nothing the second time.
* **Events.** Each inserted case gets one ``created`` event, written by a single
  ``INSERT … SELECT`` inside the database (its lifecycle is in its own timestamps); an
  updated case gets one event per lifecycle change, dated by the export
  (:func:`etl.events.lifecycle_events`). Unchanged cases get none.
* **Bulk paths.** SQLite: ``executemany`` on the raw sqlite3 connection. PostgreSQL:
  ``COPY`` (CSV written by pyarrow) straight into ``cases`` for new rows, and into a
  temporary table followed by one ``UPDATE … FROM`` for changed rows.
"""

from __future__ import annotations

import binascii
import io
import os
import queue
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from etl.events import TRACKED_COLUMNS, lifecycle_events
from etl.ledger import staging_dir
from geo import schema
from geo.store import is_postgis

BATCH_ROWS = 100_000
STORED_CASE_COLUMNS: tuple[str, ...] = tuple(c.name for c in schema.cases.c)
ATTACHMENT_COLUMNS: tuple[str, ...] = (
    "grid_code", "village_code", "street_code", "district_code", "attach_method",
    "attach_distance_m", "attach_level", "attach_note", "attach_candidates", "address_match",
    "boundary_version",
)
HASHED_CASE_COLUMNS: tuple[str, ...] = tuple(
    c for c in STORED_CASE_COLUMNS
    if c not in ("row_hash", "run_id", "updated_at") + ATTACHMENT_COLUMNS
)
"""What ``row_hash`` covers: the case's own values, not its attachment (which follows the
grid and is kept current by ``gridgov reattach``), so re-running a file after a
boundary import still counts its cases unchanged."""


@dataclass
class LoadCounts:
    """How many incoming rows were inserted, updated or left unchanged."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    events: int = 0


# -- hashing -------------------------------------------------------------------------------


def row_hashes(frame: pd.DataFrame) -> np.ndarray:
    """Return a 64-bit hex hash per row of the case values (for ``unchanged``).

    64 bits suffice: the hash is only compared with the stored hash of the same case_id,
    so a false "unchanged" needs a collision between two versions of one case (2⁻⁶⁴).
    """
    hashes = _hash_columns(frame, list(HASHED_CASE_COLUMNS))
    raw = hashes.astype(">u8").tobytes()
    return np.frombuffer(binascii.hexlify(raw), dtype="S16").astype(str).astype(object)


def _hash_columns(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """``pd.util.hash_pandas_object(frame[columns], index=False)``, the same numbers, faster.

    pandas factorises each column before hashing it ("categorize"); for a column with no
    missing values that only saves time when values repeat, and the hashes are the same
    either way. Near-unique columns without missing values (case ids, phones, ID hashes)
    are therefore hashed directly, at about half the cost.
    """
    try:
        from pandas.core.util.hashing import combine_hash_arrays
    except ImportError:  # pandas moved its helper: the plain public path
        return pd.util.hash_pandas_object(frame[columns], index=False).to_numpy(np.uint64)
    parts = []
    for name in columns:
        column = frame[name]
        values = (column.array if isinstance(column.dtype, pd.api.extensions.ExtensionDtype)
                  else column.to_numpy())
        parts.append(pd.util.hash_array(values, categorize=_worth_factorising(values)))
    return combine_hash_arrays(iter(parts), len(columns)).astype(np.uint64)


def _worth_factorising(values: pd.api.extensions.ExtensionArray | np.ndarray) -> bool:
    if len(values) < 10_000 or values.dtype.kind in "biufcmM" or pd.isna(values).any():
        return True  # (with missing values the two ways differ: keep pandas' default)
    sample = values[:: max(1, len(values) // 50_000)]
    return len(pd.unique(sample)) < 0.95 * len(sample)


# -- cases ---------------------------------------------------------------------------------


def write_cases(
    conn: Connection,
    frame: pd.DataFrame,
    *,
    run_id: int,
    progress: bool = False,
    timings: dict[str, float] | None = None,
) -> LoadCounts:
    """Upsert cases by case_id inside the caller's transaction; append their events.

    Parameters
    ----------
    frame
        One row per case with every column of ``geo.schema.cases`` except run_id and
        updated_at, case_id unique. ``row_hash`` may be left out: it is then computed
        here (:func:`row_hashes`), for new cases part by part while earlier parts are
        being written, so hashing overlaps the database's work.
    timings
        When given, receives seconds per step (load.classify, load.insert, …) for benches.
    """
    clock = _Clock(timings)
    existing = _existing_cases(conn)
    position = pd.Index(existing["case_id"]).get_indexer(frame["case_id"])
    is_new = position < 0
    if "row_hash" not in frame.columns and not is_new.all():  # needed now, to compare
        frame = frame.assign(row_hash=row_hashes(frame))
    merged = _classify(frame, existing, position)
    changed = ~is_new & (merged["row_hash"].to_numpy() != merged["row_hash_old"].to_numpy())
    now = datetime.now().replace(microsecond=0)
    rows = frame.assign(run_id=run_id, updated_at=now)
    new_rows = rows if is_new.all() else rows[is_new]
    changed_rows = rows[changed]
    writer = (_PostgresWriter(conn) if is_postgis(conn.engine)
              else _SqliteWriter(conn, staging=staging_dir(conn.engine, run_id, create=False)))
    bar = _progress(len(new_rows) + len(changed_rows), progress)
    clock.lap("load.classify")
    rebuild = _bulk(len(new_rows), len(existing))
    try:  # the writer's close() deletes its staging files, whatever fails
        writer.prepare(new_rows)
        _begin(conn)
        if rebuild:
            _drop_indexes(conn)
        clock.lap("load.stage")
        for start, batch in _batches(new_rows):
            _insert_batch(writer, batch, start=start)
            bar.update(len(batch))
        writer.finish()
    finally:
        writer.close()
    clock.lap("load.insert")
    # one row per new case: as narrow as it can be (its recorded_at and source are its
    # run's, ingest_run.started_at and kind); update events below carry both explicitly
    conn.execute(sa.text(
        "INSERT INTO case_event (case_id, at, event, status, run_id) "
        "SELECT case_id, registered_at, 'created', status, run_id FROM cases WHERE run_id = :r"
    ), {"r": run_id})
    clock.lap("load.events")
    if rebuild:
        _create_indexes(conn)
    clock.lap("load.indexes")
    old = _stored_values(conn, changed_rows["case_id"])
    for _start, batch in _batches(changed_rows):
        writer.update(batch)
        bar.update(len(batch))
    bar.close()
    events = _write_events(conn, old, changed_rows, run_id=run_id, now=now)
    clock.lap("load.update")
    return LoadCounts(int(is_new.sum()), int(changed.sum()),
                      int(len(frame) - is_new.sum() - changed.sum()), events)


def _hashed(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows with their ``row_hash`` (computed when the caller left it out)."""
    if "row_hash" in rows.columns:
        return rows
    return rows.assign(row_hash=row_hashes(rows))


class _Clock:
    def __init__(self, timings: dict[str, float] | None) -> None:
        self.timings = timings
        self.last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        if self.timings is not None:
            self.timings[name] = now - self.last
        self.last = now


BULK_ROWS = 100_000
PG_INDEX_MEMORY = "256MB"
_BULK_INDEXES = (*schema.cases.indexes, *schema.case_event.indexes)


def _bulk(new: int, existing: int) -> bool:
    """Rebuilding secondary indexes beats maintaining them when a run adds many rows."""
    return new >= BULK_ROWS and new >= existing


def _begin(conn: Connection) -> None:
    """Open the SQLite transaction explicitly, so DDL below is inside it too.

    (sqlite3 only opens one implicitly before INSERT/UPDATE/DELETE; DROP INDEX would
    otherwise auto-commit.)
    """
    if not is_postgis(conn.engine):
        dbapi = conn.connection.driver_connection
        if not dbapi.in_transaction:
            dbapi.execute("BEGIN")


def _drop_indexes(conn: Connection) -> None:
    if is_postgis(conn.engine):  # room to sort in memory when the indexes are rebuilt
        conn.exec_driver_sql(f"SET LOCAL maintenance_work_mem = '{PG_INDEX_MEMORY}'")
    for index in _BULK_INDEXES:
        index.drop(conn, checkfirst=True)
    if is_postgis(conn.engine):  # the GiST index of the generated point (migration 0001)
        conn.exec_driver_sql("DROP INDEX IF EXISTS ix_cases_geom")


def _create_indexes(conn: Connection) -> None:
    if not is_postgis(conn.engine):  # let SQLite's sorter use helper threads for the builds
        threads = conn.exec_driver_sql("PRAGMA threads").scalar()
        conn.exec_driver_sql(f"PRAGMA threads={max(2, os.cpu_count() or 1)}")
        try:
            for index in _BULK_INDEXES:
                index.create(conn, checkfirst=True)
        finally:
            conn.exec_driver_sql(f"PRAGMA threads={int(threads or 0)}")
        return
    for index in _BULK_INDEXES:
        index.create(conn, checkfirst=True)
    if is_postgis(conn.engine):
        conn.exec_driver_sql(
            "CREATE INDEX IF NOT EXISTS ix_cases_geom ON cases USING GIST (geom)")


def _insert_batch(writer: _SqliteWriter | _PostgresWriter, batch: pd.DataFrame, *,
                  start: int) -> None:
    """Insert one batch of new cases (a seam for tests that inject a failure)."""
    writer.insert(batch, start=start)


# -- internals -----------------------------------------------------------------------------


def _existing_cases(conn: Connection) -> pd.DataFrame:
    """Stored (case_id, row_hash_old, status_old), read in bulk.

    PostgreSQL: ``COPY … TO STDOUT`` parsed by pyarrow; SQLite: the sqlite3 cursor on the
    run's own connection.
    """
    query = "SELECT case_id, row_hash, status FROM cases"
    names = ["case_id", "row_hash_old", "status_old"]
    if is_postgis(conn.engine):
        buffer = io.BytesIO()
        with conn.connection.driver_connection.cursor() as cur:
            with cur.copy(f"COPY ({query}) TO STDOUT WITH (FORMAT csv)") as copy:
                for block in copy:
                    buffer.write(block)
        if buffer.tell() == 0:
            return pd.DataFrame(columns=names, dtype="str")
        table = pacsv.read_csv(
            io.BytesIO(buffer.getvalue()),
            read_options=pacsv.ReadOptions(column_names=names),
            convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in names}))
        return table.to_pandas()
    # plain tuples from the sqlite3 cursor: pandas probes SQLAlchemy rows for attributes
    # one by one (seconds for a few hundred thousand cases)
    rows = conn.connection.driver_connection.execute(query).fetchall()
    return pd.DataFrame(rows, columns=names, dtype="str")


def _classify(frame: pd.DataFrame, existing: pd.DataFrame, position: np.ndarray) -> pd.DataFrame:
    """Line incoming rows up with stored ones by case_id (positions, not a merge)."""
    found = position >= 0
    old_hash = np.full(len(frame), None, dtype=object)
    old_status = np.full(len(frame), None, dtype=object)
    old_hash[found] = existing["row_hash_old"].to_numpy(dtype=object)[position[found]]
    old_status[found] = existing["status_old"].to_numpy(dtype=object)[position[found]]
    new_hash = (frame["row_hash"].to_numpy(dtype=object) if "row_hash" in frame.columns
                else np.full(len(frame), None, dtype=object))  # all new: hashed later
    return pd.DataFrame({"row_hash": new_hash, "row_hash_old": old_hash,
                         "status_old": old_status})


def _batches(frame: pd.DataFrame) -> Iterator[tuple[int, pd.DataFrame]]:
    for start in range(0, len(frame), BATCH_ROWS):
        yield start, frame.iloc[start:start + BATCH_ROWS]


def _progress(total: int, enabled: bool):  # noqa: ANN202 (tqdm or a stand-in)
    if enabled and total:
        from tqdm import tqdm

        return tqdm(total=total, unit="件", desc="写入 / writing", leave=False)

    class _Silent:
        def update(self, _n: int) -> None: ...

        def close(self) -> None: ...

    return _Silent()


def _stored_values(conn: Connection, case_ids: pd.Series) -> pd.DataFrame:
    """The stored lifecycle values of some cases, in the order of ``case_ids``."""
    columns = ["case_id", *TRACKED_COLUMNS]
    if case_ids.empty:
        return pd.DataFrame(columns=columns)
    table = schema.cases
    ids = case_ids.tolist()
    rows = []
    for start in range(0, len(ids), 1000):
        rows += [tuple(r) for r in conn.execute(
            sa.select(*(table.c[c] for c in columns))
            .where(table.c.case_id.in_(ids[start:start + 1000]))).all()]
    stored = pd.DataFrame(rows, columns=columns).set_index("case_id")
    return stored.reindex(ids).reset_index()


def _write_events(conn: Connection, old: pd.DataFrame, new: pd.DataFrame, *, run_id: int,
                  now: datetime) -> int:
    """Append the lifecycle events of updated cases; return how many."""
    events = lifecycle_events(old, new.reset_index(drop=True), now=now)
    if events.empty:
        return 0
    events = events.assign(at=pd.to_datetime(events["at"]).astype("datetime64[us]"),
                           run_id=run_id, recorded_at=pd.Timestamp(now), source="import")
    columns = ["case_id", "at", "event", "status", "detail", "run_id", "recorded_at", "source"]
    if is_postgis(conn.engine):
        with conn.connection.driver_connection.cursor() as cur:
            with cur.copy(f"COPY case_event ({', '.join(columns)}) FROM STDIN "
                          "WITH (FORMAT csv)") as copy:
                copy.write(_csv_bytes(events, columns))
    else:  # the sqlite3 cursor with plain values (SQLAlchemy's per-row binds cost seconds)
        conn.connection.driver_connection.executemany(
            f"INSERT INTO case_event ({', '.join(columns)}) "
            f"VALUES ({', '.join('?' * len(columns))})", _sqlite_values(events, columns))
    return len(events)


def _sqlite_values(frame: pd.DataFrame, columns: list[str]) -> list[tuple]:
    """Columns → Python values sqlite3 stores as SQLAlchemy would (ISO text datetimes)."""
    out = []
    for name in columns:
        s = frame[name]
        if pd.api.types.is_datetime64_any_dtype(s.dtype):
            out.append(_sqlite_datetime_text(s).tolist())
        elif pd.api.types.is_bool_dtype(s.dtype):
            out.append(s.to_numpy(dtype=np.int64).tolist())
        elif pd.api.types.is_float_dtype(s.dtype):
            arr = s.to_numpy(dtype=object, copy=True)
            arr[s.isna().to_numpy()] = None
            out.append(arr.tolist())
        else:
            arr = s.to_numpy(dtype=object, copy=True)
            arr[pd.isna(arr)] = None
            out.append(arr.tolist())
    return list(zip(*out, strict=True))


def _sqlite_datetime_text(s: pd.Series) -> np.ndarray:
    """Datetimes as SQLAlchemy's SQLite text ('YYYY-MM-DD HH:MM:SS.ffffff'), NaT → None."""
    arr = s.to_numpy(dtype="datetime64[us]")
    text = arr.astype("U26")
    if len(text):
        chars = text.view(np.uint32).reshape(len(text), -1).copy()
        chars[:, 10] = ord(" ")
        text = chars.view("U26").reshape(-1)
    text = text.astype(object)
    text[np.isnat(arr)] = None
    return text


class _SqliteWriter:
    """SQLite bulk path.

    With ``adbc-driver-sqlite`` installed, new rows go through staging files written by
    ADBC (columnar binding in C, no Python object per value), one file per part, with
    journalling and syncing off (throwaway files): a thread computes the row hashes part by
    part while worker threads stage each hashed part (ADBC releases the GIL). Only when every
    part is written and its ADBC connection closed are the files ATTACHed (before the run's
    transaction starts: ATTACH is refused inside one), and the caller copies each part into
    ``cases`` by ``INSERT … SELECT`` inside the run's one transaction. Without ADBC:
    ``executemany`` on the sqlite3 connection.

    Why staging is finished before ATTACH: ADBC links its own copy of SQLite, so two copies
    share this process. POSIX locks do not keep one process from itself, so the sqlite3 copy
    could read a staging file while the ADBC copy was writing it (a statement's
    schema check may read every attached file), and one copy's close drops the other's locks
    (sqlite.org/howtocorrupt.html, 2.2.1). Overlapping the writes with the copy made 2 of
    900 looped demo builds fail with "database disk image is malformed"; 0 of 1,200 since.
    """

    def __init__(self, conn: Connection, *, staging: Path) -> None:
        self.conn = conn
        self.dbapi = conn.connection.driver_connection
        self.staging = staging
        self._parts: list[tuple[str, Path, int, int]] = []  # schema, file, first row, rows

    def prepare(self, rows: pd.DataFrame) -> None:
        """Stage all new rows, then ATTACH the finished files while no transaction is open."""
        adbc = _adbc_sqlite()
        if adbc is None or rows.empty or self.dbapi.in_transaction:
            return
        self._detach_leftover()
        bounds = np.linspace(0, len(rows), min(STAGING_PARTS, len(rows)) + 1).astype(int)
        self.staging.mkdir(parents=True, exist_ok=True)  # the run's own folder (etl.ledger)
        for i, (first, stop) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
            self._parts.append((f"gridgov_staging{i}", self.staging / f"part{i}.db",
                                int(first), int(stop - first)))
        with ThreadPoolExecutor(1) as hasher, ThreadPoolExecutor(STAGING_THREADS) as stagers:
            hashed = [hasher.submit(_hashed, rows.iloc[first:first + n])
                      for _schema, _path, first, n in self._parts]
            staged = [stagers.submit(_stage_when_hashed, adbc, path, part)
                      for (_schema, path, _first, _n), part in zip(self._parts, hashed,
                                                                    strict=True)]
            for future in staged:
                future.result()  # re-raises a staging error
        for schema_name, path, _first, _n in self._parts:
            self.dbapi.execute(f"ATTACH DATABASE ? AS {schema_name}", (str(path),))

    def insert(self, batch: pd.DataFrame, *, start: int) -> None:
        columns = list(STORED_CASE_COLUMNS)
        if self._parts:
            stop = start + len(batch)
            for schema_name, _path, first, n in self._parts:
                lo, hi = max(start, first) - first, min(stop, first + n) - first
                if lo < hi:
                    self.dbapi.execute(
                        f"INSERT INTO cases ({', '.join(columns)}) SELECT {', '.join(columns)} "
                        f"FROM {schema_name}.batch WHERE rowid > ? AND rowid <= ?", (lo, hi))
            return
        sql = (f"INSERT INTO cases ({', '.join(columns)}) "
               f"VALUES ({', '.join('?' * len(columns))})")
        self.dbapi.executemany(sql, _sqlite_values(_hashed(batch), columns))

    def finish(self) -> None:
        """Nothing pending: every batch was written by :meth:`insert`."""

    def close(self) -> None:
        """Delete the staging files (their attachments go on the next use)."""
        for _schema, path, _first, _n in self._parts:
            path.unlink(missing_ok=True)
        self._parts = []

    def update(self, batch: pd.DataFrame) -> None:
        columns = [c for c in STORED_CASE_COLUMNS if c != "case_id"]
        sql = (f"UPDATE cases SET {', '.join(c + ' = ?' for c in columns)} WHERE case_id = ?")
        self.dbapi.executemany(sql, _sqlite_values(batch, columns + ["case_id"]))


    def _detach_leftover(self) -> None:
        names = [row[1] for row in self.dbapi.execute("PRAGMA database_list")]
        for name in names:
            if name.startswith("gridgov_staging"):
                self.dbapi.execute(f"DETACH DATABASE {name}")


STAGING_PARTS = 8
"""Staging files (one ADBC connection each); hashing a part overlaps staging the others."""
STAGING_THREADS = max(1, min(4, os.cpu_count() or 1))


def _stage_when_hashed(adbc, path: Path, part) -> None:  # noqa: ANN001 (ADBC module, future)
    """Write a part's rows, once hashed, into table ``batch`` of its staging file."""
    _stage(adbc, path, part.result())


def _stage(adbc, path: Path, rows: pd.DataFrame) -> None:  # noqa: ANN001 (the ADBC module)
    """Write rows into table ``batch`` of a staging file (no journal, no fsync)."""
    table = _arrow_table(rows, list(STORED_CASE_COLUMNS), sqlite_text_datetimes=True)
    with adbc.connect(str(path), autocommit=True) as staging:
        with staging.cursor() as cur:
            for pragma in ("journal_mode=OFF", "synchronous=OFF"):
                cur.execute(f"PRAGMA {pragma}")
                cur.fetchall()
            cur.adbc_ingest("batch", table, mode="replace")


def _adbc_sqlite():  # noqa: ANN202 (module or None)
    try:
        import adbc_driver_sqlite.dbapi as adbc
    except ImportError:
        return None
    return adbc


class _PostgresWriter:
    """PostgreSQL bulk path: one ``COPY … FROM STDIN`` for all new rows, fed by a thread.

    The main thread hashes and encodes batch k+1 (CSV by pyarrow) while the copy thread
    streams batch k to the server, so the client's work hides behind the server's
    parsing. Only the copy thread touches the connection until :meth:`finish`.
    """

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.dbapi = conn.connection.driver_connection
        self._temp = False
        self._queue: queue.Queue | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def prepare(self, rows: pd.DataFrame) -> None:
        """Nothing to stage: COPY streams each batch."""

    def insert(self, batch: pd.DataFrame, *, start: int) -> None:
        data = _csv_bytes(_hashed(batch), list(STORED_CASE_COLUMNS))
        if self._thread is None:
            self._queue = queue.Queue(maxsize=2)
            self._thread = threading.Thread(target=self._copy_from_queue, daemon=True,
                                            name="gridgov-copy")
            self._thread.start()
        self._put(data)

    def finish(self) -> None:
        """End the COPY and wait for the server; re-raise what went wrong there."""
        if self._thread is None:
            return
        self._put(_END)
        self._thread.join()
        self._thread = None
        if self._error is not None:
            raise self._error

    def close(self) -> None:
        """Abort a COPY still open (an error in the main thread); the transaction rolls back."""
        if self._thread is not None:
            self._put(_ABORT)
            self._thread.join()
            self._thread = None

    def update(self, batch: pd.DataFrame) -> None:
        columns = list(STORED_CASE_COLUMNS)
        with self.dbapi.cursor() as cur:
            if not self._temp:
                cur.execute(f"CREATE TEMP TABLE _incoming_cases ON COMMIT DROP AS "
                            f"SELECT {', '.join(columns)} FROM cases WITH NO DATA")
                self._temp = True
            cur.execute("TRUNCATE _incoming_cases")
        self._copy([_csv_bytes(batch, columns)], "_incoming_cases")
        assignments = ", ".join(f"{c} = i.{c}" for c in columns if c != "case_id")
        with self.dbapi.cursor() as cur:
            cur.execute(f"UPDATE cases SET {assignments} FROM _incoming_cases i "
                        f"WHERE cases.case_id = i.case_id")

    def _put(self, item: object) -> None:
        while self._thread is not None and self._thread.is_alive():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue
        if self._error is not None and item is not _ABORT:
            raise self._error

    def _copy_from_queue(self) -> None:
        def blocks() -> Iterator[bytes]:
            while True:
                item = self._queue.get()
                if item is _END:
                    return
                if item is _ABORT:
                    raise _CopyAborted
                yield item

        try:
            self._copy(blocks(), "cases")
        except _CopyAborted:
            pass
        except BaseException as exc:  # handed to the main thread by finish()
            self._error = exc

    def _copy(self, blocks, table: str) -> None:  # noqa: ANN001 (iterable of bytes)
        columns = list(STORED_CASE_COLUMNS)
        with self.dbapi.cursor() as cur:
            with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN "
                          f"WITH (FORMAT csv)") as copy:
                for data in blocks:
                    view = memoryview(data)
                    for start in range(0, len(view), 8 << 20):
                        copy.write(view[start:start + (8 << 20)])


_END, _ABORT = object(), object()


class _CopyAborted(Exception):
    """Raised inside the COPY block so psycopg ends it with CopyFail."""


def _csv_bytes(batch: pd.DataFrame, columns: list[str]) -> bytes:
    buffer = io.BytesIO()
    pacsv.write_csv(_arrow_table(batch, columns), buffer,
                    pacsv.WriteOptions(include_header=False))
    return buffer.getvalue()


def _arrow_table(frame: pd.DataFrame, columns: list[str], *,
                 sqlite_text_datetimes: bool = False) -> pa.Table:
    """Columns → an Arrow table (strings zero-copy; datetimes as SQLite text if asked)."""
    arrays = {}
    for name in columns:
        s = frame[name]
        if pd.api.types.is_datetime64_any_dtype(s.dtype):
            arr = pa.array(s.to_numpy(dtype="datetime64[us]"), type=pa.timestamp("us"),
                           mask=s.isna().to_numpy())
            if sqlite_text_datetimes:  # SQLAlchemy's SQLite format: 2024-01-02 03:04:05.000000
                arr = pc.cast(arr, pa.string())
            arrays[name] = arr
        elif pd.api.types.is_bool_dtype(s.dtype):
            values = s.to_numpy(dtype=bool)
            arrays[name] = pa.array(values.astype(np.int64) if sqlite_text_datetimes else values)
        elif pd.api.types.is_numeric_dtype(s.dtype):
            arrays[name] = pa.array(s.to_numpy(), from_pandas=True)
        elif isinstance(s.dtype, pd.StringDtype) and s.dtype.storage == "pyarrow":
            arrays[name] = pa.array(s.array).cast(pa.string())
        else:
            values = s.to_numpy(dtype=object, copy=True)
            values[pd.isna(values)] = None
            arrays[name] = pa.array(values, type=pa.string(), from_pandas=True)
    return pa.table(arrays)
