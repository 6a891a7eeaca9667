"""The app shell (header, navigation, data label, download) and the callbacks every view shares.

The URL is the state: filters, the current unit, map metric and overlays are written to the
query string (``url``), the page router renders the page for it, and each page's content
callbacks read the :data:`~dashboard.components.QUERY` store the page puts in its layout.
Callbacks are thin: parse the query, call :mod:`layers.views` / :mod:`dashboard.map`, return.
"""

from __future__ import annotations

import dash
from dash import Input, Output, State, callback, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate

from dashboard import components as C
from dashboard import map as maps
from dashboard import state
from dashboard.downloads import download_path
from dashboard.query import PAGES, ViewState, parse_day, parse_unit
from geo.codes import level_of, parent_of
from geo.errors import GridgovError
from geo.store import Store
from geo.vocab import LEVEL_NAMES_ZH, STATION_TYPE_ZH
from layers import views
from layers.filters import Filters
from layers.points import case_points
from layers.units import unit_of, unit_path

URL = "url"
NAV = {page: f"nav-{page}" for page in PAGES}
DATA_LABEL = "shell-data-label"
PAGE_TITLES = {"city": "领导视图", "street": "街道视图", "village": "网格员视图"}


def layout() -> html.Div:
    """Build the shell around ``dash.page_container``."""
    return html.Div(className="app", children=[
        dcc.Location(id=URL, refresh="callback-nav"),
        html.Header(className="app-header", children=[
            html.Div(className="brand", children=[
                html.Span("广州市信访网格化治理", className="brand-title"),
                html.Span(id=DATA_LABEL, className="data-label"),
            ]),
            html.Nav(className="nav", children=[
                *[dcc.Link(title, href=PAGES[page], id=NAV[page], className="nav-link")
                  for page, title in PAGE_TITLES.items()],
                dcc.Link("预警", href="/warnings", id="nav-warnings", className="nav-link"),
                dcc.Link("指标说明", href="/definitions", className="nav-link nav-help"),
            ]),
        ]),
        html.Main(dash.page_container, className="app-main"),
    ])


# --------------------------------------------------------------------------- page helpers


def page_context(page: str, params: dict) -> dict:
    """Parse a page's URL parameters: the view state, the scope the page is about, the data.

    A refused parameter leaves the nearest valid view (:meth:`ViewState.parse`) and a message
    in ``problems``; a unit code no current unit has becomes its nearest existing ancestor.
    """
    view, problems = ViewState.parse(params)
    store = state.store()
    view, missing = nearest_unit(store, view)
    if missing:
        problems += (missing,)
    scope = scope_for(page, view.unit)
    return {
        "view": view,
        "scope": scope,
        "problems": problems,
        "info": cached_info(store),
        "options": cached_options(store),
        "query": {"page": page, "search": view.to_search(), "scope": scope,
                  "unit": view.unit},
    }


def nearest_unit(store: Store, view: ViewState) -> tuple[ViewState, str | None]:
    """The view on its unit, or on the nearest existing ancestor with a message."""
    code = view.unit
    while True:
        try:
            unit_of(store, code)
            break
        except GridgovError:
            parent = parent_of(code) if code != ViewState().unit else None
            if parent is None:
                return view.with_(unit=ViewState().unit), None
            code = parent
    if code == view.unit:
        return view, None
    return view.with_(unit=code), f"未找到代码为 {view.unit} 的网格单元，已显示上一级。"


def checked_query(query: object) -> dict | None:
    """The page's query store as a callback receives it, checked like a URL (it is user input).

    Returns the page, the parsed view, its scope (derived again on the server, never taken
    from the request) and search; None when ``query`` is not a page's query at all.
    """
    if not isinstance(query, dict):
        return None
    page, search = query.get("page"), query.get("search", "")
    if not isinstance(page, str) or page not in PAGES or not isinstance(search, str):
        return None
    view, _problems = ViewState.parse(search)
    view, _missing = nearest_unit(state.store(), view)
    return {"page": page, "view": view, "search": view.to_search(),
            "scope": scope_for(page, view.unit), "unit": view.unit}


def param_notice(problems: tuple[str, ...]) -> html.Div | None:
    """The message shown above a page when some of its URL parameters were refused."""
    if not problems:
        return None
    return html.Div(id="param-notice", className="param-notice", role="alert", children=[
        html.Strong("部分网址参数无效，已显示最接近的有效视图："),
        html.Ul([html.Li(problem) for problem in problems]),
    ])


def scope_for(page: str, unit: str) -> str | None:
    """Return the unit a page is computed for, or None when the user must pick one first."""
    level = level_of(unit)
    if page == "city":
        return parent_of(unit) if level == "village" else unit
    if page == "street":
        return unit if level == "street" else parent_of(unit) if level == "village" else None
    return unit if level == "village" else None


def page_header(title: str, subtitle: str, ctx_: dict) -> html.Div:
    """The page title, filter bar and export bar shared by every view."""
    info = ctx_["info"]
    return html.Div(children=[
        dcc.Store(id=C.QUERY, data=ctx_["query"]),
        param_notice(ctx_.get("problems", ())),
        html.Div(className="page-title", children=[html.H1(title), html.Span(subtitle)]),
        html.Details(className="filters", open=ctx_["query"]["page"] != "village", children=[
            html.Summary("筛选条件"),
            C.filter_bar(ctx_["view"], ctx_["options"], (info.date_from, info.date_to)),
        ]),
        C.export_bar({kind: download_path(ctx_["query"]["page"], kind, ctx_["query"]["search"])
                      for kind in ("cases.xlsx", "cases.csv", "map.html")},
                     enabled=ctx_["scope"] is not None),
    ])


def metric_labels() -> dict[str, str]:
    """Chinese labels of every metric (from layers.definitions)."""
    from layers.definitions import METRICS

    return {k: m.label_zh for k, m in METRICS.items()}


def cached_info(store: Store) -> views.DataInfo:
    """Data range / as-of / synthetic flag, cached in the store until the data changes."""
    return store.cached(("data_info",), lambda: views.data_info(store))


def cached_options(store: Store) -> dict[str, list[str]]:
    """Filter values present in the data, cached like :func:`cached_info`."""
    return store.cached(("filter_options",), lambda: views.filter_options(store))


# --------------------------------------------------------------------------- shared callbacks


@callback(
    Output(URL, "search"),
    Input(C.F_DATES, "start_date"),
    Input(C.F_DATES, "end_date"),
    Input(C.F_CATEGORY, "value"),
    Input(C.F_PURPOSE, "value"),
    Input(C.F_CHANNEL, "value"),
    Input(C.F_STATUS, "value"),
    Input(C.F_RESET, "n_clicks"),
    Input(C.M_METRIC, "value"),
    Input(C.M_OVERLAYS, "value"),
    Input(C.M_UNITS, "clickData"),
    State(C.QUERY, "data"),
    prevent_initial_call=True,
)
def navigate(start, end, category, purpose, channel, status, _reset, metric, overlays,
             clicked, query):
    """Write whatever the user changed into the URL (the router re-renders the page).

    Every input is parsed as the URL is (:meth:`ViewState.parse`): a value that is not one a
    control can give is dropped, never trusted.
    """
    checked = checked_query(query)
    if checked is None:
        return no_update
    view = checked["view"]
    trigger = ctx.triggered_id
    if trigger == C.M_UNITS:
        properties = clicked.get("properties") if isinstance(clicked, dict) else None
        code = parse_unit(properties.get("code") if isinstance(properties, dict) else None)
        if not code or code == view.unit:
            return no_update
        view = view.with_(unit=code)
    elif trigger == C.F_RESET:
        view = view.with_(filters=Filters())
    elif trigger in (C.M_METRIC, C.M_OVERLAYS):
        chosen, _problems = ViewState.parse({"metric": metric, "show": overlays})
        view = view.with_(metric=chosen.metric if metric else view.metric,
                          overlays=chosen.overlays)
    else:
        day = {key: parse_day(value) for key, value in (("from", start), ("to", end))}
        chosen, _problems = ViewState.parse({
            "from": day["from"].isoformat() if day["from"] else None,
            "to": day["to"].isoformat() if day["to"] else None,
            "category": category, "purpose": purpose, "channel": channel, "status": status})
        view = view.with_(filters=chosen.filters)
    return _search_if_changed(view, checked)


@callback(
    Output(URL, "search", allow_duplicate=True),
    [Input(C.M_PRESET[key], "n_clicks") for key in C.PRESETS],
    State(C.QUERY, "data"),
    prevent_initial_call=True,
)
def apply_preset(*args):
    """Switch the map to a quick layer: case density, station coverage or resolution rates."""
    checked = checked_query(args[-1])
    if checked is None or not _clicked():
        return no_update
    key = next((k for k, v in C.M_PRESET.items() if v == ctx.triggered_id), None)
    if key is None:
        return no_update
    _label, metric, overlays = C.PRESETS[key]
    return _search_if_changed(checked["view"].with_(metric=metric, overlays=overlays), checked)


@callback(
    Output(URL, "search", allow_duplicate=True),
    Input(C.PICKER, "value"),
    State(C.QUERY, "data"),
    prevent_initial_call=True,
)
def pick_unit(picked, query):
    """Go to the street or village chosen in the picker."""
    checked = checked_query(query)
    code = parse_unit(picked)
    if checked is None or not code:
        return no_update
    return _search_if_changed(checked["view"].with_(unit=code), checked)


@callback(
    Output(C.M_UNITS, "data"),
    Output(C.M_MAP, "viewport"),
    Output(C.M_LEGEND, "children"),
    Output(C.M_CRUMBS, "children"),
    Output(C.M_NOTE, "children"),
    Output(C.M_STATIONS, "data"),
    Output(C.M_CATCHMENTS, "data"),
    Output(C.M_UNCOVERED, "data"),
    Output(C.M_POINTS, "data"),
    Input(C.QUERY, "data"),
)
def update_map(query):
    """Draw the choropleth of the current scope, its overlays, legend and breadcrumb."""
    checked = checked_query(query)
    if checked is None:
        raise PreventUpdate
    view = checked["view"]
    store = state.store()
    scope = checked["scope"] or view.unit
    layer = maps.unit_layer(store, scope, metric=view.metric, filters=view.filters)
    empty = {"type": "FeatureCollection", "features": []}
    stations = catchments = uncovered = points = empty
    notes = [f"图中各单位合计 {layer.extra.get('cases', 0):,} 件"]
    if level_of(scope) == "city":
        notes.append(f"未落格案件（无法归入网格）：{layer.unassigned:,} 件")
    if {"stations", "catchments"} & set(view.overlays):
        all_stations = maps.station_features(store, scope)
        stations = all_stations if "stations" in view.overlays else empty
        catchments = all_stations if "catchments" in view.overlays else empty
    if "uncovered" in view.overlays:
        uncovered = _safe(lambda: maps.uncovered_features(store, scope), empty, notes,
                          "未覆盖区域暂不可用")
    village_page = checked["page"] == "village" and level_of(scope) == "village"
    if "points" in view.overlays or village_page:
        # the grid worker's map shows their to-do list: the open cases
        found = case_points(store, scope, filters=view.filters,
                            only_open=village_page and not view.filters.status)
        points = maps.case_point_features(found, basemap=store.settings.basemap)
        if found.mode == "cells":
            notes.append(f"案件点位按网格汇总：{found.total:,} 件聚为 {points['shown']:,} 处")
        if found.unlocated:
            notes.append(f"{found.unlocated:,} 件无坐标（按代码或地址落格），未画点")
    return (layer.features, {"bounds": layer.bounds}, _legend(layer, view.overlays),
            _breadcrumb(store, checked), " · ".join(notes), stations, catchments, uncovered,
            points)


@callback(
    [Output(NAV[page], "href") for page in PAGES]
    + [Output(NAV[page], "className") for page in PAGES],
    Input(C.QUERY, "data"),
)
def update_nav(query):
    """Keep the unit and filters when switching views; mark the current view."""
    checked = checked_query(query)
    search = checked["search"] if checked else ""
    current = checked["page"] if checked else "city"
    return ([PAGES[p] + search for p in PAGES]
            + ["nav-link active" if p == current else "nav-link" for p in PAGES])


@callback(Output(DATA_LABEL, "children"), Input(C.QUERY, "data"))
def update_data_label(_query):
    """Show the data's date range, its as-of time and the 演示数据 label when synthetic."""
    info = cached_info(state.store())
    if not info.cases:
        return html.Span("数据库中还没有案件数据", className="badge badge-warn")
    parts = [html.Span(f"数据范围 {info.date_from} 至 {info.date_to}（截至 "
                       f"{info.as_of:%Y-%m-%d %H:%M}），共 {info.cases:,} 件")]
    if info.synthetic:
        parts.append(html.Span("演示数据（合成）", className="badge badge-demo",
                               title="这些案件由演示生成器合成，并非真实信访数据"))
    return parts


# --------------------------------------------------------------------------- private helpers


def _legend(layer: maps.MapLayer, overlays: tuple[str, ...] = ()) -> list:
    rows = [html.Div(className="legend-row", children=[
        html.Span(className="swatch", style={"background": colour}), html.Span(label)])
        for colour, label in layer.legend]
    if {"stations", "catchments"} & set(overlays):
        rows.append(html.Div("服务站点", className="legend-title legend-sub"))
        rows += [html.Div(className="legend-row", children=[
            html.Span(className="dot", style={"background": colour}),
            html.Span(STATION_TYPE_ZH[kind])]) for kind, colour in maps.STATION_COLOURS.items()]
    if "uncovered" in overlays:
        rows.append(html.Div(className="legend-row", children=[
            html.Span(className="swatch swatch-uncovered"), html.Span("步行服务半径外")]))
    return [html.Div(layer.metric_label, className="legend-title"), *rows,
            html.Div("虚线边界为示意边界", className="legend-foot")]


def _breadcrumb(store: Store, checked: dict) -> list:
    view = checked["view"]
    path = unit_path(store, view.unit)
    base = PAGES.get(checked["page"], "/")
    items: list = []
    for i, unit in enumerate(path):
        label = unit.name if unit.level != "city" else "全市"
        if i == len(path) - 1:
            items.append(html.Span(label, className="crumb current"))
        else:
            target = view.with_(unit=unit.code).to_search()
            items.append(dcc.Link(label, href=base + target, className="crumb"))
            items.append(html.Span("›", className="crumb-sep"))
    level = path[-1].level
    items.append(html.Span(f"（{LEVEL_NAMES_ZH.get(level, level)}级）", className="muted"))
    return items


def _search_if_changed(view: ViewState, checked: dict):
    """The view's query string, or no_update when the URL already says it (no re-render)."""
    search = view.to_search()
    return no_update if search == checked["search"] else search


def _clicked() -> bool:
    """Whether a real click fired the callback (not a button appearing with n_clicks=0)."""
    value = ctx.triggered[0].get("value") if ctx.triggered_id else None
    return isinstance(value, int) and value > 0


def _safe(build, fallback, notes: list, message: str):
    try:
        return build()
    except (ImportError, GridgovError):
        notes.append(message)
        return fallback
