"""预警 (early warning): the warnings of a unit by level and rule, a map, each with its cases.

The unit (``?unit=``) and an opened warning (``?id=``) live in the URL; level, rule and state
filters narrow the list. Clicking a row opens the warning: why it fired, its numbers, its
cases (links to the case pages), its state history and a form to move its state
(新 → 已查看 → 处置中 → 已解除 / 误报). For a district, street or village the 显微镜 section shows
what drives its cases. Callbacks are thin over :mod:`layers.warnings.views`.

Scope: the warnings shown and changed are those of the unit in the URL and the units nested
in it; when accounts exist, the scope resolver replaces that unit by the user's scope.
"""

from __future__ import annotations

import re

import dash
import dash_ag_grid as dag
import dash_leaflet as dl
from dash import Input, Output, State, callback, dcc, html, no_update

from dashboard import access, state
from dashboard import components as C
from dashboard import warnings_map as wmap
from dashboard.auth import client_address
from dashboard.map import basemap_spec, web_units
from dashboard.query import ViewState
from dashboard.shell import URL, nearest_unit
from dashboard.warnings_ui import case_href, warnings_href
from geo.codes import level_of, prefix_of
from geo.vocab import CITY_CODE, WARNING_LEVELS, WARNING_STATES, WARNING_TRANSITIONS
from layers.units import child_level, children_of, unit_of, unit_path
from layers.warnings.definitions import RULES
from layers.warnings.microscope import microscope
from layers.warnings.storage import WarningStateError, set_state
from layers.warnings.views import summary, warning_detail, warning_list

dash.register_page(__name__, path="/warnings", name="预警",
                   title="预警 · 广州市信访网格化治理", order=3)

QUERY = "warn-query"
KPIS = "warn-kpis"
LEVEL = "warn-level"
RULE = "warn-rules"
STATES = "warn-states"
PICK = "warn-unit-picker"
GRID = "warn-grid"
COUNT = "warn-count"
SELECTED = "warn-selected"
DETAIL = "warn-detail"
SAVED = "warn-saved"
NEXT = "warn-next-state"
NOTE = "warn-note"
SAVE = "warn-save"
MESSAGE = "warn-save-msg"
MAP = "warn-map"
HOT = "warn-map-hot"
POINTS = "warn-map-points"
MICRO = "warn-microscope"
ID_PATTERN = re.compile(r"^W[0-9a-f]{19}$")
GRID_COLUMNS = [("level_zh", "等级"), ("rule_zh", "规则"), ("reason", "原因"),
                ("unit_name", "单位"), ("case_count", "件数"), ("period", "时段"),
                ("state_zh", "状态")]
COLUMN_SIZES = {"level_zh": {"width": 70, "minWidth": 60}, "rule_zh": {"width": 110},
                "reason": {"flex": 1, "minWidth": 320, "wrapText": True, "autoHeight": True,
                           "cellStyle": {"lineHeight": "1.4", "whiteSpace": "normal"}},
                "unit_name": {"width": 150}, "case_count": {"width": 80}, "state_zh": {"width": 90}}
MAX_ROWS = 1000
"""Rows sent to the list at once (red first); the count says how many there are, the CSV has all."""
ROW_RULES = {"warn-row-red": "params.data.level === 'red'",
             "warn-row-yellow": "params.data.level === 'yellow'"}


@access.guard_layout
def layout(**params) -> html.Div:
    """Render the 预警 page for the unit (and opened warning) in the URL (inside the scope)."""
    store = state.store()
    unit = _unit(params)
    opened = str(params.get("id") or "")
    opened = opened if ID_PATTERN.match(opened) else None
    scope = unit_of(store, unit)
    children = children_of(store, unit, level=child_level(scope.level)) \
        if child_level(scope.level) else None
    spec = basemap_spec(store.settings.basemap)
    tiles = [dl.TileLayer(url=spec["url"], attribution=spec["attribution"],
                          **({"subdomains": spec["subdomains"]} if "subdomains" in spec else {}))
             ] if spec else []
    return html.Div(className="page page-warnings", children=[
        dcc.Store(id=QUERY, data={"unit": unit, "id": opened}),
        dcc.Store(id=SELECTED, data=opened),
        dcc.Store(id=SAVED, data=0),
        html.Div(className="page-title", children=[
            html.H1("预警"),
            html.Span(f"{scope.name} · 望远镜看风险、放大镜盯个案、显微镜查痛点"),
        ]),
        html.Nav(className="breadcrumb", children=_crumbs(store, unit)),
        html.Div(id=KPIS, className="kpis kpis-compact"),
        html.Section(className="card", children=[
            html.Div(className="warn-filters", children=[
                html.Div(className="filter", children=[
                    html.Label("预警等级", htmlFor=LEVEL),
                    dcc.RadioItems(id=LEVEL, value="", inline=True, className="radio-inline",
                                   options=[{"label": "全部", "value": ""},
                                            {"label": "红（强信号）", "value": "red"},
                                            {"label": "黄（弱信号）", "value": "yellow"}]),
                ]),
                html.Div(className="filter", children=[
                    html.Label("规则", htmlFor=RULE),
                    dcc.Dropdown(id=RULE, multi=True, placeholder="全部规则",
                                 labels=C.DROPDOWN_LABELS,
                                 options=[{"label": r.label_zh, "value": k}
                                          for k, r in RULES.items()]),
                ]),
                html.Div(className="filter", children=[
                    html.Label("状态", htmlFor=STATES),
                    dcc.Dropdown(id=STATES, multi=True, placeholder="全部状态",
                                 labels=C.DROPDOWN_LABELS,
                                 options=[{"label": v, "value": k}
                                          for k, v in WARNING_STATES.items()]),
                ]),
                *([html.Div(className="filter", children=[
                    html.Label("下级单位", htmlFor=PICK),
                    dcc.Dropdown(id=PICK, placeholder="选择下级单位查看其预警", searchable=True,
                                 labels=C.DROPDOWN_LABELS,
                                 options=[{"label": f"{n}（{c}）", "value": c} for c, n in
                                          zip(children["code"], children["name"], strict=True)]),
                ])] if children is not None and len(children) else []),
                html.A("导出预警 CSV", className="btn", download="",
                       href=f"/download/warnings.csv?unit={unit}"),
            ]),
        ]),
        html.Div(className="two-col", children=[
            html.Section(className="card", children=[
                html.H2(id=COUNT),
                dcc.Loading(type="dot", delay_show=300, children=dag.AgGrid(
                    id=GRID, rowData=[], getRowId="params.data.id",
                    columnDefs=[{"field": f, "headerName": h, **COLUMN_SIZES.get(f, {})}
                                for f, h in GRID_COLUMNS],
                    defaultColDef={"sortable": True, "resizable": True, "filter": True,
                                   "minWidth": 70},
                    dashGridOptions={"localeText": C.GRID_LOCALE, "animateRows": False,
                                     "pagination": True, "paginationPageSize": 50,
                                     "paginationPageSizeSelector": False},
                    rowClassRules=ROW_RULES, className="ag-theme-quartz",
                    style={"height": "480px", "width": "100%"})),
                html.P("点击一行查看预警原因、涉及案件和处置记录。", className="muted small"),
            ]),
            html.Section(className="card", children=[
                html.H2("预警地图"),
                dl.Map(id=MAP, center=[23.13, 113.35], zoom=9, style={"height": "480px"},
                       className="leaflet-plain", attributionControl=bool(spec), children=[
                           *tiles,
                           dl.GeoJSON(id=HOT, data=_empty(),
                                      style={"variable": "gridgovWarn.hotStyle"},
                                      onEachFeature={"variable": "gridgovWarn.hotTooltip"}),
                           dl.GeoJSON(id=POINTS, data=_empty(),
                                      pointToLayer={"variable": "gridgovWarn.point"}),
                       ]),
                html.Div(className="map-legend-inline small", children=[
                    html.Span("■ 新发热点", style={"color": wmap.HOT_COLOURS["emerging"]}), " ",
                    html.Span("■ 持续热点", style={"color": wmap.HOT_COLOURS["hot"]}), " ",
                    html.Span("● 群体性苗头（圆为聚集范围）、集体访、重复访",
                              style={"color": wmap.POINT_COLOURS["red"]}),
                ]),
            ]),
        ]),
        html.Section(className="card warn-detail", children=[
            html.Div(id=DETAIL, children=html.P("尚未选择预警。", className="muted")),
            html.Div(className="warn-state-form", children=[
                html.Label("改为", htmlFor=NEXT),
                dcc.Dropdown(id=NEXT, clearable=False, searchable=False, style={"width": "160px"},
                             labels=C.DROPDOWN_LABELS, options=[]),
                dcc.Input(id=NOTE, type="text", placeholder="备注（可选）", maxLength=500,
                          style={"width": "280px", "maxWidth": "100%"}),
                html.Button("更新状态", id=SAVE, n_clicks=0, className="btn"),
                html.Span(id=MESSAGE, className="muted", role="status"),
            ]),
        ]),
        html.Section(className="card", children=[
            html.H2("显微镜：本单位痛点"),
            dcc.Loading(type="dot", delay_show=300, children=html.Div(id=MICRO)),
        ]),
    ])


@callback(Output(GRID, "rowData"), Output(COUNT, "children"), Output(KPIS, "children"),
          Input(QUERY, "data"), Input(LEVEL, "value"), Input(RULE, "value"),
          Input(STATES, "value"), Input(SAVED, "data"))
def update_list(query, level, rules, states, _saved):
    """The scope's active warnings, filtered (thin: layers.warnings.views.warning_list)."""
    store = state.store()
    unit = _scope(query)
    level = level if isinstance(level, str) and level in WARNING_LEVELS else None
    rules = _choices(rules, RULES)
    states = _choices(states, WARNING_STATES)
    frame = warning_list(store, unit, level=level, rules=rules, states=states)
    counts = summary(store, unit)
    kpis = C.kpi_cards([
        ("红色预警", C.num(counts.red), "强信号：规则命中"),
        ("黄色预警", C.num(counts.yellow), "弱信号：统计检验"),
        ("未查看", C.num(counts.new), f"待处置 {C.num(counts.open)}"),
    ])
    title = f"预警列表（{len(frame):,} 条，红色在前）"
    if len(frame) > MAX_ROWS:
        title += f"，显示前 {MAX_ROWS:,} 条，全部请导出"
    shown = frame.head(MAX_ROWS)
    rows = shown.astype(object).where(shown.notna(), None).to_dict("records")
    return rows, title, kpis


@callback(Output(SELECTED, "data"), Input(GRID, "cellClicked"), prevent_initial_call=True)
def select_warning(clicked):
    """Open the clicked warning."""
    warning_id = str(clicked.get("rowId") or "") if isinstance(clicked, dict) else ""
    return warning_id if ID_PATTERN.match(warning_id) else no_update


@callback(Output(DETAIL, "children"), Output(NEXT, "options"), Output(NEXT, "value"),
          Input(SELECTED, "data"), Input(SAVED, "data"), State(QUERY, "data"))
def show_warning(warning_id, _saved, query):
    """The opened warning: why, numbers, its cases (links), its state history."""
    if not warning_id:
        return html.P("尚未选择预警。点击列表中的一行。", className="muted"), [], None
    if not isinstance(warning_id, str) or not ID_PATTERN.match(warning_id):
        return html.P("尚未选择预警。点击列表中的一行。", className="muted"), [], None
    record = warning_detail(state.store(), warning_id, scope=_scope(query))
    if record is None:
        return html.P("未找到该预警（或不在当前单位范围内）。", className="muted"), [], None
    allowed = WARNING_TRANSITIONS.get(record["state"], ())
    options = [{"label": WARNING_STATES[s], "value": s} for s in allowed]
    return _detail(record), options, (allowed[0] if allowed else None)


@callback(Output(SAVED, "data"), Output(MESSAGE, "children"), Input(SAVE, "n_clicks"),
          State(SELECTED, "data"), State(NEXT, "value"),
          State(NOTE, "value"), State(QUERY, "data"), State(SAVED, "data"),
          prevent_initial_call=True)
def save_state(clicks, warning_id, to_state, note, query, saved):
    """Move the opened warning to the chosen state as the logged-in user (audited)."""
    if not clicks or not isinstance(warning_id, str) or not ID_PATTERN.match(warning_id):
        return no_update, "请先选择预警。"
    if not isinstance(to_state, str) or to_state not in WARNING_STATES:
        return no_update, "请选择要改为的状态。"
    who = access.account()
    note = note if isinstance(note, str) else ""
    try:
        set_state(state.store(), warning_id, to_state, actor=who.display_name or who.username,
                  note=note[:500], scope=_scope(query), audit_actor=who.actor,
                  address=client_address())
    except WarningStateError as error:
        return no_update, str(error).split(" / ")[0]
    count = saved if isinstance(saved, int) and not isinstance(saved, bool) else 0
    return count + 1, f"已改为“{WARNING_STATES[to_state]}”。"


@callback(Output(HOT, "data"), Output(POINTS, "data"), Output(MAP, "viewport"),
          Input(QUERY, "data"))
def update_map(query):
    """Hot spots, clusters and place-bound warnings of the scope (dashboard.warnings_map)."""
    store = state.store()
    unit = _scope(query)
    hot = wmap.hotspot_features(store, unit)
    points = wmap.point_features(store, unit)
    units = web_units(store, "village")
    if level_of(unit) != "city":
        units = units[units["code"].astype(str).str.startswith(prefix_of(unit))]
    if not len(units):
        return hot, points, no_update
    west, south, east, north = (float(v) for v in units.total_bounds)
    viewport = {"bounds": [[south, west], [north, east]]}
    return hot, points, viewport


@callback(Output(MICRO, "children"), Input(QUERY, "data"))
def update_microscope(query):
    """显微镜 of the scope (thin: layers.warnings.microscope.microscope)."""
    unit = _scope(query)
    if unit == CITY_CODE:
        return html.P("选择一个区、镇街或村居（上方“下级单位”），查看其高发类别、重复发生地点和承办单位"
                      "按期办结率。", className="muted")
    store = state.store()
    reference = access.account().scope.code
    reference_name = "全市" if reference == CITY_CODE else unit_of(store, reference).name
    m = store.cached(("warning_microscope", unit, reference),
                     lambda: microscope(store, unit, reference=reference))
    if not m.cases:
        return html.P(f"{m.period_start} 至 {m.period_end} 没有信访件。", className="muted")
    over = m.categories[m.categories["over_represented"]]
    category_rows = m.categories.head(8).assign(
        share_pct=lambda f: (100 * f["share"]).round(1),
        city_pct=lambda f: (100 * f["city_share"]).round(1),
        q=lambda f: f["q_value"].map(lambda v: f"{v:.2g}"),
        flag=lambda f: f["over_represented"].map({True: "高发", False: ""}))
    handling = m.handling.head(8).assign(rate_pct=lambda f: (100 * f["rate"]).round(1))
    places = m.places.assign(first=lambda f: f["case_ids"].map(lambda ids: ids[0]))
    return html.Div(children=[
        html.P(f"{m.period_start} 至 {m.period_end} 共 {m.cases:,} 件；高发类别 {len(over)} 个。",
               className="muted"),
        html.Div(className="two-col", children=[
            html.Div(children=[html.H3("高发类别（与全市比较）"), C.grid(
                "warn-micro-categories", category_rows,
                [("category", "内容分类"), ("observed", "件数"), ("share_pct", "本单位占比 %"),
                 ("city_pct", f"{reference_name}占比 %"), ("q", "q 值"), ("flag", "判断")],
                height=260, page_size=None)]),
            html.Div(children=[html.H3("承办单位按期办结率（最低在前）"), C.grid(
                "warn-micro-handling", handling,
                [("handling_unit", "承办单位"), ("on_time", "按期办结"), ("due", "应办结"),
                 ("rate_pct", "按期办结率 %")], height=260, page_size=None)]),
        ]),
        html.H3("重复发生地点（50 米网格内 2 件及以上）"),
        html.Ul(className="simple-list", children=[
            html.Li([html.Span(f"{r['lon']:.5f}, {r['lat']:.5f} · {r['cases']} 件 · "
                               f"{r['top_category']} · "),
                     dcc.Link(r["first"], href=case_href(r["first"]), className="case-id")])
            for r in places.to_dict("records")
        ]) if len(places) else html.P("没有重复发生的地点。", className="muted"),
    ])


@callback(Output(URL, "search", allow_duplicate=True), Input(PICK, "value"),
          prevent_initial_call=True)
def pick_unit(code):
    """Open the chosen child unit's warnings (a unit outside the scope is refused)."""
    if not isinstance(code, str) or not code.isdigit() or len(code) != 12:
        return no_update
    return warnings_href(access.require_unit(code, page="warnings"))[len("/warnings"):]


def _detail(record: dict) -> list:
    numbers = [("等级", record["level_zh"]), ("规则", record["rule_zh"]),
               ("单位", f"{record['unit_name']}（{record['unit_code']}）"),
               ("时段", record["period"]), ("观测值", _num(record["observed"])),
               ("期望值 / 阈值", _num(record["expected"]))]
    if record.get("statistic") is not None and record["rule"] in ("surge", "hotspot"):
        numbers += [("统计量", _num(record["statistic"], 2)), ("p 值", _num(record["p_value"], 4)),
                    ("q 值（FDR）", _num(record["q_value"], 4))]
    numbers += [("状态", record["state_zh"]),
                ("最近处置", " · ".join(str(v) for v in (record.get("state_by"),
                                                      record.get("state_at")) if v) or "—")]
    ids = record["case_id_list"]
    return [
        html.H2(f"{record['rule_zh']} · {record['unit_name']}"),
        html.P(record["reason"], className="case-text", id="warn-reason"),
        html.Table(className="kv", children=html.Tbody(
            [html.Tr([html.Th(k), html.Td(v)]) for k, v in numbers])),
        html.H3(f"涉及案件（{len(ids)} 件）"),
        html.Ul(className="case-links-list", id="warn-cases", children=[
            html.Li(dcc.Link(c, href=case_href(c), className="case-id")) for c in ids[:200]]),
        *([html.P(f"另有 {len(ids) - 200} 件，见导出。", className="muted small")]
          if len(ids) > 200 else []),
        html.H3("处置记录"),
        html.Ol(className="timeline", children=[
            html.Li([html.Span(f"{e['at']:%Y-%m-%d %H:%M}", className="timeline-at"),
                     html.Span(f"{WARNING_STATES.get(e['from_state'], '—')} → "
                               f"{WARNING_STATES.get(e['to_state'], e['to_state'])}",
                               className="timeline-label"),
                     html.Span(e["actor"], className="timeline-detail"),
                     html.Span(e.get("note") or "", className="muted small")])
            for e in record["events"]
        ] or [html.Li("尚无处置记录。", className="muted")]),
    ]


def _crumbs(store, unit: str) -> list:  # noqa: ANN001
    items: list = []
    path = unit_path(store, unit)
    for i, u in enumerate(path):
        label = "全市" if u.level == "city" else u.name
        if i == len(path) - 1:
            items.append(html.Span(label, className="crumb current"))
        else:
            items += [dcc.Link(label, href=warnings_href(u.code), className="crumb"),
                      html.Span("›", className="crumb-sep")]
    return items


def _choices(values: object, allowed: dict) -> tuple[str, ...]:
    """Keep only known keys from a dropdown's value (a client may post anything)."""
    if not isinstance(values, list | tuple):
        return ()
    return tuple(v for v in values if isinstance(v, str) and v in allowed)


def _scope(query: object) -> str:
    """The unit a callback works on: the page's unit, checked against the session's scope
    (a unit outside it is refused and audited; the browser's value is only a wish)."""
    unit = query.get("unit") if isinstance(query, dict) else None
    return _unit({"unit": unit} if isinstance(unit, str) else {})


def _unit(params: dict) -> str:
    """The unit in the URL (the account's own area when none), nearest existing, in scope."""
    who = access.account()
    if not who.scope.sees_data:
        raise access.Refused("管理员账户不查看案件数据；请使用管理页面。")
    view = ViewState.parse(params)[0] if params.get("unit") else ViewState(unit=who.scope.code)
    view, _missing = nearest_unit(state.store(), view)
    return access.require_unit(view.unit, page="warnings")


def _num(value, digits: int = 1) -> str:  # noqa: ANN001
    if value is None or value != value:
        return "—"
    value = float(value)
    return f"{value:,.0f}" if value.is_integer() and digits <= 1 else f"{value:,.{digits}f}"


def _empty() -> dict:
    return {"type": "FeatureCollection", "features": []}

