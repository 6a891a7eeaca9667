"""Exports of the ETL for checking: rejected rows and the run ledger (导出).

Rejected rows hold what a clerk needs to fix them, personal data masked
(:func:`geo.privacy.mask_record` when stored; masked again on the way out, for rows stored
earlier). Files are written by :mod:`geo.tabular` (no formulas, no broken workbooks, all or
nothing). The case export is the dashboard's (``gridgov cases export`` in layers/cli.py).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from geo import schema
from geo.errors import SourceError
from geo.privacy import mask_raw_json
from geo.tabular import XLSX_MAX_ROWS, write_csv, write_xlsx

EXPORT_FORMATS = ("csv", "xlsx")


def rejects_frame(engine: Engine, *, run_id: int | None = None) -> pd.DataFrame:
    """Return stored rejects with their run's source file, raw values masked."""
    r, run = schema.reject, schema.ingest_run
    query = (sa.select(r.c.run_id, run.c.source_file, r.c.line_no, r.c.reason_code, r.c.reason,
                       r.c.raw)
             .join(run, run.c.run_id == r.c.run_id).order_by(r.c.run_id, r.c.line_no))
    if run_id is not None:
        query = query.where(r.c.run_id == run_id)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    frame = pd.DataFrame(rows, columns=["run_id", "source_file", "line_no", "reason_code",
                                        "reason", "raw"])
    frame["raw"] = [mask_raw_json(raw) for raw in frame["raw"]]
    return frame


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
    """Write a frame as CSV (UTF-8 with BOM) or XLSX, chosen by ``fmt`` or the suffix, through
    :mod:`geo.tabular` (formulas neutralised, control characters replaced, all or nothing).

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
        write_xlsx({"sheet1": [frame]}, path)
    else:
        write_csv([frame], path)
    return path
