"""Writing tables people open in Excel: CSV and XLSX that cannot attack and arrive whole.

Every export of gridgov (the dashboard's, the CLI's, rejected rows) goes through here, so:

* **no formulas**: a text cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
  return is written with a leading apostrophe (OWASP's advice against CSV injection); real
  numbers are written as numbers. openpyxl is told every text cell is a string, so nothing
  becomes a live formula either;
* **no broken workbooks**: control characters XLSX forbids (NUL and the other C0 codes but
  tab, line feed and carriage return) are replaced by U+FFFD in XLSX, and removed from CSV
  only where they would break the file (NUL);
* **all or nothing**: rows are streamed to a temporary file next to the target, which is
  renamed into place only when the last row is written; a failure leaves no file;
* CSV is UTF-8 with a BOM, so Excel on Windows opens it by double-click without garbling.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_FIRST = frozenset(FORMULA_STARTS)
XLSX_MAX_ROWS = 1_048_575
"""Data rows one XLSX sheet holds (plus its header row)."""
_XLSX_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def safe_text(value: Any) -> Any:
    """Neutralise one cell value: formula-like text gets a leading apostrophe.

    Numbers (int, float, numpy numbers) and text that is exactly a number ("-5", "+3.2")
    pass unchanged; None, NaN and NaT become None.
    """
    if value is None or value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, float | np.floating) and math.isnan(value):
        return None
    if isinstance(value, bool | np.bool_ | int | np.integer | float | np.floating):
        return value.item() if hasattr(value, "item") else value
    if isinstance(value, datetime | date | pd.Timestamp):
        return value
    text = str(value)
    if text.startswith(FORMULA_STARTS) and not _NUMBER.match(text):
        return "'" + text
    return text


def write_csv(frames: Iterable[pd.DataFrame], target: str | Path) -> int:
    """Write frames (same columns) to one CSV file atomically; return the rows written."""
    rows = 0
    with _atomic(Path(target), "w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        header_written = False
        for frame in frames:
            if not header_written:
                writer.writerow([_csv_cell(c) for c in frame.columns])
                header_written = True
            writer.writerows(csv_rows(frame))
            rows += len(frame)
    return rows


def csv_chunks(frames: Iterable[pd.DataFrame]) -> Iterator[bytes]:
    """Yield a CSV (UTF-8 with BOM) chunk by chunk, for a streamed HTTP response."""
    yield "\ufeff".encode()
    first = True
    for frame in frames:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        if first:
            writer.writerow([_csv_cell(c) for c in frame.columns])
            first = False
        writer.writerows(csv_rows(frame))
        yield buffer.getvalue().encode("utf-8")


def csv_rows(frame: pd.DataFrame) -> Iterator[tuple]:
    """The frame's rows as CSV cells (:func:`_csv_cell` of every value), column by column.

    The same cells as ``_csv_cell`` per value, made per column: a datetime column is formatted
    by pandas at once, a numeric one passes as Python numbers, a text column takes the one test
    that matters (does it start like a formula?) before the general rule. An export of a street's
    cases is tens of thousands of rows, and the per-value rule was most of its CPU under load
    (py-spy of bench/bench_load.py).
    """
    columns = [_csv_column(frame.iloc[:, i]) for i in range(frame.shape[1])]
    return zip(*columns, strict=True) if columns else iter([()] * len(frame))


def _csv_column(column: pd.Series) -> list:
    dtype = column.dtype
    kind = dtype.kind if isinstance(dtype, np.dtype) else None  # numpy dtypes only: no NA
    if kind == "M":  # naive datetime64 (a zone-aware column is not a numpy dtype)
        stamps = column.to_numpy().astype("datetime64[m]")
        if not len(stamps):  # numpy's string replace refuses an empty array
            return []
        # numpy's own formatting ("2026-11-27T09:30"), in C: pandas' strftime was a fifth of
        # a street export's time; datetime64[ns] years have four digits, so the day is the
        # first ten characters
        minutes = np.char.replace(np.datetime_as_string(stamps, unit="m"), "T", " ")
        whole_day = stamps == stamps.astype("datetime64[D]")
        text = np.where(whole_day, minutes.astype("U10"), minutes)
        return np.where(np.isnat(stamps), "", text).tolist()
    if kind is not None and kind in "biu":
        return column.tolist()
    if kind == "f":
        values = column.to_numpy()
        out = values.astype(object)
        out[np.isnan(values)] = ""
        return out.tolist()
    first = _FORMULA_FIRST  # :func:`_csv_cell` per value, with the common cases inline
    # a float passes unless NaN; a missing value is None, or NaN in pandas' own string
    # columns: both are ""
    return [v if (type(v) is str and v and v[0] not in first and "\x00" not in v)
            or (type(v) is float and v == v)
            else "" if v is None or type(v) is float or (type(v) is str and not v)
            else _csv_cell(v)
            for v in column.tolist()]


def write_xlsx(sheets: dict[str, Iterable[pd.DataFrame]], target: str | Path) -> int:
    """Write sheets (name → frames) to one XLSX workbook, streaming, atomically.

    Returns
    -------
    int
        Data rows written to the first sheet.

    Raises
    ------
    ValueError
        When a sheet would exceed :data:`XLSX_MAX_ROWS` (nothing is left on disk).
    """
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    workbook = Workbook(write_only=True)
    first_rows = None
    try:
        for name, frames in sheets.items():
            sheet = workbook.create_sheet(title=name[:31])
            rows = 0
            header = False
            for frame in frames:
                if not header:
                    sheet.append([_xlsx_cell(sheet, WriteOnlyCell, c) for c in frame.columns])
                    header = True
                for record in frame.itertuples(index=False, name=None):
                    rows += 1
                    if rows > XLSX_MAX_ROWS:
                        raise ValueError(
                            f"超过 Excel 单表 {XLSX_MAX_ROWS:,} 行上限，请导出 CSV / more than "
                            f"{XLSX_MAX_ROWS:,} rows for one XLSX sheet; export CSV instead")
                    sheet.append([_xlsx_cell(sheet, WriteOnlyCell, v) for v in record])
            if first_rows is None:
                first_rows = rows
        with _atomic(Path(target), "wb") as handle:
            workbook.save(handle)
    except BaseException:
        _discard(workbook)
        raise
    return first_rows or 0


def _discard(workbook: Any) -> None:
    """Close a write-only workbook that will not be saved and remove its temporary files."""
    for sheet in workbook.worksheets:
        writer = getattr(sheet, "_writer", None)
        with contextlib.suppress(Exception):
            sheet.close()  # ends its row stream while the stream's file is still open
        if writer is not None:
            with contextlib.suppress(Exception):
                writer.cleanup()


def _csv_cell(value: Any) -> Any:
    value = safe_text(value)
    if value is None:
        return ""
    if isinstance(value, datetime | pd.Timestamp):
        return value.strftime("%Y-%m-%d %H:%M") if (value.hour or value.minute) \
            else value.strftime("%Y-%m-%d")
    if isinstance(value, str):
        return value.replace("\x00", "")
    return value


def _xlsx_cell(sheet: Any, cell_type: Any, value: Any) -> Any:
    value = safe_text(value)
    if isinstance(value, str):
        cell = cell_type(sheet, value=_XLSX_ILLEGAL.sub("\ufffd", value))
        cell.data_type = "s"  # never a formula, whatever the text says
        return cell
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value


class _atomic:
    """Open a temporary file next to ``target``; rename it into place only on success."""

    def __init__(self, target: Path, mode: str, **kwargs: Any) -> None:
        self.target = target
        self.mode = mode
        self.kwargs = kwargs

    def __enter__(self):  # noqa: ANN204 - a file object
        self.target.parent.mkdir(parents=True, exist_ok=True)
        fd, self.temporary = tempfile.mkstemp(prefix=f".{self.target.name}.",
                                              dir=self.target.parent)
        os.close(fd)
        self.handle = open(self.temporary, self.mode, **self.kwargs)  # noqa: SIM115
        return self.handle

    def __exit__(self, kind, value, traceback) -> None:  # noqa: ANN001
        self.handle.close()
        if kind is None:
            os.replace(self.temporary, self.target)
        else:
            Path(self.temporary).unlink(missing_ok=True)
