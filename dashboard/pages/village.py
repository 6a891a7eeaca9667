"""Grid worker view (网格员视图): one village on a phone — what is open and what to do today."""

from __future__ import annotations

import dash
from dash import Input, Output, callback, dcc, html

from dashboard import components as C
from dashboard import shell, state
from dashboard.query import ViewState
from geo.codes import level_of
from layers import views

dash.register_page(__name__, path="/village", name="网格员视图",
                   title="网格员视图 · 广州市信访网格化治理", order=2)

BODY = "village-body"
SIDE = "village-side"
FIRST = 10
"""Open cases listed at once; the rest fold away so the map and to-dos stay in reach."""
URGENCY_ZH = {"overdue": "已超期", "soon": "7日内到期", "ok": "办理中"}


def layout(**params) -> html.Div:
    """Render the grid worker view, or a village picker when no village is chosen."""
    ctx_ = shell.page_context("village", params)
    engine = state.engine()
    scope = ctx_["scope"]
    settings = state.settings()
    if scope is None:
        unit = views.unit_of(engine, ctx_["view"].unit)
        villages = views.children_of(engine, unit.code, level="village")
        return html.Div(className="page page-village", children=[
            shell.page_header("网格员视图", f"{unit.name} · 请选择村居", ctx_),
            html.Section(className="card", children=[
                C.unit_picker("选择村居（社区/村）", villages),
                html.P("或在地图上逐级点击：区 → 镇街 → 村居。", className="muted"),
            ]),
            html.Section(className="card", children=[
                C.map_panel(ctx_["view"], basemap=settings.basemap,
                            metric_labels=shell.metric_labels(), height="360px"),
            ]),
        ])
    village = views.unit_of(engine, scope)
    return html.Div(className="page page-village", children=[
        shell.page_header("网格员视图", village.name, ctx_),
        html.Div(className="village-grid", children=[
            dcc.Loading(type="dot", delay_show=300, children=html.Div(id=BODY)),
            html.Div(children=[
                html.Section(className="card", children=[
                    html.H2("案件位置"),
                    C.map_panel(ctx_["view"], basemap=settings.basemap,
                                metric_labels=shell.metric_labels(), show_metric=False,
                                height="320px"),
                ]),
                dcc.Loading(type="dot", delay_show=300, children=html.Div(id=SIDE)),
            ]),
        ]),
    ])


@callback(Output(BODY, "children"), Output(SIDE, "children"), Input(C.QUERY, "data"))
def update_village(query):
    """Compute the grid worker view (thin: layers.views.village_view)."""
    scope = query.get("scope")
    if not scope or level_of(scope) != "village":
        return None, None
    view = ViewState.from_params(query["search"])
    vv = views.village_view(state.engine(), scope, filters=view.filters,
                            settings=state.settings())
    if vv.total_cases == 0:
        return C.empty_message(), None
    opened = vv.open_cases
    counts = opened["urgency"].value_counts()
    rows = opened.head(300).to_dict("records")
    listing: list = [html.Ul(className="case-list", children=[_case_item(r) for r in rows[:FIRST]])]
    if len(rows) > FIRST:
        listing.append(html.Details(className="more", children=[
            html.Summary(f"其余 {len(opened) - FIRST} 件"),
            html.Ul(className="case-list", children=[_case_item(r) for r in rows[FIRST:]]),
        ]))
    body = html.Div(children=[
        html.Div(className="kpis kpis-compact", children=C.kpi_cards([
            ("未办结", C.num(len(opened)), f"截至 {vv.as_of:%m-%d}"),
            ("已超期", C.num(counts.get("overdue", 0)), "红色"),
            ("7日内到期", C.num(counts.get("soon", 0)), "橙色"),
            ("待回访", C.num(len(vv.followups_pending)), "已答复未回访"),
        ])),
        html.Section(className="card", children=[
            html.H2(f"未办结案件（{len(opened)} 件，按办理期限排序）"),
            *(listing if len(opened) else [html.P("没有未办结案件。", className="muted")]),
        ]),
    ])
    side = html.Div(children=[
        html.Section(className="card", children=[
            html.H2(f"待回访（{len(vv.followups_pending)} 件）"),
            _simple_list(vv.followups_pending, "replied_at", "答复于"),
        ]),
        html.Section(className="card", children=[
            html.H2(f"待评价（{len(vv.ratings_pending)} 件）"),
            _simple_list(vv.ratings_pending, "replied_at", "答复于"),
        ]),
        html.Section(className="card", children=[
            html.H2("最近的服务站点"),
            html.Ul(className="station-list", children=[
                html.Li([html.Span(r["name"], className="station-name"),
                         html.Span(f"{r['type_zh']} · {int(r['distance_m']):,} 米",
                                   className="muted")])
                for r in vv.nearest_stations.to_dict("records")
            ]) if len(vv.nearest_stations) else html.P("暂无站点数据。", className="muted"),
        ]),
    ])
    return body, side


def _case_item(row: dict) -> html.Li:
    due = row.get("due_at")
    due_text = f"{due:%Y-%m-%d}" if due is not None and str(due) != "NaT" else "未定"
    left = row.get("days_left")
    left_text = "" if left is None or left != left else (
        f"超期 {int(-left)} 天" if left < 0 else f"剩 {int(left)} 天")
    return html.Li(className=f"case-item urgency-{row['urgency']}", children=[
        html.Div(className="case-top", children=[
            html.Span(row["case_id"], className="case-id"),
            html.Span(URGENCY_ZH.get(row["urgency"], ""), className="case-badge"),
        ]),
        html.Div(f"{row.get('category') or '未分类'} · {row.get('status_zh') or ''}",
                 className="case-meta"),
        html.Div(f"期限 {due_text} {left_text}", className="case-due"),
    ])


def _simple_list(frame, column: str, label: str):
    if not len(frame):
        return html.P("暂无。", className="muted")
    items = []
    for row in frame.head(FIRST).to_dict("records"):
        stamp = row.get(column)
        when = f"{stamp:%Y-%m-%d}" if stamp is not None and str(stamp) != "NaT" else ""
        items.append(html.Li([html.Span(row["case_id"], className="case-id"),
                              html.Span(f" {row.get('category') or ''} · {label} {when}",
                                        className="muted")]))
    more = [html.Li(f"……另有 {len(frame) - FIRST} 件（可导出案件表查看）", className="muted")] \
        if len(frame) > FIRST else []
    return html.Ul(className="simple-list", children=items + more)
