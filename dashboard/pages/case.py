"""Case page (案件详情): one case's content, place, deadlines and timeline.

Opened from every list row, phone card and map point; the browser's back button returns to
where it was opened (navigation is client-side, the list's URL is kept in the history).
Everything shown is text (Dash components escape it); personal data is masked.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import unquote

import dash
from dash import dcc, html

from dashboard import state
from dashboard.query import ViewState, shown
from layers.casepage import CaseDetail, case_detail

dash.register_page(__name__, path_template="/case/<case_id>", name="案件详情",
                   title="案件详情 · 广州市信访网格化治理", order=9)

MAX_ID_LENGTH = 64


def layout(case_id: str = "", **_params) -> html.Div:
    """Render the case page of ``case_id`` (percent-decoded), or a clear message.

    The id comes from the address bar: one no store can look up (empty, too long, a NUL or a
    lone surrogate, which PostgreSQL text cannot hold) is refused before the store is asked.
    """
    case_id = unquote(case_id) if isinstance(case_id, str) else ""
    if not case_id or len(case_id) > MAX_ID_LENGTH or any(
            ch == "\x00" or unicodedata.category(ch) == "Cs" for ch in case_id):
        return _missing(shown(case_id, MAX_ID_LENGTH))
    detail = case_detail(state.store(), case_id)
    if detail is None:
        return _missing(case_id)
    return html.Div(className="page page-case", children=[
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
            ]),
        ]),
    ])


def _table(values: dict[str, str], id_: str) -> html.Table:
    return html.Table(className="kv", id=id_, children=html.Tbody([
        html.Tr([html.Th(label), html.Td(value)]) for label, value in values.items()]))


def _unit_links(detail: CaseDetail) -> list:
    links: list = []
    village, street = detail.unit_codes.get("village"), detail.unit_codes.get("street")
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
        dcc.Link("返回领导视图", href="/"),
    ])
