"""The page for an address no view has (Dash pages shows the module named not_found_404)."""

from __future__ import annotations

import dash
from dash import dcc, html

dash.register_page(__name__, path="/404", name="未找到页面", title="未找到页面 · 广州市信访网格化治理",
                   order=99)


def layout(**_params) -> html.Div:
    """Say that the address leads nowhere, and where to go instead."""
    return html.Div(className="page page-missing", children=[
        html.H1("未找到页面"),
        html.Div("该网址没有对应的页面。请从导航栏选择视图。", className="empty-message",
                 role="status"),
        dcc.Link("返回领导视图", href="/"),
    ])
