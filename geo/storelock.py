"""The store's write lock (存储写锁): one writer at a time, whoever writes.

Loads (cases, stations, reattach, demo), on-screen corrections and boundary imports all change
what cases are attached to; two at once could interleave (a load attaching cases to polygons a
boundary import is replacing). Each holds this lock for its write; the second waits up to
``settings.store_lock_wait_s`` seconds (and says so in the log), then stops with
:class:`StoreBusyError`, a bilingual message, never a driver error.

SQLite: an OS file lock beside the database file (``filelock``, released by the operating
system when a process dies). PostgreSQL: a session advisory lock on a connection of its own
(released by the server when the connection goes). It lives in ``geo`` because the grid's own
writes (``gridgov grid import``) take it too; the ETL's run ledger (:mod:`etl.ledger`) takes it
around every run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

import filelock
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from geo.errors import GridgovError
from geo.store import is_postgis, sqlite_path

log = logging.getLogger("gridgov.etl")

PG_LOCK_KEY = 0x67726964  # "grid": one advisory lock per database


class StoreBusyError(GridgovError):
    """Another writer holds the store for longer than this one was willing to wait."""


@contextmanager
def store_lock(engine: Engine, *, wait_s: float) -> Iterator[None]:
    """Hold the store's write lock for the body; wait at most ``wait_s`` seconds for it.

    Raises
    ------
    StoreBusyError
        When the lock is still taken after ``wait_s`` seconds (bilingual message).
    """
    if is_postgis(engine):
        with _postgres_lock(engine, wait_s=wait_s):
            yield
        return
    path = sqlite_path(engine)
    if path is None:  # an in-memory store lives in one process only
        yield
        return
    lock = filelock.FileLock(str(path) + ".lock")
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        _say_waiting(wait_s)
        try:
            lock.acquire(timeout=wait_s)
        except filelock.Timeout:
            raise busy(wait_s) from None
    try:
        yield
    finally:
        lock.release()


def busy(wait_s: float) -> StoreBusyError:
    """The error of a writer that waited ``wait_s`` seconds in vain."""
    return StoreBusyError(
        f"数据库正忙：另一个导入正在写入，等待 {wait_s:.0f} 秒后仍未结束，请稍后重试"
        f"（可用 GRIDGOV_STORE_LOCK_WAIT_S 延长等待）/ store busy: another load is still "
        f"writing after {wait_s:.0f} s; try again later (or wait longer with "
        "GRIDGOV_STORE_LOCK_WAIT_S)")


@contextmanager
def _postgres_lock(engine: Engine, *, wait_s: float) -> Iterator[None]:
    conn = engine.connect()
    try:
        deadline = time.monotonic() + wait_s
        said = False
        while not conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"),
                               {"k": PG_LOCK_KEY}).scalar():
            conn.rollback()
            if time.monotonic() >= deadline:
                raise busy(wait_s)
            if not said:
                _say_waiting(wait_s)
                said = True
            time.sleep(0.2)
        conn.commit()  # the lock belongs to the session, not to this transaction
        try:
            yield
        finally:
            conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": PG_LOCK_KEY})
            conn.commit()
    finally:
        conn.close()


def _say_waiting(wait_s: float) -> None:
    log.warning("另一个导入正在写入数据库，最多等待 %.0f 秒 / another load is writing to the "
                "store; waiting up to %.0f s", wait_s, wait_s)
