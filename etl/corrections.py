"""An office's correction of where a case lies (人工更正落格), kept across every later load.

An address that names a street but no village (or an ambiguous one) leaves a case at
street level with the candidates (:mod:`etl.address`). The street office that knows the
place puts it in its village with :func:`correct_village`. The correction is

* recorded as a ``corrected`` event of the case (``source = user``, the user as ``actor``,
  detail ``村居 old → new：note``), so the case's timeline shows who moved it and why;
* written to the audit trail (``correct``) in the same transaction, with the account that made
  it when it comes from the dashboard;
* kept in ``placement_correction`` (one row per case, the latest wins), which every later
  ingest and re-attach applies after the attach rule (:func:`apply_corrections`): a newer
  export of the same case, or new boundaries, never undo it. Should the village disappear
  from the grid, the case falls back to the ordinary rule, with a note saying so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from etl.attach import GridIndex, grid_index
from geo import audit, schema
from geo.errors import GridgovError, StoreError
from geo.store import Store, bump_version, require_store
from geo.storelock import store_lock

MAX_ACTOR_CHARS = 100
LOST_NOTE = "人工更正的村居已不在当前网格中，按规则重新落格"


class CorrectionError(GridgovError):
    """A correction cannot be recorded (unknown case or village, no user)."""


@dataclass(frozen=True)
class Correction:
    """A recorded correction: the case, where it was, where it is now, and the event."""

    case_id: str
    old_village: str | None
    village_code: str
    actor: str
    note: str | None
    at: datetime


def correct_village(store: Store, case_id: str, village_code: str, *, user: str,
                    note: str | None = None, actor: audit.Actor | None = None,
                    address: str | None = None) -> Correction:
    """Place a case in a village on an office's word, as an event that later loads respect.

    Parameters
    ----------
    case_id
        信访件编号 of a stored case.
    village_code
        12-digit code of a current village (村居) of the grid.
    user
        Who corrects it (name or account of the clerk); required.
    note
        Why (shown in the case's timeline).
    actor, address
        The account and client address for the audit row (default: ``user`` without a role,
        as the CLI records it).

    Returns
    -------
    Correction

    Raises
    ------
    CorrectionError
        For an unknown case or village, or a missing user (bilingual message).
    StoreBusyError
        When a load holds the store for longer than ``settings.store_lock_wait_s``.
    """
    engine = store.engine
    require_store(engine)
    user = (user or "").strip()
    note = (note or "").strip() or None
    _check_inputs(user, note, max_chars=store.settings.max_text_chars)
    grid = grid_index(store)
    if grid.units["level"].get(village_code) != "village":
        raise CorrectionError(f"未知村居代码：{village_code} / unknown village code {village_code}")
    chain = grid.ancestors.loc[village_code]
    now = datetime.now().replace(microsecond=0)
    try:
        return _record(engine, case_id, village_code, chain, user=user, note=note, now=now,
                       wait_s=store.settings.store_lock_wait_s,
                       actor=actor or audit.Actor(user), address=address)
    except sa.exc.DBAPIError as exc:  # never a raw driver error for the user
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0][:200]
        raise StoreError(f"更正未能写入数据库：{reason} / the correction could not be written: "
                         f"{reason}") from exc


def _record(engine: Engine, case_id: str, village_code: str, chain: pd.Series, *, user: str,
            note: str | None, now: datetime, wait_s: float, actor: audit.Actor,
            address: str | None) -> Correction:
    """Write the correction, its event, its audit row and the case's new place at once."""
    with store_lock(engine, wait_s=wait_s), engine.begin() as conn:
        case = conn.execute(sa.select(schema.cases.c.village_code, schema.cases.c.status)
                            .where(schema.cases.c.case_id == case_id)).first()
        if case is None:
            raise CorrectionError(f"未找到信访件 {case_id} / no case {case_id}")
        _upsert(conn, case_id, village_code, actor=user, note=note, at=now)
        conn.execute(schema.cases.update().where(schema.cases.c.case_id == case_id).values(
            grid_code=None, village_code=village_code, street_code=chain["street"],
            district_code=chain["district"], attach_method="corrected",
            attach_level="village", attach_distance_m=None, attach_note=None,
            attach_candidates=None, updated_at=now))
        old = case.village_code or "未定"
        detail = f"村居 {old} → {village_code}" + (f"：{note}" if note else "")
        conn.execute(schema.case_event.insert().values(
            case_id=case_id, at=now, event="corrected", status=case.status, detail=detail,
            recorded_at=now, source="user", actor=user))
        audit.record(conn, "correct", actor=actor, unit_code=village_code, case_ids=[case_id],
                     address=address, detail=detail, at=now)
        bump_version(conn)
    return Correction(case_id, case.village_code, village_code, user, note, now)


def read_corrections(bind: Engine | Connection) -> dict[str, str]:
    """Return case_id → corrected village code for every correction on record."""
    query = sa.select(schema.placement_correction.c.case_id,
                      schema.placement_correction.c.village_code)
    if isinstance(bind, Connection):
        return dict(bind.execute(query).all())
    with bind.connect() as conn:
        return dict(conn.execute(query).all())


def apply_corrections(case_ids: pd.Series, attached: pd.DataFrame, corrections: dict[str, str],
                      grid: GridIndex) -> pd.DataFrame:
    """Override the attach rule's result where an office corrected the case's village.

    Parameters
    ----------
    case_ids
        信访件编号 of each row of ``attached`` (same order).
    attached
        The attach columns (:data:`etl.attach.ATTACH_COLUMNS`).

    Returns
    -------
    DataFrame
        ``attached`` with corrected rows placed in their village (``attach_method``
        ``corrected``); a correction whose village left the grid keeps the rule's result
        with a note.
    """
    if not corrections or attached.empty:
        return attached
    wanted = case_ids.map(corrections).to_numpy(dtype=object)
    rows = np.flatnonzero(pd.notna(wanted))
    if not len(rows):
        return attached
    attached = attached.copy()
    codes = wanted[rows]
    valid = grid.units["level"].reindex(codes).to_numpy(dtype=object) == "village"
    good, codes = rows[valid], codes[valid]
    chains = grid.ancestors.reindex(codes)
    position = {c: attached.columns.get_loc(c) for c in attached.columns}
    for column, values in (("grid_code", None), ("village_code", codes),
                           ("street_code", chains["street"].to_numpy(dtype=object)),
                           ("district_code", chains["district"].to_numpy(dtype=object)),
                           ("attach_method", "corrected"), ("attach_level", "village"),
                           ("attach_distance_m", np.nan), ("attach_note", None),
                           ("attach_candidates", None)):
        attached.iloc[good, position[column]] = values
    lost = rows[~valid]
    attached.iloc[lost, position["attach_note"]] = LOST_NOTE
    return attached


def _check_inputs(user: str, note: str | None, *, max_chars: int) -> None:
    if not user:
        raise CorrectionError("须注明更正人 / a correction needs the user who makes it")
    if len(user) > MAX_ACTOR_CHARS or "\x00" in user:
        raise CorrectionError(f"更正人过长（最多 {MAX_ACTOR_CHARS} 字）/ the user name is too long "
                              f"(at most {MAX_ACTOR_CHARS} characters)")
    if note is not None and (len(note) > max_chars or "\x00" in note):
        raise CorrectionError(f"说明过长（最多 {max_chars} 字）或含非法字符 / the note is too long "
                              f"(at most {max_chars} characters) or holds a NUL")


def _upsert(conn: Connection, case_id: str, village_code: str, *, actor: str,
            note: str | None, at: datetime) -> None:
    t = schema.placement_correction
    values = {"village_code": village_code, "actor": actor, "note": note, "corrected_at": at}
    updated = conn.execute(t.update().where(t.c.case_id == case_id).values(**values))
    if updated.rowcount == 0:
        conn.execute(t.insert().values(case_id=case_id, **values))
