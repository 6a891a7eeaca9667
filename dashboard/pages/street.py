"""Street office view (街道视图): one street's deadlines, work lists, backlog and villages."""

from __future__ import annotations

import dash
import pandas as pd
from dash import Input, Output, State, callback, dcc, html, no_update

from dashboard import access, figures, shell, state
from dashboard import components as C
from dashboard.auth import client_address
from dashboard.warnings_ui import warnings_card
from geo.codes import level_of
from layers import placement, views
from layers.casedata import case_table
from layers.lists import CaseList
from layers.units import children_of, picker_label, unit_of

dash.register_page(__name__, path="/street", name="街道视图",
                   title="街道视图 · 广州市信访网格化治理", order=1)

BODY = "street-body"
WARNINGS = "street-warnings"
PLACEMENT = "street-placement"
PLACE_CASE = "placement-case"
PLACE_VILLAGE = "placement-village"
PLACE_NOTE = "placement-note"
PLACE_SUBMIT = "placement-submit"
PLACE_RESULT = "placement-result"
PLACEMENT_COLUMNS = [
    ("case_id", "信访件编号"), ("registered_at", "登记"), ("address", "地址"),
    ("attach_note", "未落到村居的原因"), ("candidates", "可能的村居"),
]
MAX_NOTE_CHARS = 200
CASE_COLUMNS = [
    ("case_id", "信访件编号"), ("village_name", "村居"), ("registered_at", "登记"),
    ("due", "期限"), ("deadline_text", "剩余/超期"), ("status_zh", "状态"),
    ("category", "内容分类"), ("handling_unit", "承办单位"), ("petitioner_name", "信访人"),
]
WAIT_COLUMNS = [
    ("case_id", "信访件编号"), ("village_name", "村居"), ("waited_days", "已等待（天）"),
    ("due", "期限"), ("deadline_text", "剩余/超期"), ("category", "内容分类"),
    ("petitioner_name", "信访人"),
]
BACKLOG_COLUMNS = [
    ("case_id", "信访件编号"), ("backlog_leader", "包案领导"), ("village_name", "村居"),
    ("waited_days", "列为积案（天）"), ("status_zh", "状态"), ("due", "办理期限"),
    ("deadline_text", "剩余/超期"), ("category", "内容分类"),
]
REPEAT_COLUMNS = [
    ("case_id", "信访件编号"), ("repeat_of", "重复自"), ("village_name", "村居"),
    ("registered_at", "登记"), ("status_zh", "状态"), ("category", "内容分类"),
    ("petitioner_name", "信访人"),
]
ROW_RULES = {
    "row-overdue": "params.data.days_left !== null && params.data.days_left < 0",
    "row-soon": "params.data.urgency === 'soon' && params.data.days_left >= 0",
}
"""Case-list rows tinted red when past their deadline, amber when 临期 (layers.rules)."""


@access.guard_layout
def layout(**params) -> html.Div:
    """Render the street office view, or a street picker when no street is chosen."""
    ctx_ = shell.page_context("street", params)
    store = state.store()
    scope = ctx_["scope"]
    basemap = store.settings.basemap
    if scope is None:
        unit = unit_of(store, ctx_["view"].unit)
        streets = children_of(store, unit.code, level="street")
        return html.Div(className="page page-street", children=[
            shell.page_header("街道视图", f"{unit.name} · 请选择镇街", ctx_),
            html.Div(className="two-col", children=[
                html.Section(className="card", children=[
                    C.unit_picker("选择镇街", access.picker_options(list(streets["code"]))),
                    html.P("或在地图上逐级点击：区 → 镇街。", className="muted"),
                ]),
                html.Section(className="card", children=[
                    C.map_panel(ctx_["view"], basemap=basemap,
                                metric_labels=shell.metric_labels()),
                ]),
            ]),
        ])
    street = unit_of(store, scope)
    return html.Div(className="page page-street", children=[
        shell.page_header("街道视图", f"{street.name} · 期限、积案与待办" + (
            f" · 已选：{unit_of(store, ctx_['view'].unit).name}"
            if ctx_["view"].unit != street.code else ""), ctx_),
        html.Div(className="two-col", children=[
            html.Section(className="card", children=[
                C.map_panel(ctx_["view"], basemap=basemap, metric_labels=shell.metric_labels(),
                            height="460px"),
            ]),
            dcc.Loading(type="dot", delay_show=300, children=html.Div(id=BODY + "-side")),
        ]),
        html.Div(id=WARNINGS),
        dcc.Loading(type="dot", delay_show=300, children=html.Div(id=BODY)),
        *([_placement_card()] if access.scope().can_correct else []),
    ])


@callback(Output(WARNINGS, "children"), Input(C.QUERY, "data"))
def update_street_warnings(query):
    """The street's warnings, red first (thin: layers.warnings.views.warning_list)."""
    from layers.warnings.views import warning_list

    scope = access.resolve_query(query, page="street").scope_code
    if not scope or level_of(scope) != "street":
        return None
    return warnings_card(warning_list(state.store(), scope), title="本街道预警", unit=scope,
                         id_="street-warnings-card")


@callback(Output(BODY + "-side", "children"), Output(BODY, "children"), Input(C.QUERY, "data"))
def update_street(query):
    """Compute the street view (thin: layers.views.street_view)."""
    resolved = access.resolve_query(query, page="street")
    scope, view = resolved.scope_code, resolved.view
    if not scope or level_of(scope) != "street":
        return None, None
    focus = view.unit if view.unit != scope else None  # a village chosen on the map
    sv = views.street_view(state.store(), scope, filters=view.filters, focus=focus)
    n = sv.counts
    if not n.get("cases"):
        return C.empty_message(), None
    side = html.Section(className="card", children=[
        html.Div(className="kpis kpis-compact", children=C.kpi_cards([
            ("未办结", C.num(n["open_cases"]), f"共 {C.num(n['cases'])} 件"),
            ("超期未办结", C.num(n["overdue_open"]), "已过办理期限"),
            ("临期未办结", C.num(n["due_soon"]), "办理期限将到"),
            ("超期未受理", C.num(n["acceptance_overdue"]),
             f"待受理 {C.num(n['acceptance_pending'])}"),
            ("待回访", C.num(n["followup_pending"]), f"其中超期 {C.num(n['followup_overdue'])}"),
            ("待评价", C.num(n["rating_pending"]), "评价期内"),
            ("积案未化解", C.num(n["backlog_open"]), f"已化解 {C.num(n['backlog_resolved'])}"),
        ])),
        dcc.Graph(figure=figures.ageing_figure(sv.ageing), config={"displayModeBar": False}),
        html.H2("各村居未办结件数"),
        C.grid("street-villages", sv.open_by_village,
               [("name", "村居"), ("open_cases", "未办结"), ("overdue_open", "其中超期"),
                ("due_soon", "其中临期")],
               height=260, page_size=None),
    ])
    lists = sv.lists
    body = html.Div(children=[
        html.Div(className="two-col", children=[
            _list_card(lists["overdue"], "street-overdue", CASE_COLUMNS),
            _list_card(lists["due_soon"], "street-due-soon", CASE_COLUMNS),
        ]),
        html.Div(className="two-col", children=[
            _list_card(lists["acceptance"], "street-acceptance", CASE_COLUMNS,
                       note="登记后 15 日内应作出受理或不予受理决定（信访工作条例第二十三条）"),
            _list_card(lists["followup"], "street-followup", WAIT_COLUMNS,
                       note="答复后待回访，期限为答复后若干天（见指标说明）"),
        ]),
        html.Div(className="two-col", children=[
            _backlog_card(lists["backlog_open"], lists["backlog_resolved"]),
            _list_card(lists["rating"], "street-rating", WAIT_COLUMNS,
                       note="答复后评价期内尚未评价"),
        ]),
        _list_card(lists["repeats"], "street-repeats", REPEAT_COLUMNS, rules=None),
        html.Section(className="card", children=[
            html.H2(f"未设村居服务站的村居（{len(sv.villages_without_station)} 个）"),
            html.P("、".join(sv.villages_without_station["name"]) or "全部村居均已设站。",
                   className="station-gaps"),
        ]),
    ])
    return side, body


def _placement_card() -> html.Section:
    """待更正落格: the street's cases its address placed only to the street, and the fix."""
    return html.Section(className="card", id=PLACEMENT + "-card", children=[
        html.H2("待更正落格（按地址仅落到本镇街）"),
        html.P("这些信访件的地址未能确定村居（名称不唯一、与镇街不符或未识别），不在任何网格员的"
               "清单中。请核实后选定村居；更正记入案件时间线和审计记录，以后重新导入也保留。",
               className="muted small"),
        html.Div(id=PLACEMENT),
        html.Div(className="placement-form", children=[
            dcc.Dropdown(id=PLACE_CASE, placeholder="选择信访件", clearable=True),
            dcc.Dropdown(id=PLACE_VILLAGE, placeholder="选择村居（候选在前）", clearable=True),
            dcc.Input(id=PLACE_NOTE, type="text", maxLength=MAX_NOTE_CHARS, debounce=False,
                      placeholder="说明（如：经电话核实）", className="text-input"),
            html.Button("更正落格", id=PLACE_SUBMIT, n_clicks=0, className="btn"),
        ]),
        html.Div(id=PLACE_RESULT, role="status"),
    ])


@callback(Output(PLACEMENT, "children"), Output(PLACE_CASE, "options"),
          Input(C.QUERY, "data"), Input(PLACE_RESULT, "children"))
def update_placement(query, _result):
    """List the street's cases that wait for a village (thin: layers.placement)."""
    street = _correctable_street(query)
    if street is None:
        return None, []
    queue = placement.placement_queue(state.store(), street)
    if not queue.total:
        return html.P("暂无待更正的信访件。", className="muted"), []
    children = [html.P(f"共 {queue.total:,} 件", className="muted small"),
                C.grid("street-placement-grid", queue.rows, PLACEMENT_COLUMNS, height=260,
                       pinned="case_id")]
    if len(queue.rows) < queue.total:
        children.append(html.P(f"显示最早登记的 {len(queue.rows):,} 件。", className="muted small"))
    options = [{"label": case_id, "value": case_id} for case_id in queue.rows["case_id"]]
    return children, options


@callback(Output(PLACE_VILLAGE, "options"), Output(PLACE_VILLAGE, "value"),
          Input(PLACE_CASE, "value"), State(C.QUERY, "data"), prevent_initial_call=True)
def placement_villages(case_id, query):
    """The villages the chosen case may go to: its candidates first, then the street's others."""
    street = _correctable_street(query)
    if street is None or not case_id:
        return [], None
    store = state.store()
    queue = placement.placement_queue(store, street, limit=placement.DEFAULT_LIMIT)
    _require_queued(store, street, case_id)
    codes = placement.village_choices(store, street, case_id, queue)
    first = set(queue.candidates.get(case_id, []))
    options = access.picker_options(codes)
    for option in options:
        if option["value"] in first:
            option["label"] = f"★ {option['label']}（地址候选）"
    return options, None


@callback(Output(PLACE_RESULT, "children"), Input(PLACE_SUBMIT, "n_clicks"),
          State(PLACE_CASE, "value"), State(PLACE_VILLAGE, "value"), State(PLACE_NOTE, "value"),
          State(C.QUERY, "data"), prevent_initial_call=True)
def correct_placement(clicks, case_id, village, note, query):
    """Put one case in a village of this street (checked on the server, audited, an event)."""
    from etl.corrections import CorrectionError, correct_village  # etl only when used
    from geo.storelock import StoreBusyError

    if not clicks:
        return no_update
    street = _correctable_street(query)
    if street is None:
        access.refuse("请先选择镇街。")
    if not case_id or not village:
        return html.Span("请先选择信访件和村居。", className="muted")
    if note is not None and (not isinstance(note, str) or len(note) > MAX_NOTE_CHARS):
        return html.Span(f"说明最多 {MAX_NOTE_CHARS} 字。", className="muted")
    store = state.store()
    _require_queued(store, street, case_id)
    if not isinstance(village, str) or village not in set(
            placement.village_choices(store, street, case_id)):
        access.refuse("所选村居不在本镇街内。", unit_code=str(village)[:15], case_ids=[case_id])
    who = access.account()
    try:
        done = correct_village(store, case_id, village, user=who.username, note=note,
                               actor=who.actor, address=client_address())
    except (CorrectionError, StoreBusyError) as error:
        return html.Span(str(error).split(" / ")[0], className="error-text")
    return html.Span(f"已将 {done.case_id} 落到村居 {picker_label(store, village)}。",
                     className="ok-text", id="placement-done")


def _correctable_street(query) -> str | None:
    """The street of the request (None on the street picker), for an account that may correct.

    Raises
    ------
    dashboard.access.Refused
        The request is outside the session's scope, or its role may not correct (audited).
    """
    resolved = access.resolve_query(query, page="street")
    street = resolved.scope_code
    if not resolved.account.scope.can_correct:
        access.refuse("您的角色无权更正落格。", unit_code=street)
    if not street or level_of(street) != "street":
        return None
    return street


def _require_queued(store, street: str, case_id) -> None:
    """Refuse (audited) a case that is not one of this street's cases waiting for a village."""
    if not isinstance(case_id, str) or len(case_id) > 64:
        raise access.Refused("请求无效", status=400)
    position = case_table(store).position_of(case_id)
    if position < 0 or position not in set(placement.street_level_rows(store, street).tolist()):
        access.refuse("该信访件不在本镇街的待更正清单中。", case_ids=[case_id[:64]])


def _list_card(cases: CaseList, id_: str, columns, *, rules=ROW_RULES, note: str | None = None
               ) -> html.Section:
    shown = len(cases.rows)
    children: list = [html.H2(f"{cases.rule.label_zh}（{cases.total:,} 件）")]
    if note:
        children.append(html.P(note, className="muted small"))
    if shown:
        children.append(C.grid(id_, cases.rows, columns, height=340, row_class_rules=rules,
                               pinned="case_id"))
        if shown < cases.total:
            children.append(html.P(f"显示最紧急的 {shown:,} 件，共 {cases.total:,} 件；全部请导出"
                                   "案件表。", className="muted small"))
    else:
        children.append(html.P("暂无。", className="muted"))
    return html.Section(className="card", id=id_ + "-card", children=children)


def _backlog_card(open_: CaseList, resolved: CaseList) -> html.Section:
    """积案 by 包案领导: open and resolved counts per leader, then the open cases."""
    both = pd.concat([open_.rows.assign(state="未化解"), resolved.rows.assign(state="已化解")])
    if len(both):
        leaders = both["backlog_leader"].fillna("（未明确包案领导）")
        summary = pd.crosstab(leaders, both["state"]).reindex(columns=["未化解", "已化解"],
                                                              fill_value=0)
        summary = summary.sort_values(["未化解", "已化解"], ascending=False).reset_index()
        summary.columns = ["backlog_leader", "open", "resolved"]
    else:
        summary = pd.DataFrame(columns=["backlog_leader", "open", "resolved"])
    children: list = [
        html.H2(f"积案及包案领导（未化解 {open_.total:,} 件，已化解 {resolved.total:,} 件）"),
    ]
    if len(summary):
        children.append(C.grid("street-backlog-leaders", summary,
                               [("backlog_leader", "包案领导"), ("open", "未化解"),
                                ("resolved", "已化解")], height=180, page_size=None))
    if len(open_.rows):
        children.append(C.grid("street-backlog", open_.rows, BACKLOG_COLUMNS, height=260,
                               row_class_rules=ROW_RULES, pinned="case_id"))
    elif not len(summary):
        children.append(html.P("暂无积案。", className="muted"))
    return html.Section(className="card", id="street-backlog-card", children=children)
