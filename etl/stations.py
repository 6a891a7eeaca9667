"""Ingest service stations (服务站点): 区信访超市, 镇街综治中心, 村居服务站, 人民调解工作室.

Same rules as cases for coordinates (declared system converted to WGS-84, swapped
pairs fixed and counted, non-numbers and points outside the grid rejected with a
reason) except that a station *must* have a point: coverage is measured from it, so a
station without usable coordinates is rejected, never attached by code. Each station
gets its village/street/district codes by point attach (nearest within
``nearest_max_m`` counts); a point inside the grid's box that no cell reaches falls
back to the unit it serves. Upsert by station_id: the same file twice changes nothing.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from etl import clean
from etl.attach import attach_frame, grid_index
from etl.columns import STATION_ALIASES, canonical_headers, header_key, parse_boolean
from etl.ledger import RunReport, finish_run, recorded_run, reject_records, write_rejects
from etl.reasons import reason_text
from etl.sources import numbered_frame, problem_rejects, read_source, source_headers
from geo import schema
from geo.errors import SourceError
from geo.settings import Settings
from geo.store import Store, require_store
from geo.vocab import STATION_TYPE_ZH, STATION_TYPES

_TYPE_ALIASES: dict[str, str] = {
    **{code: code for code in STATION_TYPES},
    **{zh: code for code, zh in STATION_TYPE_ZH.items()},
    "信访超市": "hall", "区信访超市": "hall", "综治中心": "centre", "镇街综治中心": "centre",
    "街道综治中心": "centre", "镇综治中心": "centre", "服务站": "station",
    "村居服务站": "station", "社区服务站": "station", "村服务站": "station",
    "调解工作室": "mediation", "人民调解工作室": "mediation", "调解室": "mediation",
    "人民调解室": "mediation",
}
_STORED = [c.name for c in schema.station.c]
_TEXT_LABELS = {"station_id": "站点编号", "name": "站点名称", "serves_code": "服务单位代码",
                "address": "地址"}


def ingest_stations(store: Store, path: str | Path, *, crs: str = "wgs84") -> RunReport:
    """Ingest a station file (CSV/XLSX/JSON/GeoJSON) into the ``station`` table.

    Raises
    ------
    SourceError
        When the file is unusable (unreadable, or no 站点编号 column).
    """
    started = time.perf_counter()
    source = read_source(path)
    return _ingest(store, source.frame, crs=crs, source_file=str(path),
                   sha256=source.sha256, started=started)


def ingest_stations_frame(
    store: Store,
    frame: pd.DataFrame,
    *,
    crs: str = "wgs84",
    source_file: str = "<frame>",
) -> RunReport:
    """Ingest stations from a DataFrame with canonical or Chinese headers."""
    started = time.perf_counter()
    frame = numbered_frame(frame)
    return _ingest(store, frame, crs=crs, source_file=source_file, sha256=None,
                   started=started)


def station_type(values: pd.Series) -> pd.Series:
    """Normalise station types: Chinese names or English codes → hall/centre/station/mediation."""
    table = {header_key(k): v for k, v in _TYPE_ALIASES.items()}
    keys = values.astype("str").map(header_key).where(values.notna())
    return keys.map(table)


# -- pipeline ------------------------------------------------------------------------------


def _ingest(store: Store, raw: pd.DataFrame, *, crs: str, source_file: str,
            sha256: str | None, started: float) -> RunReport:
    engine, settings = store.engine, store.settings
    headers = source_headers(raw)
    header_map = canonical_headers(headers, aliases=STATION_ALIASES)
    if "station_id" not in header_map.values():
        raise SourceError(
            "文件中没有站点编号列 / the station file has no station id (站点编号) column; "
            f"headers found: {headers[:8]}"
        )
    require_store(engine)
    grid = grid_index(store)
    with recorded_run(engine, kind="stations", source_file=source_file, sha256=sha256,
                      source_crs=crs, started=started,
                      wait_s=settings.store_lock_wait_s) as run_id:
        return _run(engine, raw, header_map, grid, run_id, settings=settings, crs=crs,
                    started=started)


def _run(engine, raw, header_map, grid, run_id, *, settings, crs, started) -> RunReport:  # noqa: ANN001
    canonical = raw[list(header_map)].rename(columns=header_map)
    canonical.index = pd.RangeIndex(len(raw))
    frame, rejects, swapped = _clean(canonical, grid=grid, settings=settings, crs=crs,
                                     broken=problem_rejects(raw))
    hints = frame.assign(problem_place_code=frame["serves_code"])
    attached = attach_frame(hints, grid, settings=settings)
    for column in ("village_code", "street_code", "district_code"):
        frame[column] = attached[column]
    frame["run_id"] = run_id
    frame = frame[_STORED]
    reject_rows = reject_records(raw, rejects, header_map)
    report = RunReport(run_id=run_id, kind="stations", rows_read=len(raw),
                       rejected=len(reject_rows), swapped_fixed=swapped,
                       unassigned=int(attached["attach_method"].eq("unassigned").sum()))
    with engine.begin() as conn:
        report.inserted, report.updated, report.unchanged = _upsert(conn, frame)
        write_rejects(conn, reject_rows, run_id=run_id)
        finish_run(conn, report, started=started)
    return report


def _clean(frame: pd.DataFrame, *, grid, settings: Settings, crs: str,  # noqa: ANN001, ANN202
           broken: pd.DataFrame):
    clean.check_crs(crs)
    index = frame.index
    out = pd.DataFrame(index=index)
    for column in ("station_id", "name", "serves_code", "address"):
        out[column] = clean.text_column(frame.get(column), index)
    out["serves_code"] = out["serves_code"].str.replace(r"\.0$", "", regex=True)
    out["synthetic"] = (parse_boolean(frame["synthetic"]) if "synthetic" in frame
                        else pd.Series(False, index=index))
    raw_type = frame.get("station_type", pd.Series(None, index=index, dtype=object))
    out["station_type"] = station_type(raw_type)
    lon, lat, coord_problems, swapped = clean.clean_coordinates(
        frame, crs=crs, extent=grid.extent, settings=settings)
    out["lon"], out["lat"] = lon, lat
    rejects = [
        broken,
        clean.reject_positions(index[out["station_id"].isna()], "missing_station_id"),
        clean.reject_positions(index[out["name"].isna()], "missing_name"),
    ]
    bad_type = out["station_type"].isna()
    rejects.append(pd.DataFrame({
        "pos": index[bad_type], "reason_code": "bad_station_type",
        "reason": [reason_text("bad_station_type", value="" if pd.isna(v) else v)
                   for v in raw_type[bad_type]],
    }))
    rejects.append(coord_problems)
    no_point = ~(np.isfinite(lon) & np.isfinite(lat)) & ~index.isin(coord_problems["pos"])
    rejects.append(clean.reject_positions(index[no_point], "missing_coordinates"))
    rejects.append(clean.limit_rejects(out, clean.text_limits(schema.station, _TEXT_LABELS,
                                                              settings), index))
    rejected = pd.concat(rejects, ignore_index=True).drop_duplicates("pos")
    out = out[~out.index.isin(rejected["pos"])]
    dup = clean.reject_positions(out.index[out["station_id"].duplicated(keep="last").to_numpy()],
                        "duplicate_in_file")
    dup["reason"] = "同一文件中站点编号重复（保留最后一行）"
    out = out[~out.index.isin(dup["pos"])]
    return out, pd.concat([rejected, dup], ignore_index=True), swapped


def _upsert(conn: sa.Connection, frame: pd.DataFrame) -> tuple[int, int, int]:
    """Insert new stations, update changed ones; return (inserted, updated, unchanged)."""
    table = schema.station
    existing = {r.station_id: r for r in conn.execute(sa.select(table)).all()}
    records = frame.astype(object).where(frame.notna(), None).to_dict("records")
    new, changed = [], []
    compared = [c for c in _STORED if c != "run_id"]
    for record in records:
        old = existing.get(record["station_id"])
        if old is None:
            new.append(record)
        elif any(not _same(getattr(old, c), record[c]) for c in compared):
            changed.append(record)
    if new:
        conn.execute(table.insert(), new)
    for record in changed:
        conn.execute(table.update().where(table.c.station_id == record["station_id"])
                     .values(**record))
    return len(new), len(changed), len(records) - len(new) - len(changed)


def _same(a: object, b: object) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) or isinstance(b, float):
        return abs(float(a) - float(b)) < 1e-9
    return a == b
