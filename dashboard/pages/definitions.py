"""指标说明 (metric definitions): the same texts as docs/metrics.md, from layers.definitions.

Every number on the dashboard links its meaning here, so a leader reading 按期办结率 sees
the formula, the cohort and the source the figure was computed with.
"""

from __future__ import annotations

import dash
from dash import html

from layers.definitions import METRICS

dash.register_page(__name__, path="/definitions", name="指标说明",
                   title="指标说明 · 广州市信访网格化治理", order=3)

TABLE = "definitions-table"


def layout(**_params) -> html.Div:
    """Render every metric's label, formula, cohort, unit and source."""
    header = html.Tr([html.Th(h) for h in ("指标", "计算公式", "统计口径", "单位", "依据")])
    rows = [
        html.Tr(id=f"def-{m.key}", children=[
            html.Td([html.Strong(m.label_zh), html.Br(), html.Span(m.label_en, className="muted")]),
            html.Td(m.formula_zh), html.Td(m.cohort_zh), html.Td(m.unit), html.Td(m.source),
        ])
        for m in METRICS.values()
    ]
    return html.Div(className="page page-definitions", children=[
        html.H1("指标说明"),
        html.P("各指标的定义与 docs/metrics.md 一致；标 [I] 者为在官方口径缺失时的设计选择。"
               "比率均以分子、分母汇总计算，不取平均；统计期未设结束日期时截至数据截止日。",
               className="muted"),
        html.Section(className="card", children=[
            html.Table(id=TABLE, className="definitions", children=[html.Thead(header),
                                                                    html.Tbody(rows)]),
        ]),
    ])
