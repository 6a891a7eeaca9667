"""The run ledger (运行台账) and everything a run keeps about itself: one module.

Every run that writes data (cases, stations, reattach, demo) is bracketed by
:func:`recorded_run`, which

1. takes the **store lock** (:func:`geo.storelock.store_lock`, which boundary imports take
   too), so two writers at once take turns: the second waits up to
   ``settings.store_lock_wait_s`` seconds (and says so in the log) and then stops with
   :class:`~geo.storelock.StoreBusyError`, a bilingual message, never a driver error;
2. marks runs a killed process left ``running`` as ``aborted`` (中断): while the lock is
   held no other run can be alive (:func:`abort_stale_runs`; ``gridgov runs`` does the
   same, and also recognises a dead process on this host by its pid);
3. removes staging files earlier runs of this store left behind and gives the run its own
   staging folder (:func:`staging_dir`);
4. opens the ledger row (``running``) in its own transaction and, if the body raises,
   marks it ``failed`` with the reason, in another.

The body's data transaction ends with :func:`finish_run`: the reconciliation
(read = inserted + updated + unchanged + rejected, :class:`RunReport`) is checked inside
the transaction, then :func:`close_run` records the counts and bumps the store version
(:func:`geo.store.bump_version`) in the same commit. Rejected rows are recorded per row
(:func:`reject_records`, :func:`write_rejects`) with their line, reason and raw values
(personal fields masked).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from etl.sources import LINE
from geo import schema
from geo.errors import GridgovError, StoreError
from geo.privacy import mask_record
from geo.store import bump_version
from geo.storelock import StoreBusyError, sqlite_path, store_lock

log = logging.getLogger("gridgov.etl")

ABORTED_MESSAGE = "中断：进程已终止，数据未写入 / aborted: the process died; nothing was written"
STAGING_ROOT_NAME = "gridgov-staging"
REJECT_COLUMNS = ("line_no", "reason_code", "reason", "raw")


class ReconciliationError(GridgovError):
    """The counts of a run do not add up (a bug: the run is rolled back)."""


@dataclass
class RunReport:
    """The reconciliation of one run (对账), as stored in the ``ingest_run`` ledger."""

    run_id: int
    rows_read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    unassigned: int = 0
    swapped_fixed: int = 0
    duration_s: float = 0.0
    moved: int = 0
    kind: str = "cases"
    timings: dict[str, float] | None = None
    by_address: dict[str, int] = field(default_factory=dict)
    """Rows placed by address text (地址落格), per finest level reached (village/street/district)."""
    events: int = 0
    """Lifecycle events appended for updated cases (a later export's changes)."""

    @property
    def balanced(self) -> bool:
        """True when read = inserted + updated + unchanged + rejected."""
        return self.rows_read == self.inserted + self.updated + self.unchanged + self.rejected

    def ledger_counts(self) -> dict[str, int | float]:
        """The counts and duration as ``ingest_run`` columns (for :func:`close_run`)."""
        return {"rows_read": self.rows_read, "inserted": self.inserted, "updated": self.updated,
                "unchanged": self.unchanged, "rejected": self.rejected,
                "unassigned": self.unassigned, "swapped_fixed": self.swapped_fixed,
                "moved": self.moved, "duration_s": self.duration_s}

    def reconciliation_line(self) -> str:
        """Return the bilingual reconciliation line printed after every run."""
        ok = "平衡" if self.balanced else "不平衡！"
        ok_en = "balanced" if self.balanced else "NOT BALANCED"
        return (
            f"读取 {self.rows_read} = 新增 {self.inserted} + 更新 {self.updated} + "
            f"未变 {self.unchanged} + 拒收 {self.rejected}（{ok}）；未落格 {self.unassigned}；"
            f"经纬度互换已纠正 {self.swapped_fixed} / read {self.rows_read} = inserted "
            f"{self.inserted} + updated {self.updated} + unchanged {self.unchanged} + rejected "
            f"{self.rejected} ({ok_en}); unassigned {self.unassigned}; swapped lat/lon fixed "
            f"{self.swapped_fixed}"
        )

    def address_line(self) -> str:
        """Return the bilingual line: rows placed by address, per level reached."""
        n = {lvl: self.by_address.get(lvl, 0) for lvl in ("village", "street", "district")}
        return (f"按地址落格：村居 {n['village']}，仅到镇街 {n['street']}，仅到区 {n['district']} / "
                f"placed by address: village {n['village']}, street only {n['street']}, "
                f"district only {n['district']}")


# -- the run bracket -----------------------------------------------------------------------


@contextmanager
def recorded_run(engine: Engine, *, kind: str, source_file: str | None, sha256: str | None,
                 source_crs: str | None = None, started: float,
                 wait_s: float = 0.0) -> Iterator[int]:
    """Hold the store, open a ledger run for the body, mark it ``failed`` if the body raises.

    Every run (cases, stations, reattach) is recorded this way, so a run that died still
    says why in the ledger although its data transaction rolled back; a run that was
    killed is marked ``aborted`` by the next one.

    Raises
    ------
    StoreBusyError
        When another run still holds the store after ``wait_s`` seconds.
    """
    with store_lock(engine, wait_s=wait_s):
        abort_stale_runs(engine, lock_held=True)
        clear_staging(engine)
        run_id = open_run(engine, kind=kind, source_file=source_file, sha256=sha256,
                          source_crs=source_crs)
        try:
            yield run_id
        except sa.exc.DBAPIError as exc:  # never a raw driver error for the user
            fail_run(engine, run_id, f"{type(exc).__name__}: {exc}",
                     duration_s=time.perf_counter() - started)
            raise _store_failed(run_id, exc) from exc
        except BaseException as exc:
            fail_run(engine, run_id, f"{type(exc).__name__}: {exc}",
                     duration_s=time.perf_counter() - started)
            raise
        finally:
            _remove_staging(staging_dir(engine, run_id, create=False))


def finish_run(conn: Connection, report: RunReport, *, started: float) -> None:
    """Check the reconciliation and close the run, inside the run's data transaction.

    Raises
    ------
    ReconciliationError
        When the counts do not add up (the transaction then rolls back).
    """
    if not report.balanced:
        raise ReconciliationError(report.reconciliation_line())
    report.duration_s = time.perf_counter() - started
    close_run(conn, report.run_id, **report.ledger_counts())


def open_run(engine: Engine, *, kind: str, source_file: str | None, sha256: str | None,
             source_crs: str | None = None) -> int:
    """Record a run as ``running`` in its own transaction; return its run_id."""
    with engine.begin() as conn:
        return int(conn.execute(
            schema.ingest_run.insert().values(
                kind=kind, source_file=source_file, sha256=sha256, source_crs=source_crs,
                started_at=datetime.now(), status="running", pid=os.getpid(),
                host=socket.gethostname()[:255],
            ).returning(schema.ingest_run.c.run_id)
        ).scalar_one())


def close_run(conn: Connection, run_id: int, **counts: object) -> None:
    """Mark a run ``ok`` with its counts, inside the run's own data transaction.

    Also advances the store version (:func:`geo.store.bump_version`), so every cache sees
    the new data exactly when it is committed.
    """
    bump_version(conn)
    conn.execute(schema.ingest_run.update().where(schema.ingest_run.c.run_id == run_id)
                 .values(status="ok", finished_at=datetime.now(), **counts))


def fail_run(engine: Engine, run_id: int, message: str, *, duration_s: float) -> None:
    """Mark a run ``failed`` in a separate transaction (the data transaction rolled back)."""
    with engine.begin() as conn:
        conn.execute(schema.ingest_run.update().where(schema.ingest_run.c.run_id == run_id)
                     .values(status="failed", finished_at=datetime.now(),
                             duration_s=duration_s, message=message[:2000]))


def abort_stale_runs(engine: Engine, *, lock_held: bool = False) -> int:
    """Mark runs left ``running`` by a dead process as ``aborted`` (中断); return how many.

    With the store lock held no other run can be alive, so every ``running`` row is stale.
    Without it (``gridgov runs``), the lock is tried once without waiting; if another run
    holds it, only runs of this host whose process no longer exists are marked.
    """
    t = schema.ingest_run
    with engine.connect() as conn:
        running = conn.execute(sa.select(t.c.run_id, t.c.pid, t.c.host)
                               .where(t.c.status == "running")).all()
    if not running:
        return 0
    if lock_held:
        stale = [r.run_id for r in running]
    else:
        try:
            with store_lock(engine, wait_s=0.0):
                return abort_stale_runs(engine, lock_held=True)
        except StoreBusyError:
            here = socket.gethostname()[:255]
            stale = [r.run_id for r in running
                     if r.host == here and r.pid is not None and not _process_alive(r.pid)]
    if stale:
        with engine.begin() as conn:
            conn.execute(t.update().where(t.c.run_id.in_(stale), t.c.status == "running")
                         .values(status="aborted", finished_at=datetime.now(),
                                 message=ABORTED_MESSAGE))
    return len(stale)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # somebody else's process: alive
        return True
    except OSError:
        return False
    return True


def _store_failed(run_id: int, exc: sa.exc.DBAPIError) -> GridgovError:
    reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0][:200]
    if isinstance(exc, sa.exc.OperationalError) and "locked" in reason:
        return StoreBusyError(f"数据库正忙，运行 {run_id} 未写入任何数据，请稍后重试 / store busy: "
                              f"run {run_id} wrote nothing; try again later")
    return StoreError(f"写入数据库失败，运行 {run_id} 未写入任何数据（已记为失败，见 gridgov runs）"
                      f"：{reason} / writing to the store failed; run {run_id} wrote nothing "
                      f"(marked failed, see gridgov runs): {reason}")


# -- staging files -------------------------------------------------------------------------


def staging_dir(engine: Engine, run_id: int, *, create: bool = True) -> Path:
    """The folder of a run's staging files (removed when the run ends or by the next run)."""
    path = _staging_root(engine) / f"run-{run_id}"
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def clear_staging(engine: Engine) -> int:
    """Remove every staging folder earlier runs of this store left (call with the lock held)."""
    root = _staging_root(engine)
    if not root.is_dir():
        return 0
    removed = 0
    for child in root.iterdir():
        if child.name.startswith("run-"):
            shutil.rmtree(child, ignore_errors=True)
            removed += 1
    return removed


def _remove_staging(path: Path) -> None:
    """Remove a run's staging folder, and its store's folder once that is empty."""
    shutil.rmtree(path, ignore_errors=True)
    try:
        path.parent.rmdir()
    except OSError:  # other runs' folders, or already gone
        pass


def _staging_root(engine: Engine) -> Path:
    url = engine.url.render_as_string(hide_password=True)
    path = sqlite_path(engine)
    key = hashlib.sha256(str(path if path is not None else url).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / STAGING_ROOT_NAME / key


# -- rejects -------------------------------------------------------------------------------


def reject_records(raw: pd.DataFrame, rejects: pd.DataFrame,
                   header_map: dict[str, str]) -> pd.DataFrame:
    """Turn rejects (``pos``, ``reason_code``, ``reason``) into ledger rows.

    Parameters
    ----------
    raw
        The source frame as read (its ``_line`` column gives the line numbers).
    rejects
        One row per rejected position of ``raw`` (the first reason of a position wins).
    header_map
        Source header → canonical column, to mask personal fields in the raw JSON.

    Returns
    -------
    DataFrame
        :data:`REJECT_COLUMNS`, ordered by position.
    """
    if rejects.empty:
        return pd.DataFrame(columns=list(REJECT_COLUMNS))
    rejects = rejects.drop_duplicates("pos").sort_values("pos")
    positions = rejects["pos"].to_numpy(dtype=np.int64)
    return pd.DataFrame({
        "line_no": raw[LINE].to_numpy()[positions].astype(np.int64),
        "reason_code": rejects["reason_code"].to_numpy(),
        "reason": rejects["reason"].to_numpy(),
        "raw": raw_json(raw, positions, header_map),
    })


def write_rejects(conn: Connection, rejects: pd.DataFrame, *, run_id: int) -> None:
    """Store rejected rows: line number, reason code, Chinese reason, raw JSON (masked)."""
    if rejects.empty:
        return
    records = [
        {"run_id": run_id, "line_no": int(r.line_no), "reason_code": r.reason_code,
         "reason": str(r.reason).replace("\x00", "\ufffd"), "raw": r.raw}  # no NUL in text
        for r in rejects.itertuples(index=False)
    ]
    conn.execute(schema.reject.insert(), records)


def raw_json(raw: pd.DataFrame, positions: np.ndarray, header_map: dict[str, str]) -> list[str]:
    """Return what a clerk needs of some rows to fix them, as JSON, personal data masked
    (:func:`geo.privacy.mask_record`: known personal columns, unread columns dropped, phone
    and ID numbers inside free text)."""
    subset = raw.iloc[positions].drop(columns=[LINE], errors="ignore")
    subset = subset.astype(object).where(subset.notna(), None)
    result = []
    for record in subset.to_dict("records"):
        record = mask_record({str(k): _jsonable(v) for k, v in record.items()}, header_map)
        result.append(json.dumps(record, ensure_ascii=False))
    return result


def _jsonable(value: object) -> object:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
