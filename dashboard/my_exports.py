"""我的导出: the export buttons start background jobs, listed in the shell with their progress.

The list lives in the shell (outside ``dash.page_container``), so it stays while the user moves
between views; it polls once a second only while one of the session's exports is running.
A finished file is offered as a link (``/exports/<id>``) that assets/exports.js follows once
by itself, so the file arrives even when the user left the view that asked for it.

A click is handed to the shell at once, in the browser (``gridgovExports.request`` in
assets/exports.js writes the kind and the view into a shell store), and the server starts the
job from that store. Were the buttons the server callback's inputs, a click followed by a
breadcrumb within a moment would be lost: Dash drops a callback whose inputs left the page
before its answer came back. Thin
callbacks over :mod:`dashboard.downloads` and :mod:`dashboard.jobs`; every one derives the
account and the unit from the session.
"""

from __future__ import annotations

from dash import (
    ClientsideFunction,
    Input,
    Output,
    State,
    callback,
    clientside_callback,
    dcc,
    html,
    no_update,
)

from dashboard import access, jobs
from dashboard import components as C
from dashboard.downloads import start_export

REQUEST = "my-exports-request"
TICK = "my-exports-tick"
POLL = "my-exports-poll"
LIST = "my-exports-list"
RUNNING = "my-exports-running"
KINDS = {C.X_XLSX: "cases.xlsx", C.X_CSV: "cases.csv"}


def panel() -> html.Div:
    """The 我的导出 panel of the shell (empty until the session starts an export)."""
    return html.Div(className="my-exports no-print", children=[
        dcc.Store(id=REQUEST),
        dcc.Store(id=TICK),
        dcc.Store(id=RUNNING, data=[]),
        dcc.Interval(id=POLL, interval=1000, disabled=True),
        html.Div(id=LIST),
    ])


clientside_callback(
    ClientsideFunction(namespace="gridgovExports", function_name="request"),
    Output(REQUEST, "data"),
    Input(C.X_XLSX, "n_clicks"),
    Input(C.X_CSV, "n_clicks"),
    State(C.QUERY, "data"),
    prevent_initial_call=True,
)


@callback(
    Output(TICK, "data"),
    Input(REQUEST, "data"),
    prevent_initial_call=True,
)
def start(request):
    """Start the clicked export of the view for the session (scope from the session).

    ``request`` comes from the browser ({"kind", "query", "at"}): anything; only a known kind
    starts anything, and the view is resolved against the session's scope.
    """
    if not isinstance(request, dict) or request.get("kind") not in KINDS.values():
        return no_update
    resolved = access.resolve_query(request.get("query"))
    return start_export(resolved.page, request["kind"], resolved.view.to_search()).id


@callback(
    Output(LIST, "children"),
    Output(POLL, "disabled"),
    Output(RUNNING, "data"),
    Input(TICK, "data"),
    Input(POLL, "n_intervals"),
)
def show(_tick, _n):
    """List the session's exports; poll while one runs."""
    who = access.account()
    mine = jobs.registry().of(jobs.owner(who.id))
    if not mine:
        return None, True, []
    items = []
    for job in mine:
        children: list = [html.Span(job.label, className="export-label"),
                          html.Span(job.progress_zh(), className="export-state")]
        if job.state == "running":
            share = 100 * job.done / job.total if job.total else 0
            children.append(html.Div(className="export-bar-track", children=html.Div(
                className="export-bar-fill", style={"width": f"{share:.0f}%"})))
        elif job.state == "ready":
            children.append(html.A("下载", href=f"/exports/{job.id}", download="",
                                   className="export-ready",
                                   **({} if job.delivered else {"data-auto": "1"})))
        items.append(html.Li(className=f"export-item export-{job.state}", children=children))
    running = [list(job.key) for job in mine if job.state == "running"]
    fresh = bool(running) or any(j.state == "ready" and not j.delivered for j in mine)
    # open while something runs or waits to be fetched; otherwise a small 我的导出 tab
    return (html.Details(open=fresh, id="my-exports", children=[
        html.Summary(f"我的导出（{len(mine)}）"),
        html.Ul(items, className="export-list"),
        html.P("文件保留 1 小时；切换视图不影响导出。", className="muted small"),
    ]), not running, running)


# Disable an export button while the same export of the same view runs (or with no unit).
# Only what the buttons look like, in the browser (a page arriving costs no request for it):
# the job itself is started from the session's scope (:func:`start`), whatever the page says.
clientside_callback(
    ClientsideFunction(namespace="gridgovExports", function_name="buttons"),
    Output(C.X_XLSX, "disabled"),
    Output(C.X_CSV, "disabled"),
    Input(RUNNING, "data"),
    Input(C.QUERY, "data"),
)
