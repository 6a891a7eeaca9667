"""The audit trail (审计记录): who saw, exported, revealed or was refused what, tamper-evident.

Append-only and hash-chained: each row carries the SHA-256 of the previous row's hash and its
own fields, so changing a row breaks its hash, deleting one breaks the next row's link and the
gap-free sequence, and inserting one breaks both (:func:`verify`). The chain's last sequence
number and hash also sit in ``audit_head``, so a truncated tail is seen too.

A row is written inside the caller's transaction (:func:`record` takes the open connection),
so it commits with the action it records or neither does ("记录与操作同一事务"). The first
statement of :func:`record` updates the one ``audit_head`` row: that takes the write lock on
SQLite and the row lock on PostgreSQL, so concurrent writers take turns and the chain never
forks. Audit writes do not bump the store version: they are not data and must not empty the
dashboard's caches.

Rows never hold petitioners' contact data: a reveal records the case id and the reason, not
what was shown (信访工作条例, docs/domain.md §8).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from geo import schema
from geo.errors import GridgovError
from geo.vocab import AUDIT_ACTIONS

GENESIS = "0" * 64
"""The ``prev_hash`` of the first row."""
HASHED = ("seq", "at", "username", "role", "scope_code", "action", "unit_code", "case_ids",
          "count", "address", "detail", "prev_hash")
"""The fields a row's hash covers, in this order."""
MAX_CASE_IDS = 200
"""Case ids listed in one row at most; beyond that the row gives the count."""
EXPORT_COLUMNS_ZH = {
    "seq": "序号", "at": "时间", "username": "用户", "role": "角色", "scope_code": "辖区",
    "action": "操作", "unit_code": "单位", "case_ids": "案件", "count": "件数",
    "address": "客户端地址", "detail": "说明", "prev_hash": "前一行哈希", "row_hash": "本行哈希",
}


class AuditError(GridgovError):
    """The audit trail could not be written (the action it records fails with it)."""


@dataclass(frozen=True)
class Actor:
    """Who an audit row is about: the account (or the CLI user) and its scope."""

    username: str | None
    role: str | None = None
    scope_code: str | None = None


@dataclass
class Verification:
    """What :func:`verify` found: the rows checked, the head hash, every problem."""

    rows: int
    head_seq: int
    head_hash: str
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the chain is intact."""
        return not self.problems


def record(conn: Connection, action: str, *, actor: Actor | None = None,
           unit_code: str | None = None, case_ids: Iterable[str] = (), count: int | None = None,
           address: str | None = None, detail: str | None = None,
           at: datetime | None = None) -> int:
    """Append one row to the trail inside the caller's transaction; return its sequence number.

    Parameters
    ----------
    conn
        The connection of the transaction that performs the action (``engine.begin()``).
    action
        A :data:`geo.vocab.AUDIT_ACTIONS` key.
    case_ids
        The cases concerned (at most :data:`MAX_CASE_IDS` are listed; ``count`` says how many).

    Raises
    ------
    AuditError
        Unknown action, or the store has no audit tables (run ``gridgov init``).
    """
    if action not in AUDIT_ACTIONS:
        raise AuditError(f"未知审计操作 {action!r} / unknown audit action {action!r}")
    actor = actor or Actor(None)
    ids = [str(c) for c in case_ids]
    try:
        last = _lock_head(conn)
        if last is None:
            raise AuditError("审计表缺少头记录，请运行 gridgov init / the audit head row is "
                             "missing: run `gridgov init`")
        last_seq, last_hash = last
        row = {
            "seq": int(last_seq) + 1,
            "at": _microseconds(at or datetime.now()),
            "username": _clip(actor.username, 64),
            "role": actor.role,
            "scope_code": actor.scope_code,
            "action": action,
            "unit_code": _clip(unit_code, 15),
            "case_ids": ",".join(ids[:MAX_CASE_IDS]) or None,
            "count": count if count is not None else (len(ids) if ids else None),
            "address": _clip(address, 64),
            "detail": _clip(detail, 500),
            "prev_hash": str(last_hash),
        }
        row["row_hash"] = row_hash(row)
        conn.execute(_INSERT_ROW, row)  # compiled once, not once per row's values
        conn.execute(_MOVE_HEAD, {"new_seq": row["seq"], "new_hash": row["row_hash"]})
    except (sa.exc.OperationalError, sa.exc.ProgrammingError) as error:
        raise AuditError(f"无法写入审计记录 / cannot write the audit trail: {error.orig}") \
            from error
    return row["seq"]


def record_now(engine: Engine, action: str, **fields) -> int:
    """Append one row in a transaction of its own (for actions that write nothing else)."""
    with engine.begin() as conn:
        return record(conn, action, **fields)


def row_hash(row: dict) -> str:
    """Return the SHA-256 of a row's :data:`HASHED` fields (canonical JSON, times to µs)."""
    values = []
    for name in HASHED:
        value = row.get(name)
        if type(value) is datetime:  # (the same text as below, without a Timestamp)
            value = value.strftime("%Y-%m-%dT%H:%M:%S.%f")
        elif isinstance(value, datetime | pd.Timestamp):
            value = pd.Timestamp(value).strftime("%Y-%m-%dT%H:%M:%S.%f")
        values.append(value)
    text = json.dumps(values, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def verify(engine: Engine) -> Verification:
    """Check the whole chain: every hash, every link, no gap, and the head at the last row.

    Returns
    -------
    Verification
        ``problems`` names each row that was modified (its hash does not match its fields),
        deleted (a gap in the sequence, or a link to a hash that is not the previous row's) or
        inserted (a link or hash that does not fit); empty when the trail is intact.
    """
    t = schema.audit_log
    problems: list[str] = []
    expected_prev, expected_seq, rows = GENESIS, 1, 0
    with engine.connect() as conn:
        head_seq, head_hash = conn.execute(
            sa.select(schema.audit_head.c.seq, schema.audit_head.c.row_hash)).one()
        result = conn.execute(sa.select(*[t.c[n] for n in (*HASHED, "row_hash")])
                              .order_by(t.c.seq)).mappings()
        for row in result:
            rows += 1
            seq = int(row["seq"])
            if seq != expected_seq:
                problems.append(f"第 {expected_seq}–{seq - 1} 行缺失（已删除？）/ rows "
                                f"{expected_seq}–{seq - 1} are missing (deleted?)"
                                if seq > expected_seq else
                                f"第 {seq} 行序号重复或倒序（插入？）/ row {seq} is out of "
                                "sequence (inserted?)")
            if row["prev_hash"] != expected_prev:
                problems.append(f"第 {seq} 行与前一行的哈希链断开（前一行被删除、修改或此行为插入）"
                                f" / row {seq} does not link to the row before it (a row was "
                                "deleted or modified before it, or this row was inserted)")
            if row_hash(dict(row)) != row["row_hash"]:
                problems.append(f"第 {seq} 行内容与其哈希不符（已修改或伪造）/ row {seq} does "
                                "not match its hash (modified or forged)")
            expected_prev, expected_seq = row["row_hash"], seq + 1
    if int(head_seq) != expected_seq - 1 or (rows and head_hash != expected_prev):
        problems.append(f"审计头记录（第 {head_seq} 行）与最后一行（第 {expected_seq - 1} 行）不符"
                        f"（末尾被删除或插入）/ the audit head (row {head_seq}) does not match "
                        f"the last row ({expected_seq - 1}): rows were deleted from or added "
                        "to the end")
    return Verification(rows=rows, head_seq=int(head_seq), head_hash=str(head_hash),
                        problems=problems)


def read_trail(engine: Engine, *, date_from: datetime | None = None,
               date_to: datetime | None = None, limit: int | None = None,
               newest_first: bool = False) -> pd.DataFrame:
    """Return audit rows (every column) between two moments, in sequence order."""
    t = schema.audit_log
    query = sa.select(t)
    if date_from is not None:
        query = query.where(t.c.at >= date_from)
    if date_to is not None:
        query = query.where(t.c.at < date_to)
    query = query.order_by(t.c.seq.desc() if newest_first else t.c.seq)
    if limit is not None:
        query = query.limit(limit)
    with engine.connect() as conn:
        return pd.DataFrame(conn.execute(query).mappings().all(), columns=list(t.c.keys()))


def failures_from(conn: Connection, address: str | None, *, since: datetime) -> int:
    """Count failed logins from one client address since a moment (per-address throttling)."""
    if not address:
        return 0
    t = schema.audit_log
    query = sa.select(sa.func.count()).where(t.c.address == address, t.c.at >= since,
                                             t.c.action == "login_failed")
    return int(conn.execute(query).scalar_one())


def actions_from(conn: Connection, address: str | None, *, action: str, since: datetime,
                 detail_prefix: str | None = None) -> int:
    """Count one client address's rows of ``action`` since a moment (public-form throttling)."""
    if not address:
        return 0
    t = schema.audit_log
    query = sa.select(sa.func.count()).where(t.c.address == address, t.c.at >= since,
                                             t.c.action == action)
    if detail_prefix is not None:
        query = query.where(t.c.detail.like(detail_prefix + "%"))
    return int(conn.execute(query).scalar_one())


_HEAD = schema.audit_head
_INSERT_ROW = schema.audit_log.insert()
_MOVE_HEAD = _HEAD.update().where(_HEAD.c.id == 1).values(seq=sa.bindparam("new_seq"),
                                                          row_hash=sa.bindparam("new_hash"))
_TOUCH_HEAD = _HEAD.update().where(_HEAD.c.id == 1).values(seq=_HEAD.c.seq)


def _lock_head(conn: Connection) -> tuple[int, str] | None:
    """Lock the head row (the write lock on SQLite) and read it: one statement where it can.

    Every API call writes an audit row, so the two statements of "lock, then read" are worth
    one ``UPDATE … RETURNING`` (SQLite 3.35+, PostgreSQL); the lock comes first either way, so
    the row read is the one no other writer can move before this transaction ends.
    """
    if conn.dialect.update_returning:
        return conn.execute(_TOUCH_HEAD.returning(_HEAD.c.seq, _HEAD.c.row_hash)).first()
    if conn.execute(_TOUCH_HEAD).rowcount != 1:
        return None
    return conn.execute(sa.select(_HEAD.c.seq, _HEAD.c.row_hash).where(_HEAD.c.id == 1)).first()


def _microseconds(moment: datetime) -> datetime:
    if type(moment) is datetime:  # already whole microseconds (pd.Timestamp may hold ns)
        return moment
    return pd.Timestamp(moment).floor("us").to_pydatetime()


def _clip(value: str | None, length: int) -> str | None:
    if value is None:
        return None
    return str(value)[:length]
