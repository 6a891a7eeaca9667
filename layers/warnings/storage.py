"""Warnings as records: writing a run's warnings, reading them by scope, changing their state.

A run's warnings are *upserted* by their stable id (:mod:`layers.warnings.records`): a new id
is inserted with state 新; a known id gets its computed columns updated only where they
changed (so re-running on the same data writes nothing) and keeps its state; a stored warning
the run did not find again is marked inactive (``active = False``), never deleted. All of a
run's writes happen in one transaction: a failure leaves the store as it was.

Warnings are derived data, so writing them does not bump the store version (that would throw
away the cached case table); readers keep the warning table under a cheap stamp instead (the
newest run and the newest state change, :func:`revision`), read on every query.

Scope: every query takes a unit code and returns the warnings of that unit and everything
nested in it (a street sees its villages'), so an accounts layer can pass the user's scope
straight in; :func:`set_state` refuses a warning outside the caller's scope. State changes
record who (``actor``), when and a note, in ``warning_event`` as well as on the warning.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import date, datetime

import numpy as np
import pandas as pd
import sqlalchemy as sa

from geo import audit, schema
from geo.codes import level_of, prefix_of
from geo.errors import GridgovError
from geo.store import Store
from geo.vocab import CITY_CODE, WARNING_OPEN_STATES, WARNING_STATES, WARNING_TRANSITIONS
from layers.casedata import CaseTable, day_of_number, minutes_to_datetime
from layers.warnings.definitions import RULES
from layers.warnings.records import Warning, case_ids_of

COMPUTED = ("rule", "rule_version", "level", "unit_code", "unit_level", "category",
            "period_start", "period_end", "observed", "expected", "statistic", "p_value",
            "q_value", "case_count", "case_ids", "reason", "lon", "lat", "radius_m", "as_of",
            "active")
"""Columns a run computes (the rest — state, who, when, note, created_at — belong to people)."""
MAX_NOTE = 500
"""Longest note kept with a state change (characters)."""


class WarningStateError(GridgovError):
    """A state change that is not allowed (unknown warning, out of scope, wrong transition)."""


def warning_rows(warnings: Sequence[Warning], table: CaseTable, as_of: int) -> pd.DataFrame:
    """Turn found warnings into ``warning`` rows (computed columns only), one per id."""
    moment = minutes_to_datetime(as_of)
    records = {}
    sizes = [len(w.rows) for w in warnings]
    flat = case_ids_of(table, np.concatenate([w.rows for w in warnings]).astype(np.int64)
                       if warnings else np.array([], dtype=np.int64))
    bounds = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    for k, w in enumerate(warnings):
        ids = flat[bounds[k]:bounds[k + 1]]
        records[w.warning_id] = {
            "warning_id": w.warning_id, "rule": w.rule, "rule_version": RULES[w.rule].version,
            "level": w.level, "unit_code": w.unit_code, "unit_level": level_of(w.unit_code),
            "category": w.category, "period_start": day_of_number(w.period_start),
            "period_end": day_of_number(w.period_end), "observed": float(w.observed),
            "expected": _float(w.expected), "statistic": _float(w.statistic),
            "p_value": _float(w.p_value), "q_value": _float(w.q_value), "case_count": len(ids),
            "case_ids": ";".join(ids), "reason": w.reason, "lon": _float(w.lon),
            "lat": _float(w.lat), "radius_m": _float(w.radius_m), "as_of": moment,
            "active": True,
        }
    columns = ["warning_id", *COMPUTED]
    return pd.DataFrame(list(records.values()), columns=columns)


def upsert_warnings(conn: sa.Connection, rows: pd.DataFrame) -> dict[str, int]:
    """Write a run's warnings inside the caller's transaction; return what changed.

    Returns
    -------
    dict
        ``inserted``, ``updated``, ``deactivated`` (stored warnings not found again).
    """
    t = schema.warning
    existing = pd.DataFrame(conn.execute(sa.select(t.c.warning_id, *[t.c[c] for c in COMPUTED]))
                            .mappings().all(), columns=["warning_id", *COMPUTED])
    known = set(existing["warning_id"])
    new = rows[~rows["warning_id"].isin(known)]
    now = datetime.now()
    if len(new):
        payload = [{**_clean(r), "state": "new", "created_at": now}
                   for r in new.to_dict("records")]
        for start in range(0, len(payload), 5000):
            conn.execute(t.insert(), payload[start:start + 5000])
    old = rows[rows["warning_id"].isin(known)]
    changed = _changed(existing.set_index("warning_id"), old.set_index("warning_id"))
    for warning_id, values in changed.items():
        conn.execute(t.update().where(t.c.warning_id == warning_id).values(**values))
    found = set(rows["warning_id"])
    gone = [w for w, active in zip(existing["warning_id"], existing["active"], strict=True)
            if active and w not in found]
    for start in range(0, len(gone), 900):
        conn.execute(t.update().where(t.c.warning_id.in_(gone[start:start + 900]))
                     .values(active=False))
    return {"inserted": len(new), "updated": len(changed), "deactivated": len(gone)}


def revision(store: Store) -> tuple[int, int]:
    """A cheap stamp that moves whenever warnings or their states change (newest run, event)."""
    with store.engine.connect() as conn:
        run = conn.execute(sa.select(sa.func.max(schema.warning_run.c.run_id))).scalar()
        event = conn.execute(sa.select(sa.func.max(schema.warning_event.c.id))).scalar()
    return int(run or 0), int(event or 0)


def all_warnings(store: Store) -> pd.DataFrame:
    """Every stored warning (a frame, cached until :func:`revision` moves)."""
    engine = store.engine

    def build() -> pd.DataFrame:
        t = schema.warning
        with engine.connect() as conn:
            frame = pd.DataFrame(conn.execute(sa.select(t)).mappings().all(),
                                 columns=[c.name for c in t.c])
        frame["active"] = frame["active"].astype(bool)
        order = {rule: i for i, rule in enumerate(RULES)}
        frame["rule_order"] = frame["rule"].map(order).fillna(len(order)).astype(int)
        return frame.sort_values(["rule_order", "period_end", "warning_id"],
                                 ascending=[True, False, True]).reset_index(drop=True)

    return on_revision(store, ("all",), build)


def on_revision(store: Store, key: tuple, build):  # noqa: ANN001, ANN201
    """Return ``build()`` cached until the warnings change (:func:`revision`) or the data does.

    The warnings change more often than the store version (a state change does not move it),
    so one slot per store version holds the values of the newest stamp only; the views keep
    their per-scope frames here too.
    """
    slot = store.cached(("warnings_slot",), dict)
    stamp = revision(store)
    if slot.get("stamp") != stamp:
        slot.clear()
        slot["stamp"] = stamp
    if key not in slot:
        slot[key] = build()
    return slot[key]


def in_scope(codes: pd.Series, scope: str) -> np.ndarray:
    """Which unit codes nest in ``scope`` (the scope itself included; the city holds all)."""
    if scope == CITY_CODE or level_of(scope) == "city":
        return np.ones(len(codes), dtype=bool)
    return np.array(codes.astype(str).str.startswith(prefix_of(scope)), dtype=bool)


def warnings_in(
    store: Store,
    scope: str = CITY_CODE,
    *,
    level: str | None = None,
    rules: Sequence[str] = (),
    states: Sequence[str] = (),
    active_only: bool = True,
) -> pd.DataFrame:
    """The warnings of ``scope`` and every unit nested in it, filtered, red first.

    Parameters
    ----------
    scope
        A unit code: a user's scope (the accounts layer passes it) or the unit a view shows.
    level
        ``red`` or ``yellow``; None for both.
    rules, states
        Keep only these rules / states (empty: all).
    active_only
        Only warnings the latest run found (the default); False adds the history.
    """
    frame = all_warnings(store)
    keep = in_scope(frame["unit_code"], scope)
    if active_only:
        keep &= frame["active"].to_numpy()
    if level:
        keep &= (frame["level"] == level).to_numpy()
    if rules:
        keep &= frame["rule"].isin(list(rules)).to_numpy()
    if states:
        keep &= frame["state"].isin(list(states)).to_numpy()
    out = frame[keep]
    return out.sort_values(["level", "rule_order", "period_end"],
                           ascending=[True, True, False], kind="stable")


def counts_by_unit(store: Store, codes: Sequence[str], *, open_only: bool = True
                   ) -> pd.DataFrame:
    """Red and yellow active warnings nested in each of ``codes`` (e.g. every district).

    Returns
    -------
    pandas.DataFrame
        code, red, yellow (one row per code, in the order given).
    """
    frame = all_warnings(store)
    keep = np.array(frame["active"], dtype=bool)  # a copy: the cached frame stays as it is
    if open_only:
        keep &= frame["state"].isin(WARNING_OPEN_STATES).to_numpy()
    units = frame["unit_code"].astype(str).to_numpy(dtype=object)[keep]
    levels = frame["level"].to_numpy(dtype=object)[keep]
    widths = {len(prefix_of(code)) for code in codes if level_of(code) != "city"}
    # each warning counted once under its prefix of every width asked: one pass over the
    # warnings, not one filter of the whole frame per unit
    counted = Counter((width, unit[:width], level) for width in widths
                      for unit, level in zip(units, levels, strict=True))
    everything = Counter(levels)
    rows = []
    for code in codes:
        if level_of(code) == "city":
            found = {name: everything[name] for name in ("red", "yellow")}
        else:
            head = prefix_of(code)
            found = {name: counted[(len(head), head, name)] for name in ("red", "yellow")}
        rows.append({"code": code, **found})
    return pd.DataFrame(rows, columns=["code", "red", "yellow"])


def warning_record(store: Store, warning_id: str, *, scope: str = CITY_CODE) -> dict | None:
    """One warning with its state history (``events``, oldest first); None if absent or out of scope."""
    frame = all_warnings(store)
    hit = frame[frame["warning_id"] == warning_id]
    if hit.empty or not in_scope(hit["unit_code"], scope)[0]:
        return None
    record = hit.iloc[0].to_dict()
    e = schema.warning_event
    with store.engine.connect() as conn:
        events = conn.execute(sa.select(e).where(e.c.warning_id == warning_id)
                              .order_by(e.c.id)).mappings().all()
    record["events"] = [dict(ev) for ev in events]
    return record


def set_state(store: Store, warning_id: str, to_state: str, *, actor: str,
              note: str | None = None, scope: str = CITY_CODE,
              at: datetime | None = None, audit_actor: audit.Actor | None = None,
              address: str | None = None) -> dict:
    """Move a warning to ``to_state``, recording who, when and why; return the new state.

    With ``audit_actor`` the change is also written to the audit trail, in the same
    transaction (the change fails when the audit row cannot be written).

    Raises
    ------
    WarningStateError
        Unknown warning, a warning outside ``scope``, an unknown state, a transition
        :data:`geo.vocab.WARNING_TRANSITIONS` does not allow, or no actor.
    """
    if to_state not in WARNING_STATES:
        raise WarningStateError(f"未知的预警状态 {to_state!r} / unknown warning state {to_state!r}")
    actor = (actor or "").strip()
    if not actor:
        raise WarningStateError("须注明操作人 / a state change needs an actor")
    note = (note or "").strip()[:MAX_NOTE] or None
    at = at or datetime.now()
    t, e = schema.warning, schema.warning_event
    with store.engine.begin() as conn:
        row = conn.execute(sa.select(t.c.state, t.c.unit_code).where(t.c.warning_id == warning_id)
                           ).first()
        if row is None or not in_scope(pd.Series([row.unit_code]), scope)[0]:
            raise WarningStateError(f"未找到预警 {warning_id} / no warning {warning_id} in scope")
        if to_state not in WARNING_TRANSITIONS.get(row.state, ()):
            raise WarningStateError(
                f"预警不能从“{WARNING_STATES[row.state]}”改为“{WARNING_STATES[to_state]}” / "
                f"a warning cannot go from {row.state} to {to_state}")
        conn.execute(t.update().where(t.c.warning_id == warning_id).values(
            state=to_state, state_at=at, state_by=actor, state_note=note))
        conn.execute(e.insert().values(warning_id=warning_id, at=at, actor=actor,
                                       from_state=row.state, to_state=to_state, note=note))
        if audit_actor is not None:
            audit.record(conn, "warning", actor=audit_actor, unit_code=row.unit_code,
                         address=address, detail=f"{warning_id} {row.state}→{to_state}", at=at)
    return {"warning_id": warning_id, "state": to_state, "state_at": at, "state_by": actor,
            "state_note": note}


def _changed(existing: pd.DataFrame, found: pd.DataFrame) -> dict[str, dict]:
    out: dict[str, dict] = {}
    if found.empty:
        return out
    before = existing.loc[found.index]
    for warning_id in found.index:
        new, old = found.loc[warning_id], before.loc[warning_id]
        values = {c: _clean_value(new[c]) for c in COMPUTED if not _same(old[c], new[c])}
        if values:
            out[warning_id] = values
    return out


def _same(a: object, b: object) -> bool:
    if _missing(a) and _missing(b):
        return True
    if _missing(a) or _missing(b):
        return False
    if isinstance(a, float | int | np.floating | np.integer) and not isinstance(a, bool):
        return abs(float(a) - float(b)) <= 1e-9 * max(1.0, abs(float(b)))
    if isinstance(a, datetime) or isinstance(b, datetime):
        return pd.Timestamp(a) == pd.Timestamp(b)
    if isinstance(a, date) or isinstance(b, date):
        return pd.Timestamp(a).date() == pd.Timestamp(b).date()
    return a == b


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NaT


def _clean(record: dict) -> dict:
    return {k: _clean_value(v) for k, v in record.items()}


def _clean_value(value: object) -> object:
    if _missing(value):
        return None
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value


def _float(value: float | None) -> float | None:
    if value is None or not np.isfinite(value):
        return None
    return float(value)
