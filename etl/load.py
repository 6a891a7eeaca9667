"""Write cleaned, attached cases to the store: idempotent upsert, events, rejects, ledger.

Design (why it is fast and safe):

* **One transaction per run.** Every batch of a run is written inside one database
  transaction together with the run's rejects, events and final ledger counts, so a
  failure anywhere leaves no partial batch and no partial run. The ledger row itself is
  opened (``running``) and, on failure, closed (``failed``) in separate short
  transactions, so a failed run is visible while the cases stay untouched.
* **Upsert by case_id with a row hash.** Incoming rows are classified in pandas against
  the stored ``(case_id, row_hash, status)``: new rows are inserted, rows whose hash
  differs are updated, equal ones are counted ``unchanged`` and not touched. Running
  the same file twice therefore writes nothing the second time.
* **Events.** Each inserted case gets one ``created`` event, written by a single
  ``INSERT … SELECT`` inside the database; an updated case whose status changed gets a
  ``status`` event (detail ``old→new``). Unchanged cases get none.
* **Bulk paths.** SQLite: ``executemany`` on the raw sqlite3 connection. PostgreSQL:
  ``COPY`` (CSV written by pyarrow) straight into ``cases`` for new rows, and into a
  temporary table followed by one ``UPDATE … FROM`` for changed rows.
"""

from __future__ import annotations

import binascii
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from geo import schema
from geo.privacy import mask_id_number, mask_name, mask_phone
from geo.store import is_postgis

BATCH_ROWS = 100_000
STORED_CASE_COLUMNS: tuple[str, ...] = tuple(c.name for c in schema.cases.c)
HASHED_CASE_COLUMNS: tuple[str, ...] = tuple(
    c for c in STORED_CASE_COLUMNS if c not in ("row_hash", "run_id", "updated_at")
)
_STATUS_TIME = {"registered": "registered_at", "accepted": "accepted_at",
                "replied": "replied_at", "closed": "closed_at", "not_accepted": "accepted_at"}
_MASKS = {"petitioner_name": mask_name, "petitioner_phone": mask_phone,
          "petitioner_id": mask_id_number}


@dataclass
class LoadCounts:
    """How many incoming rows were inserted, updated or left unchanged."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0


# -- ledger --------------------------------------------------------------------------------


def open_run(engine: Engine, *, kind: str, source_file: str | None, sha256: str | None,
             source_crs: str | None = None) -> int:
    """Record a run as ``running`` in its own transaction; return its run_id."""
    with engine.begin() as conn:
        return int(conn.execute(
            schema.ingest_run.insert().values(
                kind=kind, source_file=source_file, sha256=sha256, source_crs=source_crs,
                started_at=datetime.now(), status="running",
            ).returning(schema.ingest_run.c.run_id)
        ).scalar_one())


def close_run(conn: Connection, run_id: int, **counts: object) -> None:
    """Mark a run ``ok`` with its counts, inside the run's own data transaction."""
    conn.execute(schema.ingest_run.update().where(schema.ingest_run.c.run_id == run_id)
                 .values(status="ok", finished_at=datetime.now(), **counts))


def fail_run(engine: Engine, run_id: int, message: str, *, duration_s: float) -> None:
    """Mark a run ``failed`` in a separate transaction (the data transaction rolled back)."""
    with engine.begin() as conn:
        conn.execute(schema.ingest_run.update().where(schema.ingest_run.c.run_id == run_id)
                     .values(status="failed", finished_at=datetime.now(),
                             duration_s=duration_s, message=message[:2000]))


# -- hashing -------------------------------------------------------------------------------


def row_hashes(frame: pd.DataFrame) -> np.ndarray:
    """Return a 128-bit hex hash per row of the stored case values (for ``unchanged``)."""
    values = frame[list(HASHED_CASE_COLUMNS)]
    h1 = pd.util.hash_pandas_object(values, index=False).to_numpy(np.uint64)
    h2 = pd.util.hash_pandas_object(values, index=False, hash_key="gridgov-rowhash2"
                                    ).to_numpy(np.uint64)
    raw = np.stack([h1, h2], axis=1).astype(">u8").tobytes()
    return np.frombuffer(binascii.hexlify(raw), dtype="S32").astype(str).astype(object)


# -- cases ---------------------------------------------------------------------------------


def write_cases(
    conn: Connection, frame: pd.DataFrame, *, run_id: int, progress: bool = False
) -> LoadCounts:
    """Upsert cases by case_id inside the caller's transaction; append their events.

    Parameters
    ----------
    frame
        One row per case with every column of ``geo.schema.cases`` except run_id and
        updated_at (row_hash included), case_id unique.
    """
    existing = _existing_cases(conn)
    merged = frame[["case_id", "row_hash", "status"]].merge(
        existing, on="case_id", how="left", suffixes=("", "_old"))
    is_new = merged["row_hash_old"].isna().to_numpy()
    changed = ~is_new & (merged["row_hash"] != merged["row_hash_old"]).to_numpy()
    now = datetime.now().replace(microsecond=0)
    rows = frame.assign(run_id=run_id, updated_at=now)
    new_rows, changed_rows = rows[is_new], rows[changed]
    writer = _PostgresWriter(conn) if is_postgis(conn.engine) else _SqliteWriter(conn)
    bar = _progress(len(new_rows) + len(changed_rows), progress)
    for batch in _batches(new_rows):
        _insert_batch(writer, batch)
        bar.update(len(batch))
    conn.execute(sa.text(
        "INSERT INTO case_event (case_id, at, event, status, run_id) "
        "SELECT case_id, registered_at, 'created', status, run_id FROM cases WHERE run_id = :r"
    ), {"r": run_id})
    for batch in _batches(changed_rows):
        writer.update(batch)
        bar.update(len(batch))
    bar.close()
    _status_events(conn, changed_rows, merged[changed], run_id=run_id, now=now)
    return LoadCounts(int(is_new.sum()), int(changed.sum()),
                      int(len(frame) - is_new.sum() - changed.sum()))


def _insert_batch(writer: _SqliteWriter | _PostgresWriter, batch: pd.DataFrame) -> None:
    """Insert one batch of new cases (a seam for tests that inject a failure)."""
    writer.insert(batch)


def write_rejects(conn: Connection, rejects: pd.DataFrame, *, run_id: int) -> None:
    """Store rejected rows: line number, reason code, Chinese reason, raw JSON (masked)."""
    if rejects.empty:
        return
    records = [
        {"run_id": run_id, "line_no": int(r.line_no), "reason_code": r.reason_code,
         "reason": r.reason, "raw": r.raw}
        for r in rejects.itertuples(index=False)
    ]
    conn.execute(schema.reject.insert(), records)


def raw_json(raw: pd.DataFrame, positions: np.ndarray, header_map: dict[str, str]) -> list[str]:
    """Return the raw source values of some rows as JSON, personal fields masked."""
    personal = {h: _MASKS[c] for h, c in header_map.items() if c in _MASKS}
    subset = raw.iloc[positions].drop(columns=["_line"], errors="ignore")
    subset = subset.astype(object).where(subset.notna(), None)
    result = []
    for record in subset.to_dict("records"):
        for header, mask in personal.items():
            if record.get(header) is not None:
                record[header] = mask(str(record[header]))
        result.append(json.dumps({k: _jsonable(v) for k, v in record.items()},
                                 ensure_ascii=False))
    return result


# -- internals -----------------------------------------------------------------------------


def _jsonable(value: object) -> object:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _existing_cases(conn: Connection) -> pd.DataFrame:
    result = conn.exec_driver_sql("SELECT case_id, row_hash, status FROM cases").fetchall()
    frame = pd.DataFrame(result, columns=["case_id", "row_hash_old", "status_old"])
    return frame.astype({"case_id": "str"}) if len(frame) else frame.astype(object)


def _batches(frame: pd.DataFrame) -> Iterator[pd.DataFrame]:
    for start in range(0, len(frame), BATCH_ROWS):
        yield frame.iloc[start:start + BATCH_ROWS]


def _progress(total: int, enabled: bool):  # noqa: ANN202 (tqdm or a stand-in)
    if enabled and total:
        from tqdm import tqdm

        return tqdm(total=total, unit="件", desc="写入 / writing", leave=False)

    class _Silent:
        def update(self, _n: int) -> None: ...

        def close(self) -> None: ...

    return _Silent()


def _status_events(conn: Connection, rows: pd.DataFrame, merged: pd.DataFrame, *, run_id: int,
                   now: datetime) -> None:
    if rows.empty:
        return
    old = merged["status_old"].to_numpy(dtype=object)
    new = rows["status"].to_numpy(dtype=object)
    moved = old != new
    if not moved.any():
        return
    sub = rows[moved]
    at = pd.Series(pd.NaT, index=sub.index, dtype="datetime64[us]")
    for status, column in _STATUS_TIME.items():
        pick = (sub["status"] == status) & at.isna()
        at = at.where(~pick, sub[column])
    at = at.fillna(pd.Timestamp(now))
    records = [
        {"case_id": cid, "at": t.to_pydatetime(), "event": "status", "status": s,
         "detail": f"{o}→{s}", "run_id": run_id}
        for cid, t, s, o in zip(sub["case_id"], at, sub["status"], old[moved], strict=True)
    ]
    conn.execute(schema.case_event.insert(), records)


def _sqlite_values(frame: pd.DataFrame, columns: list[str]) -> list[tuple]:
    """Columns → Python values sqlite3 stores as SQLAlchemy would (ISO text datetimes)."""
    out = []
    for name in columns:
        s = frame[name]
        if pd.api.types.is_datetime64_any_dtype(s.dtype):
            arr = s.to_numpy(dtype="datetime64[us]")
            text = arr.astype("U26")
            chars = text.view(np.uint32).reshape(len(text), -1).copy()
            chars[:, 10] = ord(" ")
            text = chars.view("U26").reshape(-1).astype(object)
            text[np.isnat(arr)] = None
            out.append(text.tolist())
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


class _SqliteWriter:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.dbapi = conn.connection.driver_connection

    def insert(self, batch: pd.DataFrame) -> None:
        columns = list(STORED_CASE_COLUMNS)
        sql = (f"INSERT INTO cases ({', '.join(columns)}) "
               f"VALUES ({', '.join('?' * len(columns))})")
        self.dbapi.executemany(sql, _sqlite_values(batch, columns))

    def update(self, batch: pd.DataFrame) -> None:
        columns = [c for c in STORED_CASE_COLUMNS if c != "case_id"]
        sql = (f"UPDATE cases SET {', '.join(c + ' = ?' for c in columns)} WHERE case_id = ?")
        self.dbapi.executemany(sql, _sqlite_values(batch, columns + ["case_id"]))


class _PostgresWriter:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.dbapi = conn.connection.driver_connection
        self._temp = False

    def insert(self, batch: pd.DataFrame) -> None:
        self._copy(batch, "cases")

    def update(self, batch: pd.DataFrame) -> None:
        columns = list(STORED_CASE_COLUMNS)
        with self.dbapi.cursor() as cur:
            if not self._temp:
                cur.execute(f"CREATE TEMP TABLE _incoming_cases ON COMMIT DROP AS "
                            f"SELECT {', '.join(columns)} FROM cases WITH NO DATA")
                self._temp = True
            cur.execute("TRUNCATE _incoming_cases")
        self._copy(batch, "_incoming_cases")
        assignments = ", ".join(f"{c} = i.{c}" for c in columns if c != "case_id")
        with self.dbapi.cursor() as cur:
            cur.execute(f"UPDATE cases SET {assignments} FROM _incoming_cases i "
                        f"WHERE cases.case_id = i.case_id")

    def _copy(self, batch: pd.DataFrame, table: str) -> None:
        columns = list(STORED_CASE_COLUMNS)
        buffer = io.BytesIO()
        pacsv.write_csv(_arrow_table(batch, columns), buffer,
                        pacsv.WriteOptions(include_header=False))
        with self.dbapi.cursor() as cur:
            with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN "
                          f"WITH (FORMAT csv)") as copy:
                view = buffer.getbuffer()
                for start in range(0, len(view), 8 << 20):
                    copy.write(view[start:start + (8 << 20)])


def _arrow_table(frame: pd.DataFrame, columns: list[str]) -> pa.Table:
    arrays = {}
    for name in columns:
        s = frame[name]
        if pd.api.types.is_datetime64_any_dtype(s.dtype):
            arrays[name] = pa.array(s.to_numpy(dtype="datetime64[us]"), type=pa.timestamp("us"),
                                    mask=s.isna().to_numpy())
        elif pd.api.types.is_bool_dtype(s.dtype) or pd.api.types.is_numeric_dtype(s.dtype):
            arrays[name] = pa.array(s.to_numpy(), from_pandas=True)
        else:
            values = s.to_numpy(dtype=object, copy=True)
            values[pd.isna(values)] = None
            arrays[name] = pa.array(values, type=pa.string(), from_pandas=True)
    return pa.table(arrays)
