"""Download routes: the case table (CSV streamed, Excel) and the standalone map, per view.

The export buttons are plain links to these routes, carrying the view's query string, so a
download is an ordinary browser download: it shows the browser's progress, survives navigating
away and never travels through a Dash callback as base64. The server derives what the file
holds from the page and the view state, resolved against the session like the page itself
(:func:`dashboard.access.resolve`: a unit outside the account's scope is answered 403 and the
refusal audited). Each export is audited with its unit and row count before the first byte
leaves (the file is not sent if the audit row cannot be written). CSV rows are streamed chunk
by chunk (memory does not grow with the city), Excel is written to a temporary file and sent
when complete. Personal fields are masked in every file; no export carries a revealed contact.
"""

from __future__ import annotations

import tempfile
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

import flask

from dashboard import map as maps
from dashboard.query import PAGES, ViewState
from dashboard.state import store as current_store
from geo.errors import GridgovError
from geo.tabular import XLSX_MAX_ROWS, csv_chunks, write_xlsx
from layers.exports import export_frames, export_rows
from layers.units import unit_of

EXCEL_LIMIT = 100_000
"""Excel exports stop at this many rows (the CSV has them all); the file says so."""
VIEW_TITLES = {"city": "领导视图", "street": "街道视图", "village": "网格员视图"}


def register(server: flask.Flask) -> None:
    """Add the download routes to the app's Flask server."""
    server.add_url_rule("/download/<page>/cases.csv", "download_cases_csv", cases_csv)
    server.add_url_rule("/download/<page>/cases.xlsx", "download_cases_xlsx", cases_xlsx)
    server.add_url_rule("/download/<page>/map.html", "download_map_html", map_html)


def cases_csv(page: str) -> flask.Response:
    """Stream the view's case table as CSV (UTF-8 with BOM; personal fields masked)."""
    store, view, scope, name = _resolve(page)
    _audit(scope, count=len(export_rows(store, scope, filters=view.filters)), kind="cases.csv")
    frames = export_frames(store, scope, filters=view.filters)
    response = flask.Response(flask.stream_with_context(csv_chunks(frames)),
                              mimetype="text/csv; charset=utf-8")
    return _attachment(response, f"{name}_{VIEW_TITLES[page]}_案件表_{_stamp()}.csv")


def cases_xlsx(page: str) -> flask.Response:
    """Send the view's case table as an Excel workbook with a 说明 sheet."""
    store, view, scope, name = _resolve(page)
    folder = Path(tempfile.mkdtemp(prefix="gridgov-export-"))
    target = folder / "cases.xlsx"
    notes = _notes(view, name, limit=EXCEL_LIMIT)
    _audit(scope, count=min(len(export_rows(store, scope, filters=view.filters)), EXCEL_LIMIT),
           kind="cases.xlsx")
    write_xlsx({"案件": export_frames(store, scope, filters=view.filters,
                                    limit=min(EXCEL_LIMIT, XLSX_MAX_ROWS)),
                "说明": iter([notes])}, target)
    response = flask.send_file(target, mimetype="application/vnd.openxmlformats-officedocument"
                                                  ".spreadsheetml.sheet")
    response.call_on_close(lambda: (target.unlink(missing_ok=True), folder.rmdir()))
    return _attachment(response, f"{name}_{VIEW_TITLES[page]}_案件表_{_stamp()}.xlsx")


def map_html(page: str) -> flask.Response:
    """Send the view's map as a standalone HTML page."""
    store, view, scope, name = _resolve(page)
    layer = maps.unit_layer(store, scope, metric=view.metric, filters=view.filters)
    stations = maps.station_features(store, scope) \
        if {"stations", "catchments"} & set(view.overlays) else None
    _audit(scope, count=layer.extra.get("cases", 0), kind="map.html")
    page_html = maps.standalone_html(layer, stations=stations,
                                     title=f"{name} · {layer.metric_label}")
    response = flask.Response(page_html, mimetype="text/html; charset=utf-8")
    return _attachment(response, f"{name}_{VIEW_TITLES[page]}_{layer.metric_label}_地图_"
                                 f"{_stamp()}.html")


def download_path(page: str, kind: str, search: str) -> str:
    """The link of one download of a view (kind: cases.csv, cases.xlsx, map.html)."""
    return f"/download/{page}/{kind}{search}"


# --------------------------------------------------------------------------- helpers


def _resolve(page: str):  # noqa: ANN202 - (store, view, scope, name)
    from dashboard import access

    if page not in PAGES:
        flask.abort(404)
    store = current_store()
    resolved = access.resolve(page, flask.request.args.to_dict(flat=False))
    if resolved.problems:  # a crafted link: say what is wrong rather than export something else
        flask.abort(flask.Response("无法导出：" + " ".join(resolved.problems), status=400,
                                   mimetype="text/plain; charset=utf-8"))
    view, scope = resolved.view, resolved.scope_code
    if scope is None:
        flask.abort(flask.Response("请先选择镇街或村居 / choose a street or village first",
                                   status=400, mimetype="text/plain; charset=utf-8"))
    try:
        name = unit_of(store, scope).name
    except GridgovError:
        flask.abort(flask.Response("未找到该网格单元 / unknown unit", status=404,
                                   mimetype="text/plain; charset=utf-8"))
    return store, view, scope, name


def _audit(scope: str, *, count: int, kind: str) -> None:
    from dashboard import access

    access.record("export", unit_code=scope, count=count, detail=kind)


def _notes(view: ViewState, name: str, *, limit: int):  # noqa: ANN202 - a DataFrame
    import pandas as pd

    return pd.DataFrame({"说明": [
        f"范围：{name}",
        f"筛选：{view.filters.to_query() or '无'}",
        f"最多导出 {limit:,} 行（按登记时间倒序）；完整数据请导出 CSV",
        "信访人姓名、电话已脱敏；身份证号不导出",
    ]})


def _attachment(response: flask.Response, filename: str) -> flask.Response:
    """Name the file for the browser in both header forms (RFC 6266 / 5987, UTF-8)."""
    ascii_name = "gridgov" + Path(filename).suffix
    response.headers["Content-Disposition"] = (
        f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}")
    return response


def _stamp() -> str:
    return datetime.now().strftime("%Y%m%d-%H%M")
