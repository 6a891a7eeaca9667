"""Reusable pieces of every view: filter bar, map panel, export bar, KPI cards, case tables.

Shared components carry the same ids on every page (only one page is on screen at a time),
so one set of callbacks in :mod:`dashboard.shell` serves them all. Ids are constants here.
"""

from __future__ import annotations

import math
from datetime import date

import dash_ag_grid as dag
import dash_leaflet as dl
import pandas as pd
from dash import dcc, html

from dashboard.map import basemap_spec
from dashboard.query import MAP_METRICS, OVERLAYS, ViewState
from layers.periods import PRESETS_ZH

# shared ids ------------------------------------------------------------------
QUERY = "view-query"
NAV_TARGET = "view-nav"
F_DATES = "flt-dates"
F_CATEGORY = "flt-category"
F_PURPOSE = "flt-purpose"
F_CHANNEL = "flt-channel"
F_STATUS = "flt-status"
F_RESET = "flt-reset"
F_DATES_NOTE = "flt-dates-note"
F_PRESET = {key: f"flt-preset-{key}" for key in PRESETS_ZH}
M_METRIC = "map-metric"
M_OVERLAYS = "map-overlays"
M_FIXED = "map-fixed-breaks"
M_LABELS = "map-labels"
M_CRUMBS = "map-breadcrumb"
M_MAP = "map-map"
M_UNITS = "map-units"
M_STATIONS = "map-stations"
M_CATCHMENTS = "map-catchments"
M_UNCOVERED = "map-uncovered"
M_POINTS = "map-points"
M_LEGEND = "map-legend"
M_NOTE = "map-note"
PICKER = "unit-picker"
X_XLSX, X_CSV, X_HTML, X_DOCX = "exp-xlsx", "exp-csv", "exp-html", "exp-docx"
EXPORTS = {"cases.xlsx": (X_XLSX, "案件表 Excel"), "cases.csv": (X_CSV, "案件表 CSV"),
           "map.html": (X_HTML, "地图 HTML"), "report.docx": (X_DOCX, "月报 Word")}
LINK_EXPORTS = ("map.html", "report.docx")
"""Quick files, plain links to their ``/download/…`` route (the case tables run as jobs)."""

STATUS_OPTIONS = [
    {"label": "未办结", "value": "open"},
    {"label": "已办结", "value": "closed"},
    {"label": "超期未办结", "value": "overdue"},
]
OVERLAY_LABELS = {
    "points": "案件点位",
    "stations": "服务站点",
    "catchments": "服务半径",
    "uncovered": "未覆盖区域",
}
PRESETS = {
    "density": ("案件密度", "cases_per_km2", ("points",)),
    "coverage": ("站点覆盖", "covered_pop_share", ("stations", "catchments", "uncovered")),
    "rates": ("化解率", "on_time_completion", ()),
}
"""Quick layers: (label, map metric, overlays) — case density, station coverage, resolution."""
M_PRESET = {key: f"map-preset-{key}" for key in PRESETS}
DROPDOWN_LABELS = {
    "select_all": "全选", "deselect_all": "全不选", "selected_count": "已选 {num_selected} 项",
    "search": "搜索", "clear_search": "清除搜索", "clear_selection": "清除选择",
    "no_options_found": "没有匹配的选项",
}
GRID_LOCALE = {
    "noRowsToShow": "没有数据", "page": "页", "of": "/", "to": "至", "next": "下一页",
    "previous": "上一页", "first": "首页", "last": "末页", "filterOoo": "筛选…",
    "loadingOoo": "加载中…", "pageSizeSelectorLabel": "每页", "more": "更多",
    "nextPage": "下一页", "previousPage": "上一页", "firstPage": "首页", "lastPage": "末页",
    # filter menus (text, number and date filters)
    "selectAll": "（全选）", "searchOoo": "搜索…", "blanks": "（空白）", "noMatches": "无匹配项",
    "equals": "等于", "notEqual": "不等于", "blank": "为空", "notBlank": "不为空",
    "empty": "请选择…", "lessThan": "小于", "greaterThan": "大于",
    "lessThanOrEqual": "小于或等于", "greaterThanOrEqual": "大于或等于", "inRange": "介于",
    "inRangeStart": "从", "inRangeEnd": "到", "contains": "包含", "notContains": "不包含",
    "startsWith": "开头是", "endsWith": "结尾是", "dateFormatOoo": "yyyy-mm-dd",
    "before": "早于", "after": "晚于", "andCondition": "且", "orCondition": "或",
    "applyFilter": "应用", "resetFilter": "重置", "clearFilter": "清除", "cancelFilter": "取消",
    "textFilter": "文本筛选", "numberFilter": "数值筛选", "dateFilter": "日期筛选",
    "filterConditions": "条件", "filterSearch": "搜索", "columns": "列", "filters": "筛选",
    # column menu and aria labels
    "pinColumn": "固定列", "pinLeft": "固定在左侧", "pinRight": "固定在右侧", "noPin": "不固定",
    "autosizeThisColumn": "自动调整此列宽度", "autosizeAllColumns": "自动调整所有列宽度",
    "resetColumns": "重置列", "sortAscending": "升序", "sortDescending": "降序",
    "sortUnSort": "取消排序", "columnFilter": "列筛选", "columnChooser": "选择列",
    "ariaFilterInput": "筛选输入", "ariaFilterValue": "筛选值", "ariaFilteringOperator": "筛选条件",
    "ariaColumnFilter": "列筛选", "ariaSearch": "搜索", "ariaDateFilterInput": "日期筛选输入",
    "ariaFilterList": "筛选列表", "ariaFilterMenuOpen": "打开筛选菜单",
    "ariaFilterFromValue": "起始值", "ariaFilterToValue": "终止值",
}
"""AG Grid's texts in Chinese: paging, the filter menus of every column, the column menu."""


def filter_bar(state: ViewState, options: dict[str, list[str]],
               bounds: tuple[date | None, date | None], *, date_note: str | None = None
               ) -> html.Div:
    """Date range, category, purpose, channel and status filters, set from the URL.

    ``date_note`` is the message under the date picker for the dates in the URL (later changes
    are explained by ``dashboard.shell.explain_dates``).
    """
    f = state.filters

    def multi(id_: str, label: str, values: tuple[str, ...], choices: list) -> html.Div:
        opts = [c if isinstance(c, dict) else {"label": c, "value": c} for c in choices]
        return html.Div(className="filter", children=[
            html.Label(label, htmlFor=id_),
            dcc.Dropdown(id=id_, options=opts, value=list(values), multi=True,
                         placeholder="全部", searchable=True, labels=DROPDOWN_LABELS),
        ])

    return html.Div(className="filter-bar", children=[
        html.Div(className="filter filter-dates", children=[
            html.Label("登记日期", htmlFor=F_DATES),
            # both ends reach the URL together (bothdates), the calendar stays open between
            # the two clicks and opens at the chosen end or the data's last month
            dcc.DatePickerRange(
                id=F_DATES, start_date=f.date_from, end_date=f.date_to,
                min_date_allowed=bounds[0], max_date_allowed=bounds[1],
                initial_visible_month=f.date_to or bounds[1],
                display_format="YYYY-MM-DD", start_date_placeholder_text="开始日期",
                end_date_placeholder_text="结束日期", clearable=True, first_day_of_week=1,
                month_format="YYYY年M月", updatemode="bothdates", stay_open_on_select=True,
            ),
            html.Div(className="date-presets", children=[
                html.Button(label, id=F_PRESET[key], n_clicks=0, className="btn btn-chip",
                            type="button")
                for key, label in PRESETS_ZH.items()]),
            html.Div(date_note, id=F_DATES_NOTE, className="date-note", role="status"),
        ]),
        multi(F_CATEGORY, "内容分类", f.category, options.get("category", [])),
        multi(F_PURPOSE, "信访目的", f.purpose, options.get("purpose", [])),
        multi(F_CHANNEL, "信访渠道", f.channel, options.get("channel", [])),
        multi(F_STATUS, "办理状态", f.status, STATUS_OPTIONS),
        html.Button("清除筛选", id=F_RESET, className="btn btn-light", n_clicks=0),
    ])


def map_panel(state: ViewState, *, basemap: str, metric_labels: dict[str, str],
              show_metric: bool = True, height: str = "520px") -> html.Div:
    """The map: choropleth, overlays, legend, breadcrumb and the unassigned note."""
    spec = basemap_spec(basemap)
    layers: list = []
    if spec:
        layers.append(dl.TileLayer(url=spec["url"], attribution=spec["attribution"],
                                   **({"subdomains": spec["subdomains"]}
                                      if "subdomains" in spec else {})))
    layers += [
        # each layer names its onEachFeature: dash-leaflet's default binds tooltip/popup as HTML
        dl.GeoJSON(id=M_UNCOVERED, data=_empty(), style={"variable": "gridgov.uncoveredStyle"},
                   interactive=False, onEachFeature={"variable": "gridgov.noTooltip"}),
        dl.GeoJSON(id=M_UNITS, data=_empty(), zoomToBounds=False,
                   style={"variable": "gridgov.unitStyle"},
                   hoverStyle={"variable": "gridgov.hoverStyle"},
                   onEachFeature={"variable": "gridgov.unitTooltip"}),
        dl.GeoJSON(id=M_CATCHMENTS, data=_empty(), interactive=False,
                   pointToLayer={"variable": "gridgov.catchment"},
                   onEachFeature={"variable": "gridgov.noTooltip"}),
        dl.GeoJSON(id=M_STATIONS, data=_empty(),
                   pointToLayer={"variable": "gridgov.stationPoint"},
                   onEachFeature={"variable": "gridgov.pointTooltip"}),
        dl.GeoJSON(id=M_POINTS, data=_empty(), pointToLayer={"variable": "gridgov.casePoint"},
                   onEachFeature={"variable": "gridgov.pointTooltip"}),
        dl.GeoJSON(id=M_LABELS, data=_empty(), interactive=False,
                   pointToLayer={"variable": "gridgov.unitLabel"},
                   onEachFeature={"variable": "gridgov.noTooltip"}),
    ]
    metric_choice = html.Div(className="map-control", children=[
        html.Label("地图指标", htmlFor=M_METRIC),
        dcc.Dropdown(id=M_METRIC, value=state.metric, clearable=False, searchable=False,
                     labels=DROPDOWN_LABELS,
                     options=[{"label": metric_labels.get(k, k), "value": k}
                              for k in MAP_METRICS]),
    ], style=None if show_metric else {"display": "none"})
    return html.Div(className="map-panel" if show_metric else "map-panel map-compact", children=[
        html.Nav(id=M_CRUMBS, className="breadcrumb", **{"aria-label": "层级导航"}),
        html.Div(className="map-presets", children=[
            html.Span("快捷图层：", className="muted small"),
            *[html.Button(label, id=M_PRESET[key], n_clicks=0, className="btn btn-chip")
              for key, (label, _m, _o) in PRESETS.items()],
        ]) if show_metric else None,
        html.Div(className="map-controls", children=[
            metric_choice,
            # the grid worker's map always shows the village's open cases: the box says so
            dcc.Checklist(id=M_OVERLAYS, className="overlay-toggles", inline=True,
                          value=list(state.overlays) + (
                              ["points"] if not show_metric and "points" not in state.overlays
                              else []),
                          options=[{"label": OVERLAY_LABELS[o], "value": o,
                                    **({"disabled": True} if o == "points" and not show_metric
                                       else {})} for o in OVERLAYS]),
            dcc.Checklist(id=M_FIXED, className="overlay-toggles", inline=True,
                          value=["fixed"] if state.fixed_breaks else [],
                          options=[{"label": "固定分级", "value": "fixed",
                                    "title": "各页面颜色含义相同，便于跨页面比较"}]),
        ]),
        dcc.Loading(type="circle", delay_show=300, children=html.Div(
            className="map-wrap", children=[
                dl.Map(id=M_MAP, children=layers, center=[23.13, 113.35], zoom=9,
                       style={"height": height}, className="leaflet-plain",
                       preferCanvas=False, attributionControl=bool(spec)),
                html.Details(open=True, className="map-legend", children=[
                    html.Summary("图例", className="legend-toggle"),
                    html.Div(id=M_LEGEND)]),
            ])),
        html.Div(id=M_NOTE, className="map-note"),
    ])


def export_bar(links: dict[str, str], *, enabled: bool = True) -> html.Div:
    """Buttons exporting the filtered case table (Excel, CSV) and a link to the current map.

    The case tables are written in the background (:mod:`dashboard.my_exports`: progress in
    我的导出, the file arrives even after navigating away; the button is disabled while the same
    export runs); the map is quick and stays a plain link to its ``/download/…`` route.
    """
    hint = None if enabled else "请先选择镇街或村居"
    items: list = [html.Span("导出：", className="muted")]
    for kind, (id_, label) in EXPORTS.items():
        if kind in LINK_EXPORTS and enabled:
            items.append(html.A(label, id=id_, href=links[kind], className="btn", download=""))
        elif kind in LINK_EXPORTS:
            items.append(html.Span(label, id=id_, className="btn btn-disabled", title=hint))
        else:
            items.append(html.Button(label, id=id_, n_clicks=0, className="btn", type="button",
                                     disabled=not enabled, title=hint))
    items.append(html.Span("（个人信息已脱敏）", className="muted small"))
    return html.Div(className="export-bar no-print", children=items)


def unit_picker(label: str, options: list[dict], value: str | None = None) -> html.Div:
    """A searchable dropdown to choose the street or village a view is about.

    ``options`` come from :func:`dashboard.access.picker_options`: only units in the account's
    scope, each reading 名称（镇街，区） so two villages of the same name stay apart, and
    searchable by name or code.
    """
    return html.Div(className="picker", children=[
        html.Label(label, htmlFor=PICKER),
        dcc.Dropdown(id=PICKER, options=options, value=value, placeholder="输入名称或代码搜索…",
                     searchable=True, clearable=False, labels=DROPDOWN_LABELS),
    ])


def kpi_cards(items: list[tuple]) -> list[html.Div]:
    """KPI cards from (label, value, note[, comparison]) tuples; a rate's tooltip is its formula.

    The optional comparison is a line such as 同比 +1.2 个百分点 · 环比 −0.3 个百分点.
    """
    from layers.definitions import METRICS

    formulas = {m.label_zh: f"{m.formula_zh}（口径：{m.cohort_zh}）" for m in METRICS.values()}
    cards = []
    for label, value, note, *rest in items:
        children = [
            html.Div(label, className="kpi-label"),
            html.Div(value, className="kpi-value kpi-thin" if value == "样本不足"
                     else "kpi-value"),
            html.Div(note, className="kpi-note"),
        ]
        if rest and rest[0]:
            children.append(html.Div(rest[0], className="kpi-compare"))
        cards.append(html.Div(className="kpi", title=formulas.get(label), children=children))
    return cards


def change_text(changes: dict[str, float | None]) -> str | None:
    """同比 / 环比 in percentage points for a card or a row, or None when neither is known."""
    parts = [f"{zh} {changes[kind]:+.1f} 个百分点".replace("-", "−")
             for kind, zh in (("yoy", "同比"), ("mom", "环比"))
             if changes.get(kind) is not None]
    return " · ".join(parts) or None


def empty_message(text: str = "当前筛选条件下没有案件。请放宽登记日期或其他筛选条件。") -> html.Div:
    """The clear message shown when filters leave nothing."""
    return html.Div(text, className="empty-message", role="status")


def grid(id_: str, frame: pd.DataFrame, columns: list[tuple[str, str]], *,
         height: int = 320, page_size: int | None = 20, row_class_rules: dict | None = None,
         pinned: str | None = None, row_id: str | None = None) -> dag.AgGrid:
    """An ag-grid of ``frame`` showing ``columns`` as (field, Chinese header).

    A ``case_id`` column is a link to the case page (a text link made by the CaseLink
    renderer in assets/, never markup from the data). ``row_id`` names each row by that
    field (e.g. the unit code), so a clicked cell tells the server which row it was.
    """
    defs = [{"field": f, "headerName": h, **({"pinned": "left"} if f == pinned else {}),
             **({"cellRenderer": "CaseLink"} if f == "case_id" else {})}
            for f, h in columns if f in frame]
    options: dict = {"localeText": GRID_LOCALE, "animateRows": False,
                     "suppressCellFocus": True}
    fields = [f for f, _ in columns if f in frame]
    if row_id and row_id in frame:  # rows named by this field (a click says which unit)
        fields += [] if row_id in fields else [row_id]
        options["getRowId"] = {"function": f"params.data.{row_id}"}
    if page_size and len(frame) > page_size:
        options.update(pagination=True, paginationPageSize=page_size,
                       paginationPageSizeSelector=False)
    return dag.AgGrid(
        id=id_, rowData=records(frame, fields),
        columnDefs=defs, defaultColDef={"sortable": True, "resizable": True, "filter": True,
                                        "minWidth": 80},
        columnSize="autoSize", dashGridOptions=options, className="ag-theme-quartz",
        rowClassRules=row_class_rules or {}, style={"height": f"{height}px", "width": "100%"},
    )


def records(frame: pd.DataFrame, fields: list[str] | None = None) -> list[dict]:
    """Rows (of ``fields``, default all columns) as JSON-safe dicts: dates as YYYY-MM-DD, NaN as None.

    Column by column, not through a copy and ``to_dict("records")``: a street view sends
    eight lists, and the row-wise way cost more than building them (cProfile of the callbacks).
    """
    names = list(frame.columns if fields is None else fields)
    columns = []
    for name in names:
        values = frame[name]
        if pd.api.types.is_datetime64_any_dtype(values):
            values = values.dt.strftime("%Y-%m-%d")
        columns.append([_json_safe(v) for v in values.tolist()])
    return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]


def pct(value: object) -> str:
    """Format a 0–1 rate as a percentage, or — when missing."""
    if _missing(value):
        return "—"
    return f"{100 * float(value):.1f}%"


def rate_value(row: dict, rate: str) -> str:
    """A KPI card's rate, or 样本不足 when its denominator is below the minimum.

    Two cases make 0.0 % or 100.0 %: printed large, that reads as a result. The rule is the
    metrics' own (``R_rankable``: the denominator reaches ``min_cases_for_rate``).
    """
    enough = row.get(rate + "_rankable")
    if row.get(rate + "_den") and enough is not None and not bool(enough):
        return "样本不足"
    return pct(row.get(rate))


def num(value: object, digits: int = 0) -> str:
    """Format a number with thousands separators, or — when missing."""
    if _missing(value):
        return "—"
    return f"{float(value):,.{digits}f}"


def _json_safe(value: object) -> object:
    if _missing(value):
        return None
    if hasattr(value, "item"):
        return value.item()
    return value


def _missing(value: object) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    try:
        return isinstance(value, float) and math.isnan(value)
    except TypeError:
        return False


def _empty() -> dict:
    return {"type": "FeatureCollection", "features": []}
