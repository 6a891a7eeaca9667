"""Exports for people and for checking: cases, rejects, the run ledger (导出).

Case exports carry the canonical columns (docs/columns.md) including the attachment
(village/street/district codes, attach_method, attach_distance_m); petitioners' names
and phones are masked with :mod:`geo.privacy` and the ID hash is left out. CSV is
written as UTF-8 with BOM so that Excel opens the Chinese text correctly.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from geo import schema
from geo.errors import SourceError
from geo.privacy import mask_frame

EXPORT_FORMATS = ("csv", "xlsx")
XLSX_MAX_ROWS = 1_048_575
_DROPPED = ("row_hash", "petitioner_id_hash")


def cases_frame(engine: Engine) -> pd.DataFrame:
    """Return every case with canonical columns, personal fields masked, ordered by case_id."""
    columns = [c for c in schema.cases.c if c.name not in _DROPPED]
    with engine.connect() as conn:
        rows = conn.execute(sa.select(*columns).order_by(schema.cases.c.case_id)).all()
    frame = pd.DataFrame(rows, columns=[c.name for c in columns])
    return mask_frame(frame)


def rejects_frame(engine: Engine, *, run_id: int | None = None) -> pd.DataFrame:
    """Return stored rejects with their run's source file (raw values are already masked)."""
    r, run = schema.reject, schema.ingest_run
    query = (sa.select(r.c.run_id, run.c.source_file, r.c.line_no, r.c.reason_code, r.c.reason,
                       r.c.raw)
             .join(run, run.c.run_id == r.c.run_id).order_by(r.c.run_id, r.c.line_no))
    if run_id is not None:
        query = query.where(r.c.run_id == run_id)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return pd.DataFrame(rows, columns=["run_id", "source_file", "line_no", "reason_code",
                                       "reason", "raw"])


def runs_frame(engine: Engine, *, limit: int | None = None) -> pd.DataFrame:
    """Return the run ledger (ingest_run), newest first."""
    t = schema.ingest_run
    query = sa.select(t).order_by(t.c.run_id.desc())
    if limit:
        query = query.limit(limit)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return pd.DataFrame(rows, columns=[c.name for c in t.c])


def write_table(frame: pd.DataFrame, path: str | Path, *, fmt: str | None = None) -> Path:
    """Write a frame as CSV (UTF-8 with BOM) or XLSX, chosen by ``fmt`` or the suffix.

    Raises
    ------
    SourceError
        For an unknown format, or more rows than one XLSX sheet holds.
    """
    path = Path(path)
    fmt = (fmt or path.suffix.lstrip(".") or "csv").lower()
    if fmt not in EXPORT_FORMATS:
        raise SourceError(f"不支持的导出格式：{fmt} / unknown export format {fmt!r} (csv or xlsx)")
    if fmt == "xlsx":
        if len(frame) > XLSX_MAX_ROWS:
            raise SourceError(
                f"{len(frame)} 行超过 Excel 单表上限，请导出 CSV / {len(frame)} rows exceed one "
                "XLSX sheet; export CSV instead"
            )
        frame.to_excel(path, index=False, engine="openpyxl")
    else:
        frame.to_csv(path, index=False, encoding="utf-8-sig")
    return path
