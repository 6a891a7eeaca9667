"""``/download/warnings.csv?unit=CODE``: the warnings of a unit as a CSV download.

Streamed through :func:`geo.tabular.csv_chunks` (formulas neutralised, UTF-8 with BOM). The
unit parameter is validated; when accounts exist, the user's scope replaces it.
"""

from __future__ import annotations

import flask

from dashboard import access
from dashboard.state import store
from geo.codes import level_of
from geo.errors import CodeError
from geo.tabular import csv_chunks
from geo.vocab import CITY_CODE
from layers.warnings.export import export_frame

ROUTE = "/download/warnings.csv"


def register(server: flask.Flask) -> None:
    """Add the warnings download route to the Flask server."""
    server.add_url_rule(ROUTE, "download_warnings", _download)


def _download() -> flask.Response:
    who = access.account()
    unit = str(flask.request.args.get("unit") or who.scope.code or CITY_CODE)[:15]
    try:
        level_of(unit)
    except CodeError:
        return flask.Response("单位代码无效 / invalid unit code", status=400,
                              mimetype="text/plain; charset=utf-8")
    access.require_unit(unit, page="warnings")
    level = flask.request.args.get("level")
    frame = export_frame(store(), scope=unit, level=level if level in ("red", "yellow") else None)
    access.record("export", unit_code=unit, count=len(frame), detail="warnings.csv")
    response = flask.Response(csv_chunks([frame]), mimetype="text/csv; charset=utf-8")
    response.headers["Content-Disposition"] = f'attachment; filename="warnings-{unit}.csv"'
    return response
