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
from geo.vocab import LEVEL_NAMES_ZH
from layers.casedata import case_table, table_as_of
from layers.exports import export_frames, export_notes, export_rows
from layers.units import unit_of

EXCEL_LIMIT = 100_000
"""Excel exports stop at this many rows (the CSV has them all); the file says so."""
VIEW_TITLES = {"city": "领导视图", "street": "街道视图", "village": "网格员视图"}
PROGRESS_ROWS = 5_000
"""Rows per chunk of a background export: its progress moves every this many rows."""
XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DOCX_MIMETYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def register(server: flask.Flask) -> None:
    """Add the download routes to the app's Flask server."""
    server.add_url_rule("/download/<page>/cases.csv", "download_cases_csv", cases_csv)
    server.add_url_rule("/download/<page>/cases.xlsx", "download_cases_xlsx", cases_xlsx)
    server.add_url_rule("/download/<page>/map.html", "download_map_html", map_html)
    server.add_url_rule("/download/<page>/report.docx", "download_report_docx", report_docx)
    server.add_url_rule("/exports/<job_id>", "export_file", export_file)


def cases_csv(page: str) -> flask.Response:
    """Stream the view's case table as CSV (UTF-8 with BOM; personal fields masked)."""
    store, view, scope, name = _resolve(page)
    _audit(scope, count=len(export_rows(store, scope, filters=view.filters)), kind="cases.csv")
    frames = export_frames(store, scope, filters=view.filters)
    response = flask.Response(flask.stream_with_context(csv_chunks(frames)),
                              mimetype="text/csv; charset=utf-8")
    return _attachment(response, file_name(name, page, "案件表", "csv"))


def cases_xlsx(page: str) -> flask.Response:
    """Send the view's case table as an Excel workbook with a 说明 sheet."""
    store, view, scope, name = _resolve(page)
    folder = Path(tempfile.mkdtemp(prefix="gridgov-export-"))
    target = folder / "cases.xlsx"
    total = len(export_rows(store, scope, filters=view.filters))
    _audit(scope, count=min(total, EXCEL_LIMIT), kind="cases.xlsx")
    write_cases_xlsx(store, page, view, scope, total=total)(target, lambda _rows: None)
    response = flask.send_file(target, mimetype=XLSX_MIMETYPE)
    response.call_on_close(lambda: (target.unlink(missing_ok=True), folder.rmdir()))
    return _attachment(response, file_name(name, page, "案件表", "xlsx"))


def write_cases_xlsx(store, page: str, view: ViewState, scope: str, *,  # noqa: ANN001
                     total: int, area: str | None = None):  # noqa: ANN202 - a jobs.Writer
    """A writer of the view's case workbook: 案件 (at most :data:`EXCEL_LIMIT` rows) and 说明."""
    unit = unit_of(store, scope)
    notes = export_notes(unit_name=unit.name, unit_level=unit.level,
                         view_title=VIEW_TITLES[page], filters=view.filters,
                         as_of=table_as_of(case_table(store)), rows=total, limit=EXCEL_LIMIT,
                         account_area=area)

    def write(target: Path, progress) -> None:  # noqa: ANN001 - rows done → None
        frames = export_frames(store, scope, filters=view.filters,
                               limit=min(EXCEL_LIMIT, XLSX_MAX_ROWS), chunk_rows=PROGRESS_ROWS)
        write_xlsx({"案件": _counted(frames, progress), "说明": iter([notes])}, target)

    return write


def write_cases_csv(store, view: ViewState, scope: str):  # noqa: ANN001, ANN202
    """A writer of the view's case table as CSV (UTF-8 with BOM), chunk by chunk."""

    def write(target: Path, progress) -> None:  # noqa: ANN001 - rows done → None
        frames = _counted(export_frames(store, scope, filters=view.filters,
                                        chunk_rows=PROGRESS_ROWS), progress)
        with target.open("wb") as out:
            for chunk in csv_chunks(frames):
                out.write(chunk)

    return write


def map_html(page: str) -> flask.Response:
    """Send the view's map as a standalone HTML page."""
    from dashboard import access

    store, view, scope, name = _resolve(page)
    layer = maps.unit_layer(store, scope, metric=view.metric, filters=view.filters,
                            fixed=view.fixed_breaks,
                            with_city=access.account().scope.level == "city")
    stations = maps.station_features(store, scope) \
        if {"stations", "catchments"} & set(view.overlays) else None
    _audit(scope, count=layer.extra.get("cases", 0), kind="map.html")
    unit = unit_of(store, scope)
    as_of = table_as_of(case_table(store))
    notes = [f"范围：{name}（{LEVEL_NAMES_ZH.get(unit.level, unit.level)}） · {VIEW_TITLES[page]}",
             *(f"筛选条件：{line}" for line in view.filters.describe_zh()),
             f"数据截至：{as_of:%Y-%m-%d %H:%M}" if as_of else "数据截至：无数据",
             *layer.legend_notes]
    page_html = maps.standalone_html(layer, stations=stations, notes=notes,
                                     title=f"{name} · {layer.metric_label}")
    response = flask.Response(page_html, mimetype="text/html; charset=utf-8")
    return _attachment(response, file_name(name, page, f"{layer.metric_label}_地图", "html"))


def report_docx(page: str) -> flask.Response:
    """Send the 月报 of the view's unit and period as a Word document (layers.report)."""
    from dashboard import access
    from layers.report import monthly_report, report_period

    store, view, scope, name = _resolve(page)
    with_city = access.account().scope.level == "city"
    period = report_period(view.filters, unit_data_day(store, scope))
    _audit(scope, count=0, kind="report.docx")
    document = monthly_report(store, scope, filters=view.filters, with_city=with_city)
    response = flask.Response(document, mimetype=DOCX_MIMETYPE)
    return _attachment(response, file_name(name, page, f"月报_{period.title_zh}", "docx"))


def unit_data_day(store, code: str):  # noqa: ANN001, ANN201 - a date or None
    """The last registration day of a unit's cases (the data day its periods count from)."""
    from layers.views import data_info

    return data_info(store, code).date_to


def file_name(unit_name: str, page: str, what: str, suffix: str) -> str:
    """A file's name: unit, view, what it holds and when (甲区_领导视图_案件表_20250630-0915.xlsx).

    Files of different units and views never share a name; the name is data (a unit name),
    so anything a file system refuses is replaced.
    """
    safe = "".join("_" if ch in '\\/:*?"<>|' or ord(ch) < 32 else ch for ch in unit_name)
    return f"{safe}_{VIEW_TITLES[page]}_{what}_{_stamp()}.{suffix}"


def start_export(page: str, kind: str, search: str):  # noqa: ANN201 - a jobs.ExportJob
    """Start the view's case export in the background for the session (我的导出).

    The unit comes from the view resolved against the session, exactly as for the download
    routes, and the export is audited here, in the request that asks for it.
    """
    from dashboard import access, jobs

    if kind not in ("cases.xlsx", "cases.csv") or page not in PAGES:
        raise access.Refused("未知的导出", status=404)
    resolved = access.resolve(page, search)
    scope = resolved.scope_code
    if scope is None:
        raise access.Refused("请先选择镇街或村居", status=400)
    store, view = current_store(), resolved.view
    unit = unit_of(store, scope)
    total = len(export_rows(store, scope, filters=view.filters))
    xlsx = kind == "cases.xlsx"
    if xlsx:  # import the writer here, not in the job's thread: two threads importing the
        import openpyxl  # noqa: F401 - same modules (openpyxl → PIL) can see them half-made
    _audit(scope, count=min(total, EXCEL_LIMIT) if xlsx else total, kind=kind + " (后台)")
    area = resolved.account.scope_code
    write = (write_cases_xlsx(store, page, view, scope, total=total, area=area) if xlsx
             else write_cases_csv(store, view, scope))
    suffix = "xlsx" if xlsx else "csv"
    return jobs.registry().submit(
        jobs.owner(resolved.account.id), (page, kind, view.to_search()),
        label=f"{unit.name} · {VIEW_TITLES[page]} · 案件表 {'Excel' if xlsx else 'CSV'}",
        filename=file_name(unit.name, page, "案件表", suffix),
        mimetype=XLSX_MIMETYPE if xlsx else "text/csv; charset=utf-8", unit_code=scope,
        total=min(total, EXCEL_LIMIT) if xlsx else total, write=write)


def export_file(job_id: str) -> flask.Response:
    """Send a finished background export to the session that started it (202 while running).

    Another session's job, or an unknown id, is 404; the unit is checked against the account's
    scope again (it may have changed since the export started).
    """
    from dashboard import access, jobs

    who = access.account()
    job = jobs.registry().get(jobs.owner(who.id), job_id)
    if job is None:
        return flask.Response("未找到该导出 / no such export", status=404,
                              mimetype="text/plain; charset=utf-8")
    access.require_unit(job.unit_code)
    if job.state == "running":
        return flask.Response(job.progress_zh(), status=202, mimetype="text/plain; charset=utf-8")
    if job.state == "failed" or job.path is None:
        return flask.Response("导出失败，请重试 / the export failed", status=500,
                              mimetype="text/plain; charset=utf-8")
    jobs.registry().mark_delivered(job)
    response = flask.send_file(job.path, mimetype=job.mimetype, max_age=0)
    return _attachment(response, job.filename)


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


def _attachment(response: flask.Response, filename: str) -> flask.Response:
    """Name the file for the browser in both header forms (RFC 6266 / 5987, UTF-8)."""
    ascii_name = "gridgov" + Path(filename).suffix
    response.headers["Content-Disposition"] = (
        f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}")
    return response


def _counted(frames, progress):  # noqa: ANN001, ANN202 - frames → frames, counting rows
    done = 0
    for frame in frames:
        yield frame
        done += len(frame)
        progress(done)


def _stamp() -> str:
    return datetime.now().strftime("%Y%m%d-%H%M")
