"""Street office view (街道视图): one street's backlog, ageing and what is about to go overdue."""

from __future__ import annotations

import dash
from dash import Input, Output, callback, dcc, html

from dashboard import components as C
from dashboard import figures, shell, state
from dashboard.query import ViewState
from geo.codes import level_of
from layers import views

dash.register_page(__name__, path="/street", name="街道视图",
                   title="街道视图 · 广州市信访网格化治理", order=1)

BODY = "street-body"
CASE_COLUMNS = [
    ("case_id", "信访件编号"), ("village_name", "村居"), ("registered_at", "登记"),
    ("due_at", "办理期限"), ("days_left", "剩余天数（负为超期）"), ("days_open", "已登记天数"),
    ("status_zh", "状态"), ("category", "内容分类"), ("handling_unit", "承办单位"),
    ("petitioner_name", "信访人"),
]
ROW_RULES = {
    "row-overdue": "params.data.days_left < 0",
    "row-soon": f"params.data.days_left >= 0 && params.data.days_left < {views.DUE_SOON_DAYS}",
}
"""Case-list rows tinted red when overdue, orange when due within DUE_SOON_DAYS (7 days)."""


def layout(**params) -> html.Div:
    """Render the street office view, or a street picker when no street is chosen."""
    ctx_ = shell.page_context("street", params)
    engine = state.engine()
    scope = ctx_["scope"]
    if scope is None:
        unit = views.unit_of(engine, ctx_["view"].unit)
        streets = views.children_of(engine, unit.code, level="street")
        return html.Div(className="page page-street", children=[
            shell.page_header("街道视图", f"{unit.name} · 请选择镇街", ctx_),
            html.Div(className="two-col", children=[
                html.Section(className="card", children=[
                    C.unit_picker("选择镇街", streets),
                    html.P("或在地图上逐级点击：区 → 镇街。", className="muted"),
                ]),
                html.Section(className="card", children=[
                    C.map_panel(ctx_["view"], basemap=state.settings().basemap,
                                metric_labels=shell.metric_labels()),
                ]),
            ]),
        ])
    street = views.unit_of(engine, scope)
    return html.Div(className="page page-street", children=[
        shell.page_header("街道视图", f"{street.name} · 积案、超期与临期", ctx_),
        html.Div(className="two-col", children=[
            html.Section(className="card", children=[
                C.map_panel(ctx_["view"], basemap=state.settings().basemap,
                            metric_labels=shell.metric_labels(), height="460px"),
            ]),
            dcc.Loading(type="dot", delay_show=300, children=html.Div(id=BODY + "-side")),
        ]),
        dcc.Loading(type="dot", delay_show=300, children=html.Div(id=BODY)),
    ])


@callback(Output(BODY + "-side", "children"), Output(BODY, "children"), Input(C.QUERY, "data"))
def update_street(query):
    """Compute the street view (thin: layers.views.street_view)."""
    scope = query.get("scope")
    if not scope or level_of(scope) != "street":
        return None, None
    view = ViewState.from_params(query["search"])
    sv = views.street_view(state.engine(), scope, filters=view.filters,
                           settings=state.settings())
    if sv.total_cases == 0:
        return C.empty_message(), None
    open_total = int(sv.open_by_village["open_cases"].sum())
    side = html.Section(className="card", children=[
        html.Div(className="kpis kpis-compact", children=C.kpi_cards([
            ("未办结", C.num(open_total), f"共 {sv.total_cases:,} 件"),
            ("超期未办结", C.num(len(sv.overdue)), "已过办理期限"),
            ("7日内到期", C.num(len(sv.due_soon)), "需优先处理"),
            ("积案", C.num(len(sv.backlog)), "含包案领导"),
        ])),
        dcc.Graph(figure=figures.ageing_figure(sv.ageing), config={"displayModeBar": False}),
        html.H2("各村居未办结件数"),
        C.grid("street-villages", sv.open_by_village,
               [("name", "村居"), ("open_cases", "未办结"), ("overdue_open", "其中超期")],
               height=260, page_size=None),
    ])
    body = html.Div(children=[
        html.Div(className="two-col", children=[
            _list_card("超期未办结", "street-overdue", sv.overdue, ROW_RULES),
            _list_card("7日内到期", "street-due-soon", sv.due_soon, ROW_RULES),
        ]),
        html.Div(className="two-col", children=[
            _list_card("积案及包案领导", "street-backlog", sv.backlog, ROW_RULES,
                       columns=[("case_id", "信访件编号"), ("backlog_leader", "包案领导"),
                                ("village_name", "村居"), ("status_zh", "状态"),
                                ("due_at", "办理期限"), ("days_open", "已登记天数"),
                                ("category", "内容分类")]),
            _list_card("重复信访", "street-repeats", sv.repeats, None,
                       columns=[("case_id", "信访件编号"), ("repeat_of", "重复自"),
                                ("village_name", "村居"), ("registered_at", "登记"),
                                ("status_zh", "状态"), ("category", "内容分类"),
                                ("petitioner_name", "信访人")]),
        ]),
        html.Section(className="card", children=[
            html.H2(f"未设村居服务站的村居（{len(sv.villages_without_station)} 个）"),
            html.P("、".join(sv.villages_without_station["name"]) or "全部村居均已设站。",
                   className="station-gaps"),
        ]),
    ])
    return side, body


def _list_card(title, id_, frame, rules, columns=None) -> html.Section:
    return html.Section(className="card", children=[
        html.H2(f"{title}（{len(frame):,} 件）"),
        C.grid(id_, frame, columns or CASE_COLUMNS, height=340, row_class_rules=rules,
               pinned="case_id") if len(frame) else html.P("暂无。", className="muted"),
    ])
