"""指标说明 (metric definitions): the same texts as docs/metrics.md, from layers.definitions.

Every number on the dashboard links its meaning here, so a leader reading 按期办结率 sees
the formula, the cohort and the source the figure was computed with.
"""

from __future__ import annotations

import dash
from dash import html

from dashboard import state
from geo.vocab import WARNING_LEVELS
from layers.definitions import METRICS
from layers.warnings.definitions import RULES, microscope_texts, rule_text

dash.register_page(__name__, path="/definitions", name="指标说明",
                   title="指标说明 · 广州市信访网格化治理", order=3)

TABLE = "definitions-table"
WARNING_TABLE = "definitions-warnings"


def layout(**_params) -> html.Div:
    """Render every metric's label, formula, cohort, unit and source."""
    headers = ("指标", "计算公式", "统计口径", "单位", "依据")
    header = html.Tr([html.Th(h) for h in headers])
    rows = [
        html.Tr(id=f"def-{m.key}", children=_cells(headers, [
            [html.Strong(m.label_zh), html.Br(), html.Span(m.label_en, className="muted")],
            m.formula_zh, m.cohort_zh, m.unit, m.source,
        ]))
        for m in METRICS.values()
    ]
    return html.Div(className="page page-definitions", children=[
        html.H1("指标说明"),
        html.P("各指标依《信访工作条例》（2022 年）及广东省信访统计口径等公开来源定义（见“依据”列）；"
               "标 [I] 者为官方口径缺失时本系统采用的工作口径。"
               "比率均以分子、分母汇总计算，不取平均；统计期未设结束日期时截至数据截止日。",
               className="muted"),
        html.Section(className="card", children=[
            html.Table(id=TABLE, className="definitions", children=[html.Thead(header),
                                                                    html.Tbody(rows)]),
        ]),
        html.H2("镇街“两强”"),
        html.Section(className="card", id="definitions-two-strong", children=[html.Ul([
            html.Li("吸附能力：吸附率 = 统计期内在镇街、村居登记的信访件数 ÷ 登记机构级别已知的件数；"
                    "越级率 = 在市级、省级、国家级登记的占比（《信访工作条例》第十五条"
                    "“小事不出村、大事不出镇、矛盾不上交”）。"),
            html.Li("化解能力：一次性化解率与按期办结率（口径见上表）。"),
            html.Li("“两强”：吸附率、一次性化解率、按期办结率均不低于所比较各镇街的中位数 [I]；"
                    "两项比率分母不足最低件数的镇街不参与比较。"),
        ])]),
        html.H2("预警规则"),
        html.P("红色为强信号（规则命中），黄色为弱信号（统计检验）；阈值为当前设置值。"
               "期限类预警直接取自案件规则（与各项期限指标同一口径）。", className="muted"),
        html.Section(className="card", children=[_warning_table()]),
    ])


def _warning_table() -> html.Table:
    settings = state.store().settings
    headers = ("预警", "等级", "规则", "依据")
    header = html.Tr([html.Th(h) for h in headers])
    rows = [html.Tr(id=f"def-warning-{r.key}", children=_cells(headers, [
        [html.Strong(r.label_zh), html.Br(), html.Span(f"{r.lens} · {r.key} v{r.version}",
                                                       className="muted")],
        WARNING_LEVELS[r.level], rule_text(r.key, settings), r.source,
    ])) for r in RULES.values()]
    rows += [html.Tr(id=f"def-microscope-{key}", children=_cells(headers, [
        [html.Strong(title), html.Br(), html.Span("显微镜", className="muted")],
        "—", text, "统计检验；本单位与全市比较",
    ])) for key, title, text in microscope_texts(settings)]
    return html.Table(id=WARNING_TABLE, className="definitions",
                      children=[html.Thead(header), html.Tbody(rows)])


def _cells(headers: tuple[str, ...], values: list) -> list[html.Td]:
    """A row's cells, each labelled with its column (a phone shows the rows as cards)."""
    return [html.Td(v, **{"data-label": h}) for h, v in zip(headers, values, strict=True)]
