"""Case page (案件详情): one case's content, place, deadlines and timeline.

Opened from every list row, phone card and map point; the browser's back button returns to
where it was opened (navigation is client-side, the list's URL is kept in the history).
Everything shown is text (Dash components escape it); personal data is masked.

Only cases in the account's scope open (:func:`dashboard.access.require_case`: another case is
refused and the refusal audited); every opening is audited. 网格员 and 镇街 may reveal the
petitioner's contact of the case on screen for a stated reason (回访, 约访, 核实): the reveal
callback checks role, scope and reason on the server, writes the audit row and reads the
contact in one transaction, and sends it to this page only (:func:`dashboard.access.reveal`).
"""

from __future__ import annotations

import unicodedata
from urllib.parse import unquote

import dash
from dash import Input, Output, State, callback, dcc, html, no_update

from dashboard import access, state
from dashboard.query import ViewState, shown
from geo.vocab import REVEAL_REASONS
from layers.casepage import CaseDetail, case_detail

dash.register_page(__name__, path_template="/case/<case_id>", name="案件详情",
                   title="案件详情 · 广州市信访网格化治理", order=9)

MAX_ID_LENGTH = 64
CASE = "case-current"
REVEAL_REASON = "case-reveal-reason"
REVEAL_BUTTON = "case-reveal"
REVEAL_RESULT = "case-reveal-result"


@access.guard_layout
def layout(case_id: str = "", **_params) -> html.Div:
    """Render the case page of ``case_id`` (percent-decoded), or a clear message.

    The id comes from the address bar: one no store can look up (empty, too long, a NUL or a
    lone surrogate, which PostgreSQL text cannot hold) is refused before the store is asked;
    a case outside the account's scope is refused (audited).
    """
    case_id = unquote(case_id) if isinstance(case_id, str) else ""
    if not case_id or len(case_id) > MAX_ID_LENGTH or any(
            ch == "\x00" or unicodedata.category(ch) == "Cs" for ch in case_id):
        return _missing(shown(case_id, MAX_ID_LENGTH))
    scope = access.scope()
    if not scope.sees_data:
        raise access.Refused("管理员账户不查看案件数据。")
    if not access.require_case(case_id):
        return _missing(case_id)
    detail = case_detail(state.store(), case_id)
    if detail is None:
        return _missing(case_id)
    access.record("view", case_ids=[case_id], detail="案件详情")
    return html.Div(className="page page-case", children=[
        dcc.Store(id=CASE, data=detail.case_id),
        html.Div(className="page-title", children=[
            html.H1(["案件 ", html.Span(detail.case_id, className="case-id", id="case-id")]),
            html.Span(detail.status_zh, className="badge badge-status"),
            html.Span(detail.urgency_zh, className=f"badge urgency-badge-{detail.urgency}"),
        ]),
        html.Nav(className="case-links", children=_unit_links(detail)),
        html.Div(className="two-col", children=[
            html.Div(children=[
                html.Section(className="card", children=[
                    html.H2("信访诉求"),
                    html.P(detail.description or "（无内容摘要）", className="case-text",
                           id="case-description"),
                ]),
                html.Section(className="card", children=[
                    html.H2("期限"),
                    html.Ul(className="deadline-list", id="case-deadlines", children=[
                        html.Li(className=f"deadline deadline-{d.urgency}", children=[
                            html.Span(d.label, className="deadline-label"),
                            html.Span(f"{d.due:%Y-%m-%d}" if d.due else "", className="muted"),
                            html.Span(d.state, className="deadline-state"),
                            html.Span(d.text, className="deadline-text"),
                        ]) for d in detail.deadlines
                    ] or [html.Li("暂无期限信息。", className="muted")]),
                ]),
                html.Section(className="card", children=[
                    html.H2("流转记录"),
                    html.Ol(className="timeline", id="case-timeline", children=[
                        html.Li(className=f"timeline-item event-{e.kind}", children=[
                            html.Span(f"{e.at:%Y-%m-%d %H:%M}", className="timeline-at"),
                            html.Span(e.label, className="timeline-label"),
                            html.Span(e.detail, className="timeline-detail"),
                            html.Span(e.source, className="muted small"),
                        ]) for e in detail.timeline
                    ]),
                ]),
            ]),
            html.Div(children=[
                html.Section(className="card", children=[
                    html.H2("基本信息"),
                    _table(detail.fields, "case-fields"),
                ]),
                html.Section(className="card", children=[
                    html.H2("问题属地"),
                    _table(detail.place, "case-place"),
                ]),
                html.P(f"期限按数据截止时间 {detail.as_of:%Y-%m-%d %H:%M} 判断；"
                       "信访人姓名、电话已脱敏。", className="muted small"),
                *([_reveal_card()] if scope.can_reveal else []),
            ]),
        ]),
    ])


@callback(Output(REVEAL_RESULT, "children"), Input(REVEAL_BUTTON, "n_clicks"),
          State(REVEAL_REASON, "value"), State(CASE, "data"), prevent_initial_call=True)
def reveal_contact(clicks, reason, case_id):
    """Show this case's contact for the chosen reason (checked and audited on the server)."""
    if not clicks:
        return no_update
    if reason not in REVEAL_REASONS:
        return html.Span("请先选择查看理由（回访、约访或核实）。", className="muted")
    if not isinstance(case_id, str) or not case_id or len(case_id) > MAX_ID_LENGTH:
        raise access.Refused("请求无效", status=400)
    contact = access.reveal(case_id, reason)
    return html.Div(className="reveal-result", children=[
        html.Div(f"信访人：{contact.name or '（未登记）'}", id="reveal-name"),
        html.Div(f"联系电话：{contact.phone or '（未登记）'}", id="reveal-phone"),
        html.Div(f"已记录本次查看（理由：{contact.reason}）。请勿转告被反映人或无关人员。",
                 className="muted small"),
    ])


def _reveal_card() -> html.Section:
    """Reveal the petitioner's contact of this case, for a stated reason (网格员, 镇街)."""
    return html.Section(className="card", id="case-reveal-card", children=[
        html.H2("联系信访人"),
        html.P("仅在回访、约访或核实时查看；每次查看均记录在审计中。", className="muted small"),
        html.Div(className="reveal-box", children=[
            dcc.RadioItems(id=REVEAL_REASON, inline=True, className="radio-inline",
                           options=[{"label": zh, "value": key}
                                    for key, zh in REVEAL_REASONS.items()]),
            html.Button("查看联系方式", id=REVEAL_BUTTON, n_clicks=0, className="btn"),
        ]),
        html.Div(id=REVEAL_RESULT),
    ])


def _table(values: dict[str, str], id_: str) -> html.Table:
    return html.Table(className="kv", id=id_, children=html.Tbody([
        html.Tr([html.Th(label), html.Td(value)]) for label, value in values.items()]))


def _unit_links(detail: CaseDetail) -> list:
    links: list = []
    scope = access.scope()
    village, street = detail.unit_codes.get("village"), detail.unit_codes.get("street")
    village = village if scope.allows_unit(village) else None
    street = street if scope.allows_unit(street) else None
    if village:
        links.append(dcc.Link("所在村居（网格员视图）",
                              href="/village" + ViewState(unit=village).to_search()))
    if street:
        links.append(dcc.Link("所在镇街（街道视图）",
                              href="/street" + ViewState(unit=street).to_search()))
    return links


def _missing(case_id: str) -> html.Div:
    return html.Div(className="page page-case", children=[
        html.H1("案件详情"),
        html.Div(f"未找到信访件编号为“{case_id}”的案件。请核对编号，或从列表中打开。",
                 className="empty-message", role="status"),
        dcc.Link("返回我的辖区", href=access.landing_path(access.account())),
    ])
