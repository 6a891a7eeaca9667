"""Re-attach every case to the current grid after a boundary import (重新落格).

The attachment a case got at ingest belongs to the boundary_version of that day. After
new boundaries are loaded, :func:`reattach` runs the same rule as the ingest
(:mod:`etl.attach`) on the stored points, addresses and — for cases that were attached
by code — their stored codes, writes the new attachment and the current
boundary_version, and appends a ``reattached`` event to each case whose unit changed.
It runs in one transaction and is recorded in the ledger (kind ``reattach``, ``moved``).
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from etl.attach import ATTACH_COLUMNS, attach_frame, grid_index
from etl.corrections import apply_corrections, read_corrections
from etl.ledger import RunReport, finish_run, recorded_run
from geo import schema
from geo.settings import Settings
from geo.store import Store, require_store

_CODES = ("grid_code", "village_code", "street_code", "district_code")
_DETAILS = ("attach_method", "attach_level", "attach_note", "attach_candidates", "address_match")


def reattach(store: Store) -> RunReport:
    """Recompute every case's attachment against the current boundary_version.

    Returns
    -------
    RunReport
        ``rows_read`` cases examined, ``updated`` whose attachment changed in any way,
        ``moved`` whose unit (grid/village/street/district) changed, ``unchanged`` the rest.
    """
    started = time.perf_counter()
    engine, settings = store.engine, store.settings
    require_store(engine)
    grid = grid_index(store)
    with recorded_run(engine, kind="reattach", source_file=None, sha256=None,
                      started=started, wait_s=settings.store_lock_wait_s) as run_id:
        return _run(engine, grid, run_id, settings=settings, started=started)


def _run(engine: Engine, grid, run_id: int, *, settings: Settings,  # noqa: ANN001
         started: float) -> RunReport:
    with engine.begin() as conn:
        cases = _read_cases(conn)
        hints = cases[["lon", "lat", "address"]].copy()
        by_code = (cases["attach_method"] == "code").to_numpy()
        for column in _CODES:
            hints[column] = cases[column].where(by_code, None)
        new = attach_frame(hints, grid, settings=settings)
        new = apply_corrections(cases["case_id"], new, read_corrections(conn), grid)
        moved = _differs(cases, new, _CODES)
        changed = (moved | _differs(cases, new, _DETAILS) | _distance_differs(cases, new))
        report = RunReport(run_id=run_id, kind="reattach", rows_read=len(cases),
                           updated=int(changed.sum()), unchanged=int(len(cases) - changed.sum()),
                           moved=int(moved.sum()),
                           unassigned=int((new["attach_method"] == "unassigned").sum()))
        conn.execute(sa.update(schema.cases).values(boundary_version=grid.boundary_version))
        _write(conn, cases["case_id"][changed], new[changed])
        _events(conn, cases[moved], new[moved], run_id=run_id)
        finish_run(conn, report, started=started)
    return report


def _read_cases(conn: sa.Connection) -> pd.DataFrame:
    columns = ["case_id", "lon", "lat", "address", "attach_distance_m", *_DETAILS, *_CODES]
    rows = conn.exec_driver_sql(f"SELECT {', '.join(columns)} FROM cases").fetchall()
    frame = pd.DataFrame(rows, columns=columns)
    for column in ("lon", "lat", "attach_distance_m"):
        frame[column] = pd.to_numeric(frame[column]).astype(float)
    return frame


def _differs(old: pd.DataFrame, new: pd.DataFrame, columns: tuple[str, ...]) -> np.ndarray:
    result = np.zeros(len(old), dtype=bool)
    for column in columns:
        a = old[column].to_numpy(dtype=object)
        b = new[column].to_numpy(dtype=object)
        a_missing, b_missing = pd.isna(a), pd.isna(b)
        result |= (a_missing != b_missing) | (~a_missing & ~b_missing & (a != b))
    return result


def _distance_differs(old: pd.DataFrame, new: pd.DataFrame) -> np.ndarray:
    a = old["attach_distance_m"].to_numpy(float)
    b = new["attach_distance_m"].to_numpy(float)
    both = np.isfinite(a) & np.isfinite(b)
    return (np.isfinite(a) != np.isfinite(b)) | (both & (np.abs(a - b) > 0.01))


def _write(conn: sa.Connection, case_ids: pd.Series, new: pd.DataFrame) -> None:
    if case_ids.empty:
        return
    values = new[list(ATTACH_COLUMNS)]
    values = values.astype(object).where(values.notna(), None)
    values.columns = ["b_" + c for c in ATTACH_COLUMNS]
    records = values.assign(b_case_id=case_ids.to_numpy()).to_dict("records")
    table = schema.cases
    conn.execute(
        table.update().where(table.c.case_id == sa.bindparam("b_case_id")).values(
            **{c: sa.bindparam("b_" + c) for c in ATTACH_COLUMNS}),
        records,
    )


def _events(conn: sa.Connection, old: pd.DataFrame, new: pd.DataFrame, *, run_id: int) -> None:
    if old.empty:
        return
    now = pd.Timestamp.now().floor("s").to_pydatetime()

    def unit(frame: pd.DataFrame, i: int) -> str:
        for column in _CODES:
            value = frame[column].iloc[i]
            if value is not None and not pd.isna(value):
                return str(value)
        return "未落格"

    records = [
        {"case_id": cid, "at": now, "event": "reattached", "status": None,
         "detail": f"{unit(old, i)}→{unit(new, i)}", "run_id": run_id, "recorded_at": now,
         "source": "system"}
        for i, cid in enumerate(old["case_id"])
    ]
    conn.execute(schema.case_event.insert(), records)
