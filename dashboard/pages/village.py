"""Grid worker view (网格员视图): one village on a phone — what is open and what to do today."""

from __future__ import annotations

import dash
from dash import Input, Output, callback, dcc, html

from dashboard import access, shell, state
from dashboard import components as C
from dashboard.warnings_ui import case_href, warnings_card
from geo.codes import level_of
from layers import views
from layers.lists import CaseList
from layers.units import children_of, unit_of

dash.register_page(__name__, path="/village", name="网格员视图",
                   title="网格员视图 · 广州市信访网格化治理", order=2)

BODY = "village-body"
WARNINGS = "village-warnings"
SIDE = "village-side"
FIRST = 10
"""Open cases listed at once; the rest fold away so the map and to-dos stay in reach."""


@access.guard_layout
def layout(**params) -> html.Div:
    """Render the grid worker view, or a village picker when no village is chosen."""
    ctx_ = shell.page_context("village", params)
    store = state.store()
    scope = ctx_["scope"]
    basemap = store.settings.basemap
    if scope is None:
        unit = unit_of(store, ctx_["view"].unit)
        villages = children_of(store, unit.code, level="village")
        return html.Div(className="page page-village", children=[
            shell.page_header("网格员视图", f"{unit.name} · 请选择村居", ctx_),
            html.Section(className="card", children=[
                C.unit_picker("选择村居（社区/村）", access.picker_options(list(villages["code"]))),
                html.P("或在地图上逐级点击：区 → 镇街 → 村居。", className="muted"),
            ]),
            html.Section(className="card", children=[
                C.map_panel(ctx_["view"], basemap=basemap, metric_labels=shell.metric_labels(),
                            height="360px"),
            ]),
        ])
    village = unit_of(store, scope)
    return html.Div(className="page page-village", children=[
        shell.page_header("网格员视图", village.name, ctx_),
        html.Div(id=WARNINGS, className="village-warnings"),
        html.Div(className="village-grid", children=[
            dcc.Loading(type="dot", delay_show=300, children=html.Div(id=BODY)),
            html.Div(children=[
                html.Section(className="card", children=[
                    html.H2("案件位置"),
                    C.map_panel(ctx_["view"], basemap=basemap,
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
    resolved = access.resolve_query(query, page="village")
    scope, view = resolved.scope_code, resolved.view
    if not scope or level_of(scope) not in ("village", "grid"):
        return None, None
    vv = views.village_view(state.store(), scope, filters=view.filters)
    n = vv.counts
    if not n.get("cases"):
        return C.empty_message(), None
    opened = vv.lists["open"]
    rows = opened.rows.to_dict("records")
    listing: list = [html.Ul(className="case-list", children=[_case_item(r) for r in rows[:FIRST]])]
    if len(rows) > FIRST:
        listing.append(html.Details(className="more", children=[
            html.Summary(f"其余 {opened.total - FIRST} 件"),
            html.Ul(className="case-list", children=[_case_item(r) for r in rows[FIRST:]]),
            *_rest_in_export(opened, len(rows)),
        ]))
    else:
        listing += _rest_in_export(opened, len(rows))
    body = html.Div(children=[
        html.Div(className="kpis kpis-compact", children=C.kpi_cards([
            ("未办结", C.num(n["open_cases"]), f"截至 {vv.as_of:%m-%d}"),
            ("已超期", C.num(n["overdue_open"] + n["acceptance_overdue"]),
             "办理或受理超期（红色）"),
            ("临期", C.num(n["due_soon"] + n["acceptance_due_soon"]), "期限将到（橙色）"),
            ("待回访", C.num(n["followup_pending"]), "已答复未回访"),
        ])),
        html.Section(className="card", children=[
            html.H2(f"未办结案件（{opened.total} 件，最紧急的在前）"),
            *(listing if opened.total else [html.P("没有未办结案件。", className="muted")]),
        ]),
    ])
    side = html.Div(children=[
        *([_waiting_card(vv.lists["acceptance"], "登记", "village-acceptance")]
          if vv.lists["acceptance"].total else []),
        _waiting_card(vv.lists["followup"], "答复", "village-followup"),
        _waiting_card(vv.lists["rating"], "答复", "village-rating"),
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


@callback(Output(WARNINGS, "children"), Input(C.QUERY, "data"))
def update_village_warnings(query):
    """The grid worker's own-village warnings, at the top (thin: layers.warnings.views)."""
    from layers.warnings.views import warning_list

    scope = access.resolve_query(query, page="village").scope_code
    if not scope or level_of(scope) not in ("village", "grid"):
        return None
    return warnings_card(warning_list(state.store(), scope), title="本村居预警", unit=scope,
                         id_="village-warnings-card", limit=5)


def _case_item(row: dict) -> html.Li:
    due = row.get("due")
    due_text = f"{due:%Y-%m-%d}" if due is not None else "未定"
    return html.Li(className=f"case-item urgency-{row['urgency']}", children=dcc.Link(
        href=case_href(row["case_id"]), className="case-card-link", children=[
            html.Div(className="case-top", children=[
                html.Span(row["case_id"], className="case-id"),
                html.Span(row["urgency_zh"], className="case-badge"),
            ]),
            html.Div(f"{row.get('category') or '未分类'} · {row.get('status_zh') or ''}",
                     className="case-meta"),
            html.Div(f"期限 {due_text} {row.get('deadline_text') or ''}", className="case-due"),
        ]))


def _rest_in_export(cases: CaseList, shown: int) -> list:
    """The line under a list cut at its row limit (views.VILLAGE_ROWS): where the rest are."""
    if cases.total <= shown:
        return []
    return [html.P(f"以上为最紧急的 {shown} 件，另有 {cases.total - shown} 件；全部请导出案件表"
                   "查看。", className="muted small list-rest")]


def _waiting_card(cases: CaseList, since: str, id_: str) -> html.Section:
    items = []
    for row in cases.rows.head(FIRST).to_dict("records"):
        waited = row.get("waited_days")
        text = (f" {row.get('category') or ''} · {since}后 {waited} 天 · {row['deadline_text']}"
                if waited is not None else f" {row.get('category') or ''} · {row['deadline_text']}")
        items.append(html.Li([dcc.Link(row["case_id"], href=case_href(row["case_id"]),
                                       className="case-id"),
                              html.Span(text, className="muted")]))
    shown = min(len(cases.rows), FIRST)
    more = [html.Li(f"……另有 {cases.total - shown} 件（可导出案件表查看）", className="muted")] \
        if cases.total > shown else []
    return html.Section(className="card", id=id_, children=[
        html.H2(f"{cases.rule.label_zh}（{cases.total} 件）"),
        html.Ul(className="simple-list", children=items + more) if items
        else html.P("暂无。", className="muted"),
    ])
