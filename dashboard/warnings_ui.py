"""Small warning components the views share: a card of warnings, a red/yellow count table.

Everything from data (reasons, names, case ids) is a Dash text child, never markup. Each
warning links to the 预警 page (its detail and cases); case ids link to the case pages.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

import pandas as pd
from dash import dcc, html

WARNINGS_PATH = "/warnings"


def warnings_href(unit: str | None = None, warning_id: str | None = None) -> str:
    """The 预警 page of a unit, optionally opened on one warning."""
    pairs = [(k, v) for k, v in (("unit", unit), ("id", warning_id)) if v]
    return WARNINGS_PATH + ("?" + urlencode(pairs) if pairs else "")


def case_href(case_id: str) -> str:
    """The case page of a case (the id URL-encoded: ids come from data)."""
    return "/case/" + quote(str(case_id), safe="")


def warning_items(frame: pd.DataFrame, *, unit: str, limit: int = 8) -> list:
    """Warnings as a compact list: level badge, rule, reason; each opens its detail."""
    items = []
    for row in frame.head(limit).to_dict("records"):
        items.append(html.Li(className=f"warn-item warn-{row['level']}", children=dcc.Link(
            href=warnings_href(unit, row["id"]), className="warn-link", children=[
                html.Span(row["level_zh"], className=f"warn-badge warn-badge-{row['level']}"),
                html.Span(row["rule_zh"], className="warn-rule"),
                html.Span(row["unit_name"] or "", className="muted small"),
                html.Div(row["reason"], className="warn-reason"),
            ])))
    return items


def warnings_card(frame: pd.DataFrame, *, title: str, unit: str, id_: str,
                  limit: int = 8) -> html.Section:
    """A card of a unit's warnings (red first), with a link to all of them."""
    red = int((frame["level"] == "red").sum()) if len(frame) else 0
    yellow = int((frame["level"] == "yellow").sum()) if len(frame) else 0
    children: list = [
        html.Div(className="card-head", children=[
            html.H2(f"{title}（红 {red} · 黄 {yellow}）"),
            dcc.Link("全部预警 ›", href=warnings_href(unit), className="small"),
        ]),
    ]
    if len(frame):
        children.append(html.Ul(className="warn-list", children=warning_items(
            frame, unit=unit, limit=limit)))
        if len(frame) > limit:
            children.append(html.P(f"另有 {len(frame) - limit} 条，见预警页。",
                                   className="muted small"))
    else:
        children.append(html.P("暂无预警。", className="muted"))
    return html.Section(className="card warn-card", id=id_, children=children)


def counts_table(counts: pd.DataFrame, *, id_: str) -> html.Table:
    """Red / yellow open warnings per unit, each row linking to that unit's 预警 page."""
    header = html.Tr([html.Th("单位"), html.Th("红色预警"), html.Th("黄色预警")])
    rows = [html.Tr([
        html.Td(dcc.Link(r["name"] or r["code"], href=warnings_href(r["code"]))),
        html.Td(str(r["red"]), className="warn-count-red" if r["red"] else None),
        html.Td(str(r["yellow"]), className="warn-count-yellow" if r["yellow"] else None),
    ]) for r in counts.to_dict("records")]
    return html.Table(id=id_, className="kv warn-counts",
                      children=[html.Thead(header), html.Tbody(rows)])
