"""Ingest a case file end to end: read → map columns → clean → attach → load (入库).

The public entry points of the ETL (see docs/columns.md for the columns and rules):
:func:`ingest_cases` for a file, :func:`ingest_cases_frame` for a DataFrame already in
memory (the demo generator, tests). Every run holds the store while it writes, is
recorded in the ``ingest_run`` ledger and reconciled: rows read = inserted + updated +
unchanged + rejected, checked at the end of every run (:mod:`etl.ledger`). Broken lines,
unreadable values and impossible dates are rejected row by row (:mod:`etl.sources`,
:mod:`etl.clean`); an office's corrections of where a case lies are applied after the
attach rule (:mod:`etl.corrections`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from etl import clean, load
from etl.attach import GridIndex, attach_frame, grid_index
from etl.columns import CASE_ALIASES, canonical_headers, read_mapping
from etl.corrections import apply_corrections, read_corrections
from etl.ledger import RunReport, finish_run, recorded_run, reject_records, write_rejects
from etl.sources import numbered_frame, problem_rejects, read_source, source_headers
from geo.errors import SourceError
from geo.store import Store, require_store


def ingest_cases(
    store: Store,
    path: str | Path,
    *,
    crs: str = "wgs84",
    mapping: str | Path | dict[str, str] | None = None,
    progress: bool = False,
) -> RunReport:
    """Ingest a case file (CSV/XLSX/JSON/GeoJSON/Open311) into the store.

    Parameters
    ----------
    crs
        The system of the file's coordinates: wgs84, gcj02 (AMap/Tencent) or bd09 (Baidu).
    mapping
        A JSON mapping file (or dict) ``{"source header": "canonical"}`` overriding aliases.
    progress
        Show a progress bar (the CLI turns it on when stderr is a terminal).

    Raises
    ------
    SourceError
        When the file is unusable as a whole (unreadable, no recognisable columns, no
        信访件编号 column). Bad rows never raise: they are rejected and counted.
    StoreBusyError
        When another load holds the store for longer than ``settings.store_lock_wait_s``.
    StoreError
        When the database refused the write (the run is marked failed; nothing written).
    """
    started = time.perf_counter()
    with _arrow_memory_pool(), ThreadPoolExecutor(1) as pool:
        grid = pool.submit(_store_grid, store, warm=True)  # while the file is parsed
        source = read_source(path)
        header_map = _header_map(source.frame, mapping)
        timings = {"read": time.perf_counter() - started}
        return _ingest_in_pool(store, source.frame, header_map, crs=crs,
                               source_file=str(path), sha256=source.sha256, progress=progress,
                               started=started, timings=timings, grid=grid)


def ingest_cases_frame(
    store: Store,
    frame: pd.DataFrame,
    *,
    crs: str = "wgs84",
    source_file: str = "<frame>",
    sha256: str | None = None,
    progress: bool = False,
) -> RunReport:
    """Ingest cases from a DataFrame with canonical English or Chinese headers.

    Values may be raw text or typed (datetimes, floats, booleans). Line numbers in
    rejects are the row position + 2 (as if the frame had been a CSV with a header),
    unless the frame carries a ``_line`` column.
    """
    started = time.perf_counter()
    frame = numbered_frame(frame)
    header_map = _header_map(frame, None)
    with _arrow_memory_pool():
        return _ingest_in_pool(store, frame, header_map, crs=crs, source_file=source_file,
                               sha256=sha256, progress=progress, started=started, timings={},
                               grid=None)


# -- pipeline ------------------------------------------------------------------------------


def _header_map(frame: pd.DataFrame, mapping: str | Path | dict | None) -> dict[str, str]:
    if not isinstance(mapping, dict):
        mapping = read_mapping(mapping)
    headers = source_headers(frame)
    header_map = canonical_headers(headers, aliases=CASE_ALIASES, mapping=mapping)
    if not header_map:
        raise SourceError(
            "文件中没有可识别的列（如 信访件编号、登记时间）；可用 --mapping 指定列名映射 / "
            f"no recognisable columns in {headers[:8]}; pass --mapping to map headers"
        )
    if "case_id" not in header_map.values():
        raise SourceError(
            "文件中没有信访件编号列，无法按编号入库；可用 --mapping 指定 / the file has no "
            "case id (信访件编号) column; map one with --mapping"
        )
    return header_map


def _store_grid(store: Store, *, warm: bool = False) -> GridIndex:
    """The store's attach index; ``warm``: also the parts attach builds on first use.

    A file ingest reads the grid in a thread while pyarrow parses the file, so the address
    reader (about 0.15 s to build on the bench grid) and the unit ancestry are made there
    too, not between cleaning and loading. Only :func:`ingest_cases` asks for it, in the
    CLI's process; a server leaves the attach index to its first live case
    (:func:`dashboard.app.warm_caches` says why).
    """
    require_store(store.engine)
    index = grid_index(store)
    if warm:
        index.address  # noqa: B018 (cached properties: built here, used by attach_frame)
        index.ancestors  # noqa: B018
    return index


@contextmanager
def _arrow_memory_pool() -> Iterator[None]:
    """Use jemalloc for Arrow during a run, when pyarrow has it.

    Selecting the kept rows of a million-row frame is 3x faster with jemalloc than with
    the mimalloc default, which hands freed pages back to the system and so pays a page
    fault for every page of each new column (measured in bench/bench_ingest.py).
    """
    try:
        pool = pa.jemalloc_memory_pool()
    except NotImplementedError:  # a pyarrow built without jemalloc
        yield
        return
    previous = pa.default_memory_pool()
    pa.set_memory_pool(pool)
    try:
        yield
    finally:
        pa.set_memory_pool(previous)


def _ingest_in_pool(store, raw, header_map, *, crs, source_file, sha256,  # noqa: ANN001
                    progress, started, timings, grid) -> RunReport:
    engine, settings = store.engine, store.settings
    tick = time.perf_counter()
    grid = grid.result() if grid is not None else _store_grid(store)
    timings["grid"] = time.perf_counter() - tick  # the wait, when read alongside the file
    with recorded_run(engine, kind="cases", source_file=source_file, sha256=sha256,
                      source_crs=crs, started=started,
                      wait_s=settings.store_lock_wait_s) as run_id:
        return _run(engine, raw, header_map, grid, run_id, settings=settings, crs=crs,
                    progress=progress, started=started, timings=timings)


def _run(engine, raw, header_map, grid, run_id, *, settings, crs, progress, started,  # noqa: ANN001
         timings) -> RunReport:
    tick = time.perf_counter()
    canonical = raw[list(header_map)].rename(columns=header_map)
    canonical.index = pd.RangeIndex(len(raw))
    broken = problem_rejects(raw)  # lines the reader could not read whole
    excluded = np.zeros(len(raw), dtype=bool)
    excluded[broken["pos"].to_numpy(dtype=np.int64)] = True
    cleaned = clean.clean_cases(canonical, settings=settings, crs=crs, extent=grid.extent,
                                drop_rejected=False, excluded=excluded)
    timings["clean"] = time.perf_counter() - tick
    tick = time.perf_counter()
    # attach every row (the few rejected ones too) so that rows are selected only once
    attached = attach_frame(cleaned.frame, grid, settings=settings)
    attached = apply_corrections(cleaned.frame["case_id"], attached, read_corrections(engine),
                                 grid)
    frame = cleaned.frame.drop(columns=[c for c in attached.columns if c in cleaned.frame])
    frame = pd.concat([frame, attached], axis=1)
    frame["boundary_version"] = grid.boundary_version
    frame["attach_distance_m"] = frame["attach_distance_m"].astype(float)
    timings["attach"] = time.perf_counter() - tick
    keep, late_rejects = _reject_unplaceable(frame, cleaned.keep, cleaned.coord_problems)
    keep &= ~excluded
    rejects = pd.concat([broken, cleaned.rejects, late_rejects], ignore_index=True)
    tick = time.perf_counter()
    frame = _select_rows(frame, keep, [c for c in load.STORED_CASE_COLUMNS
                                       if c not in ("row_hash", "run_id", "updated_at")])
    timings["select"] = time.perf_counter() - tick  # row hashes: in load, overlapping writes
    tick = time.perf_counter()
    by_address = frame.loc[frame["attach_method"] == "address", "attach_level"]
    report = RunReport(run_id=run_id, rows_read=len(raw),
                       unassigned=int((frame["attach_method"] == "unassigned").sum()),
                       swapped_fixed=cleaned.swapped_fixed, timings=timings,
                       by_address={str(k): int(v) for k, v in by_address.value_counts().items()})
    # the rejects' raw values are masked row by row in Python (about a second for the
    # bench's 5,334): a thread does it while the database works on the cases, which
    # leaves the GIL free (SQLite's inserts and index builds, PostgreSQL's COPY)
    with engine.begin() as conn, ThreadPoolExecutor(1) as pool:
        reject_rows = pool.submit(reject_records, raw, rejects, header_map)
        counts = load.write_cases(conn, frame, run_id=run_id, progress=progress,
                                  timings=timings)
        report.inserted, report.updated, report.unchanged, report.events = (
            counts.inserted, counts.updated, counts.unchanged, counts.events)
        report.rejected = len(reject_rows.result())
        write_rejects(conn, reject_rows.result(), run_id=run_id)
        finish_run(conn, report, started=started)
        tock = time.perf_counter()
    timings["load.commit"] = time.perf_counter() - tock
    timings["load"] = time.perf_counter() - tick
    return report


def _select_rows(frame: pd.DataFrame, keep: np.ndarray, columns: list[str]) -> pd.DataFrame:
    """``frame.loc[keep, columns]``, column by column: Arrow text columns are taken by two
    threads (Arrow releases the GIL), the rest by numpy."""
    positions = np.flatnonzero(keep)
    text = [c for c in columns if isinstance(frame[c].dtype, pd.StringDtype)
            and frame[c].dtype.storage == "pyarrow"]

    def take_text(name: str) -> pd.api.extensions.ExtensionArray:
        column = frame[name]
        return pd.array(pa.chunked_array(column.array.__arrow_array__()).take(positions),
                        dtype=column.dtype)

    with ThreadPoolExecutor(2) as pool:
        taken = dict(zip(text, pool.map(take_text, text), strict=True))
    data = {c: taken[c] if c in taken else frame[c].to_numpy()[positions] for c in columns}
    return pd.DataFrame(data, index=frame.index[positions], copy=False)


def _reject_unplaceable(
    frame: pd.DataFrame, keep: np.ndarray, coord_problems: pd.DataFrame
) -> tuple[np.ndarray, pd.DataFrame]:
    """Reject rows whose coordinates were bad AND that no code/address could place.

    Returns the rows still kept (a mask over ``frame``) and the late rejects.
    """
    if coord_problems.empty:
        return keep, coord_problems
    problems = coord_problems.drop_duplicates("pos")
    unplaced = frame.loc[problems["pos"], "attach_method"].to_numpy() == "unassigned"
    late = problems[unplaced]
    return keep & ~frame.index.isin(late["pos"]), late
