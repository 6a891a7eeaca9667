"""The app shell (header, navigation, data label, download) and the callbacks every view shares.

The URL is the state: filters, the current unit, map metric and overlays are written to the
query string (``url``), the page router renders the page for it, and each page's content
callbacks read the :data:`~dashboard.components.QUERY` store the page puts in its layout.

The controls of a page write the new query string into the page's own
:data:`~dashboard.components.NAV_TARGET` store, which a clientside callback copies to the URL.
Dash fires a callback for controls that arrive with a new page unless its output arrives with
them (``prevent_initial_call`` is ignored otherwise): with the URL as their output, every view
cost five requests that changed nothing (docs/benchmarks.md, load).
Callbacks are thin: resolve the query against the session (:func:`dashboard.access.resolve_query`:
a unit outside the account's scope is refused, whatever the store says), call
:mod:`layers.views` / :mod:`dashboard.map`, return.
"""

from __future__ import annotations

from dataclasses import replace

import dash
from dash import (
    ClientsideFunction,
    Input,
    Output,
    State,
    callback,
    clientside_callback,
    ctx,
    dcc,
    html,
    no_update,
)

from dashboard import access, my_exports, state
from dashboard import components as C
from dashboard import map as maps
from dashboard.auth import current_account
from dashboard.downloads import download_path
from dashboard.query import PAGES, ViewState, parse_day, parse_unit
from geo.codes import level_of, parent_of
from geo.errors import GridgovError
from geo.store import Store
from geo.vocab import CITY_CODE, LEVEL_NAMES_ZH, STATION_TYPE_ZH
from layers import views
from layers.filters import Filters
from layers.periods import PRESETS_ZH, Period, partial_end, preset_period
from layers.points import case_points
from layers.units import unit_of, unit_path

URL = "url"
NAV = {page: f"nav-{page}" for page in PAGES}
DATA_LABEL = "shell-data-label"
PAGE_TITLES = {"city": "领导视图", "street": "街道视图", "village": "网格员视图"}


def layout() -> html.Div:
    """Build the shell around ``dash.page_container``, with the account bar and its navigation."""
    who = current_account()
    allowed = access.allowed_pages(who, who.scope.code) if who and who.scope.code else set()
    return html.Div(className="app", children=[
        dcc.Location(id=URL, refresh="callback-nav"),
        html.Header(className="app-header", children=[
            html.Div(className="brand", children=[
                html.Span("广州市信访网格化治理", className="brand-title"),
                html.Span(id=DATA_LABEL, className="data-label"),
            ]),
            html.Nav(className="nav", children=[
                *[dcc.Link(title, href=PAGES[page], id=NAV[page],
                           className="nav-link" if page in allowed else "nav-link nav-hidden")
                  for page, title in PAGE_TITLES.items()],
                dcc.Link("预警", href="/warnings", id="nav-warnings", className="nav-link"),
                *([dcc.Link("审计与账户", href="/admin", className="nav-link")]
                  if who and who.scope.is_admin else []),
                dcc.Link("指标说明", href="/definitions", className="nav-link nav-help"),
            ]),
            _account_bar(who),
        ]),
        html.Main(dash.page_container, className="app-main"),
        my_exports.panel(),
    ])


# --------------------------------------------------------------------------- page helpers


def page_context(page: str, params: dict) -> dict:
    """Resolve a page's URL against the session: the view state, the unit it shows, the data.

    A refused parameter leaves the nearest valid view (:meth:`ViewState.parse`) and a message
    in ``problems``; a unit no current unit has becomes its nearest existing ancestor. Raises
    :class:`dashboard.access.Refused` (the page shows the refusal) for a unit outside the
    account's scope; a page view inside it is audited.
    """
    resolved = access.resolve(page, params)
    view, scope = resolved.view, resolved.scope_code
    store = state.store()
    access.record("view", unit_code=scope or view.unit, detail=PAGE_TITLES[page])
    home = resolved.account.scope.code
    return {
        "view": view,
        "scope": scope,
        "problems": resolved.problems,
        "info": cached_info(store, home),
        "options": cached_options(store, home),
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
    return unit if level in ("village", "grid") else None


def page_header(title: str, subtitle: str, ctx_: dict) -> html.Div:
    """The page title, filter bar and export bar shared by every view."""
    info = ctx_["info"]
    return html.Div(children=[
        dcc.Store(id=C.QUERY, data=ctx_["query"]),
        dcc.Store(id=C.NAV_TARGET),
        param_notice(ctx_.get("problems", ())),
        html.Div(className="page-title", children=[html.H1(title), html.Span(subtitle)]),
        html.Div(className="print-only print-facts", children=[  # on paper, the filter bar's say
            html.Div("筛选条件：" + "；".join(ctx_["view"].filters.describe_zh())),
            html.Div(f"数据范围 {info.date_from} 至 {info.date_to}" + (
                f"（截至 {info.as_of:%Y-%m-%d %H:%M}）" if info.as_of else "")),
        ]),
        html.Details(className="filters", open=ctx_["query"]["page"] != "village", children=[
            html.Summary("筛选条件"),
            C.filter_bar(ctx_["view"], ctx_["options"], (info.date_from, info.date_to),
                         date_note=date_note(ctx_["view"].filters.date_from,
                                             ctx_["view"].filters.date_to, info.date_from,
                                             info.date_to)),
        ]),
        C.export_bar({kind: download_path(ctx_["query"]["page"], kind, ctx_["query"]["search"])
                      for kind in C.EXPORTS},
                     enabled=ctx_["scope"] is not None),
    ])


def metric_labels() -> dict[str, str]:
    """Chinese labels of every metric (from layers.definitions)."""
    from layers.definitions import METRICS

    return {k: m.label_zh for k, m in METRICS.items()}


def cached_info(store: Store, code: str = CITY_CODE) -> views.DataInfo:
    """Data range / as-of / synthetic flag of unit ``code``, cached until the data changes."""
    return store.cached(("data_info", code), lambda: views.data_info(store, code))


def cached_options(store: Store, code: str = CITY_CODE) -> dict[str, list[str]]:
    """Filter values present in unit ``code``, cached like :func:`cached_info`."""
    return store.cached(("filter_options", code), lambda: views.filter_options(store, code))


# --------------------------------------------------------------------------- shared callbacks


clientside_callback(
    ClientsideFunction(namespace="gridgovNav", function_name="go"),
    Output(URL, "search"),
    Input(C.NAV_TARGET, "data"),
    prevent_initial_call=True,
)


@callback(
    Output(C.NAV_TARGET, "data"),
    Input(C.F_DATES, "start_date"),
    Input(C.F_DATES, "end_date"),
    Input(C.F_CATEGORY, "value"),
    Input(C.F_PURPOSE, "value"),
    Input(C.F_CHANNEL, "value"),
    Input(C.F_STATUS, "value"),
    Input(C.F_RESET, "n_clicks"),
    Input(C.M_METRIC, "value"),
    Input(C.M_OVERLAYS, "value"),
    Input(C.M_FIXED, "value"),
    State(C.QUERY, "data"),
    prevent_initial_call=True,
)
def navigate(start, end, category, purpose, channel, status, _reset, metric, overlays,
             fixed, query):
    """Write whatever the user changed into the URL (the router re-renders the page).

    The query string goes to the page's :data:`~dashboard.components.NAV_TARGET`; the
    clientside ``gridgovNav.go`` puts it in the URL.

    Every input is parsed as the URL is (:meth:`ViewState.parse`): a value that is not one a
    control can give is dropped, never trusted. A unit on the map is entered through its
    popup's 进入 (assets/gridgov.js writes the URL; the page checks the scope as it renders).
    """
    resolved = access.resolve_query(query)
    view = resolved.view
    trigger = ctx.triggered_id
    if trigger == C.M_FIXED:
        view = view.with_(fixed_breaks=isinstance(fixed, list) and "fixed" in fixed)
    elif trigger == C.F_RESET:
        view = view.with_(filters=Filters())
    elif trigger in (C.M_METRIC, C.M_OVERLAYS):
        chosen, _problems = ViewState.parse({"metric": metric, "show": overlays})
        view = view.with_(metric=chosen.metric if metric else view.metric,
                          overlays=chosen.overlays)
    else:
        day = {key: parse_day(value) for key, value in (("from", start), ("to", end))}
        if day["from"] and day["to"] and day["from"] > day["to"]:
            return no_update  # not applied: the note under the picker says why
        chosen, _problems = ViewState.parse({
            "from": day["from"].isoformat() if day["from"] else None,
            "to": day["to"].isoformat() if day["to"] else None,
            "category": category, "purpose": purpose, "channel": channel, "status": status})
        view = view.with_(filters=chosen.filters)
    return _search_if_changed(view, resolved)


@callback(
    Output(C.NAV_TARGET, "data", allow_duplicate=True),
    [Input(C.M_PRESET[key], "n_clicks") for key in C.PRESETS],
    State(C.QUERY, "data"),
    prevent_initial_call=True,
)
def apply_preset(*args):
    """Switch the map to a quick layer: case density, station coverage or resolution rates."""
    if not _clicked():
        return no_update
    resolved = access.resolve_query(args[-1])
    key = next((k for k, v in C.M_PRESET.items() if v == ctx.triggered_id), None)
    if key is None:
        return no_update
    _label, metric, overlays = C.PRESETS[key]
    view = resolved.view.with_(metric=metric, overlays=overlays)
    return _search_if_changed(view, resolved)


@callback(
    Output(C.NAV_TARGET, "data", allow_duplicate=True),
    [Input(C.F_PRESET[key], "n_clicks") for key in PRESETS_ZH],
    State(C.QUERY, "data"),
    prevent_initial_call=True,
)
def apply_date_preset(*args):
    """Set the date window to a preset (本月, 上月 …) counted from the data's last day."""
    if not _clicked():
        return no_update
    resolved = access.resolve_query(args[-1])
    key = next((k for k, v in C.F_PRESET.items() if v == ctx.triggered_id), None)
    info = cached_info(state.store(), resolved.account.scope.code)
    if key is None or info.date_to is None:
        return no_update
    period = preset_period(key, info.date_to)
    filters = replace(resolved.view.filters, date_from=period.start, date_to=period.end)
    return _search_if_changed(resolved.view.with_(filters=filters), resolved)


@callback(
    Output(C.F_DATES_NOTE, "children"),
    Input(C.F_DATES, "start_date"),
    Input(C.F_DATES, "end_date"),
    State(C.QUERY, "data"),
    prevent_initial_call=True,
)
def explain_dates(start, end, query):
    """Say what is wrong with the chosen dates, or that the period is partial (截至 data day).

    On a change only: the note for the URL's dates comes with the page (:func:`page_header`).
    """
    resolved = access.resolve_query(query)
    info = cached_info(state.store(), resolved.account.scope.code)
    return date_note(parse_day(start), parse_day(end), info.date_from, info.date_to)


def date_note(start, end, first, last) -> str | None:  # noqa: ANN001 - dates or None
    """The message under the date picker (pure: the dates picked and the data's range)."""
    if start and end and start > end:
        return "结束日期早于开始日期，未应用；请重新选择。"
    if first is None or last is None:
        return None
    if (start and start > last) or (end and end < first):
        return f"所选日期超出数据范围（{first} 至 {last}），未应用。"
    if (start or end) and partial_end(Period(start, end), last):
        return f"数据截至 {last}：所选时段尚未结束，为不完整期。"
    return None


@callback(
    Output(C.NAV_TARGET, "data", allow_duplicate=True),
    Input(C.PICKER, "value"),
    State(C.QUERY, "data"),
    prevent_initial_call=True,
)
def pick_unit(picked, query):
    """Go to the street or village chosen in the picker."""
    resolved = access.resolve_query(query)
    code = parse_unit(picked)
    if not code:
        return no_update
    code = access.require_unit(code, page=resolved.page)
    return _search_if_changed(resolved.view.with_(unit=code), resolved)


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
    Output(C.M_LABELS, "data"),
    Input(C.QUERY, "data"),
)
def update_map(query):
    """Draw the choropleth of the current scope, its overlays, legend and breadcrumb."""
    resolved = access.resolve_query(query)
    view = resolved.view
    store = state.store()
    scope = resolved.scope_code or view.unit
    layer = maps.unit_layer(store, scope, metric=view.metric, filters=view.filters,
                            fixed=view.fixed_breaks,
                            with_city=resolved.account.scope.level == "city")
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
    village_page = resolved.page == "village" and level_of(scope) == "village"
    if "points" in view.overlays or village_page:
        # the grid worker's map shows their to-do list: the open cases
        found = case_points(store, scope, filters=view.filters,
                            only_open=village_page and not view.filters.status)
        points = maps.case_point_features(found, basemap=store.settings.basemap)
        if found.mode == "cells":
            notes.append(f"案件点位按网格汇总：{found.total:,} 件聚为 {points['shown']:,} 处")
        if found.unlocated:
            notes.append(f"{found.unlocated:,} 件无坐标（按代码或地址落格），未画点")
    drawn = bool(points.get("features"))
    return (layer.features, {"bounds": layer.bounds}, _legend(layer, view.overlays, points=drawn),
            _breadcrumb(store, resolved), " · ".join(notes), stations, catchments, uncovered,
            points, layer.labels)


@callback(
    Output(DATA_LABEL, "children"),
    [Output(NAV[page], "href") for page in PAGES]
    + [Output(NAV[page], "className") for page in PAGES],
    Input(C.QUERY, "data"),
)
def update_shell(query):
    """The header of a view: its data label (:func:`data_label`) and its navigation (:func:`nav`).

    One callback for both: each is a few milliseconds of work, and a request of its own cost
    more than that under load (docs/benchmarks.md, load).
    """
    resolved = access.resolve_query(query)
    return data_label(resolved.account.scope.code), *nav(resolved)


def nav(resolved: access.Resolved) -> list[str]:
    """Keep the unit and filters when switching views; mark the current view; hide the rest.

    A view is offered only when the unit it would show lies in the account's scope.
    """
    search = resolved.view.to_search()
    allowed = access.allowed_pages(resolved.account, resolved.view.unit)
    return ([PAGES[p] + search for p in PAGES]
            + [("nav-link active" if p == resolved.page else "nav-link")
               + ("" if p in allowed else " nav-hidden") for p in PAGES])


def data_label(home: str):  # noqa: ANN201 - Dash children
    """The range and count of the account's cases, the as-of time, and 演示数据 when synthetic."""
    info = cached_info(state.store(), home)
    if not info.cases:
        return html.Span("辖区内还没有案件数据", className="badge badge-warn")
    area = "" if home == CITY_CODE else "本辖区"
    parts = [html.Span(f"数据范围 {info.date_from} 至 {info.date_to}（截至 "
                       f"{info.as_of:%Y-%m-%d %H:%M}），{area}共 {info.cases:,} 件")]
    if info.synthetic:
        parts.append(html.Span("演示数据（合成）", className="badge badge-demo",
                               title="这些案件由演示生成器合成，并非真实信访数据"))
    return parts


# --------------------------------------------------------------------------- private helpers


def _legend(layer: maps.MapLayer, overlays: tuple[str, ...] = (), *,
            points: bool = False) -> list:
    rows = [html.Div(className="legend-row", children=[
        html.Span(className="swatch", style={"background": colour}), html.Span(label)])
        for colour, label in layer.legend]
    if points:  # case points: white-ringed circles by urgency
        rows.append(html.Div("案件点位", className="legend-title legend-sub"))
        rows += [html.Div(className="legend-row", children=[
            html.Span(className="dot", style={"background": colour}),
            html.Span(maps.URGENCY_ZH[kind])]) for kind, colour in maps.URGENCY_COLOURS.items()]
    if {"stations", "catchments"} & set(overlays):
        rows.append(html.Div("服务站点（黑圈）", className="legend-title legend-sub"))
        rows += [html.Div(className="legend-row", children=[
            html.Span(className="dot dot-station", style={"background": colour}),
            html.Span(STATION_TYPE_ZH[kind])]) for kind, colour in maps.STATION_COLOURS.items()]
    if "uncovered" in overlays:
        rows.append(html.Div(className="legend-row", children=[
            html.Span(className="swatch swatch-uncovered"), html.Span("步行服务半径外")]))
    notes = [html.Div(note, className="legend-foot legend-scheme") for note in layer.legend_notes]
    return [html.Div(layer.metric_label, className="legend-title"), *rows, *notes,
            html.Div("虚线边界为示意边界", className="legend-foot")]


def _breadcrumb(store: Store, resolved: access.Resolved) -> list:
    """The path from the city to the unit; units above the account's scope are plain text."""
    view = resolved.view
    path = unit_path(store, view.unit)
    base = PAGES[resolved.page]
    items: list = []
    for i, unit in enumerate(path):
        label = unit.name if unit.level != "city" else "全市"
        if i == len(path) - 1:
            items.append(html.Span(label, className="crumb current"))
        elif not resolved.account.scope.allows_unit(unit.code):
            items.append(html.Span(label, className="crumb crumb-outside"))
            items.append(html.Span("›", className="crumb-sep"))
        else:
            target = view.with_(unit=unit.code).to_search()
            items.append(dcc.Link(label, href=base + target, className="crumb"))
            items.append(html.Span("›", className="crumb-sep"))
    level = path[-1].level
    items.append(html.Span(f"（{LEVEL_NAMES_ZH.get(level, level)}级）", className="muted"))
    return items


def _account_bar(who) -> html.Div | None:  # noqa: ANN001 - an Account or None
    """Who is logged in (name, role, area) and the logout button (a POST with the CSRF token)."""
    if who is None:
        return None
    from flask_wtf.csrf import generate_csrf

    area = ""
    if who.scope_code:
        try:
            area = " · " + unit_of(state.store(), who.scope_code).name
        except GridgovError:
            area = " · " + who.scope_code
    return html.Div(className="account-bar", children=[
        html.Span(f"{who.display_name}（{who.role_zh}{area}）", className="account-name",
                  id="account-name"),
        html.Form(action="/logout", method="POST", children=[
            dcc.Input(type="hidden", name="csrf_token", value=generate_csrf()),
            html.Button("退出", type="submit", className="btn-logout", id="logout"),
        ]),
    ])


def _search_if_changed(view: ViewState, resolved: access.Resolved):
    """The view's query string, or no_update when the URL already says it (no re-render)."""
    search = view.to_search()
    return no_update if search == resolved.view.to_search() else search


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
