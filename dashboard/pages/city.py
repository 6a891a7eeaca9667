"""City leaders' view (领导视图): KPI cards, the ranking of units, monthly trend, peers."""

from __future__ import annotations

import dash
from dash import (
    ClientsideFunction,
    Input,
    Output,
    State,
    callback,
    clientside_callback,
    dcc,
    html,
    no_update,
)

from dashboard import access, figures, shell, state
from dashboard import components as C
from dashboard.query import parse_unit
from dashboard.warnings_ui import counts_table, warnings_href
from geo.vocab import LEVEL_NAMES_ZH
from layers import views
from layers.compare import kpi_changes, ranking_changes
from layers.definitions import METRICS
from layers.metrics import RATES
from layers.periods import Period, partial_end
from layers.units import child_level, unit_of

dash.register_page(__name__, path="/", name="领导视图", title="领导视图 · 广州市信访网格化治理",
                   order=0)

KPIS = "city-kpis"
RANKING = "city-ranking"
"""The ranking grid (its rows are clicked to drill down)."""
RANKING_BOX = "city-ranking-box"
"""The box the ranking grid arrives in: an id of its own, not the grid's (ids are unique)."""
RANKING_PICK = "city-ranking-pick"
RANKING_TITLE = "city-ranking-title"
TREND = "city-trend"
TREND_RATE = "city-trend-rate"
PEERS = "city-peers"
EMPTY = "city-empty"
WARNINGS = "city-warnings"
STRENGTHS = "city-two-strong"

RATE_LABELS = {rate: METRICS[rate].label_zh for rate in RATES}
KPI_RATES = ("on_time_completion", "timely_acceptance", "satisfaction", "repeat",
             "backlog_clearance", "local_resolution")
"""Rates shown as KPI cards, in this order (each card's tooltip is its formula)."""


@access.guard_layout
def layout(**params) -> html.Div:
    """Render the city leaders' view for the unit and filters in the URL."""
    ctx_ = shell.page_context("city", params)
    scope = unit_of(state.store(), ctx_["scope"])
    subtitle = f"{scope.name} · 各{_child_zh(scope.level)}排名与趋势"
    if ctx_["view"].unit != scope.code:  # a village chosen on the map: the cards are its own
        subtitle += f" · 已选：{unit_of(state.store(), ctx_['view'].unit).name}"
    return html.Div(className="page page-city", children=[
        shell.page_header("领导视图", subtitle, ctx_),
        html.Div(id=EMPTY),
        dcc.Loading(type="dot", delay_show=300, children=html.Div(id=KPIS, className="kpis")),
        html.Div(className="two-col", children=[
            html.Section(className="card", children=[
                C.map_panel(ctx_["view"], basemap=state.store().settings.basemap,
                            metric_labels=shell.metric_labels()),
            ]),
            html.Section(className="card", children=[
                html.H2(id=RANKING_TITLE),
                html.P("件数不足最低门槛的单位不参与排名（排名为空），其比率仅供参考。",
                       className="muted small"),
                dcc.Loading(type="dot", delay_show=300, children=html.Div(id=RANKING_BOX)),
            ]),
        ]),
        html.Div(className="two-col", children=[
            html.Section(className="card", children=[
                html.Div(className="card-head", children=[
                    html.H2("月度趋势"),
                    dcc.RadioItems(id=TREND_RATE, value="on_time_completion", inline=True,
                                   className="radio-inline",
                                   options=[{"label": v, "value": k}
                                            for k, v in figures.TREND_RATES.items()]),
                ]),
                dcc.Loading(type="dot", delay_show=300,
                            children=dcc.Graph(id=TREND, config={"displayModeBar": False})),
            ]),
            html.Section(className="card", children=[
                html.H2("与同级单位及全市比较"),
                dcc.Loading(type="dot", delay_show=300, children=html.Div(id=PEERS)),
            ]),
        ]),
        html.Section(className="card", children=[
            html.H2("镇街“两强”：吸附能力与化解能力"),
            html.P("吸附率 = 在镇街、村居登记的件数 ÷ 登记机构级别已知的件数；越级率 = 在市级及以上"
                   "登记的占比；化解能力看一次性化解率与按期办结率。两项均不低于各镇街中位数者为“两强”"
                   "（定义见指标说明）。", className="muted small"),
            dcc.Loading(type="dot", delay_show=300, children=html.Div(id=STRENGTHS)),
        ]),
        html.Section(className="card", children=[
            html.Div(className="card-head", children=[
                html.H2("预警（红色：强信号 · 黄色：弱信号）"),
                dcc.Link("打开预警页 ›", href=warnings_href(ctx_["scope"]), className="small"),
            ]),
            html.Div(id=WARNINGS),
        ]),
    ])


@callback(Output(STRENGTHS, "children"), Input(C.QUERY, "data"))
def update_strengths(query):
    """The 两强 quadrant of the streets of a district or the city (thin: layers.strengths)."""
    from layers.strengths import two_strengths

    resolved = access.resolve_query(query, page="city")
    store, scope = state.store(), unit_of(state.store(), resolved.scope_code)
    if scope.level not in ("city", "district"):
        return html.P("在全市或区一级查看各镇街的“两强”。", className="muted")
    filters = resolved.view.filters
    streets = two_strengths(store, scope.code, filters=filters)
    both = streets[streets["both"]]
    names = "、".join(both["name"]) if len(both) else "无"
    unranked = int((~streets["ranked"]).sum())
    return [
        dcc.Graph(figure=figures.strengths_figure(streets), config={"displayModeBar": False}),
        html.P(f"“两强”镇街（{len(both)} 个）：{names}", id="city-two-strong-names"),
        html.P(f"另有 {unranked} 个镇街件数不足，未参与比较。", className="muted small")
        if unranked else None,
    ]


@callback(Output(WARNINGS, "children"), Input(C.QUERY, "data"))
def update_warnings(query):
    """Red and yellow open warnings per child unit (thin: layers.warnings.views.child_counts)."""
    from layers.warnings.views import child_counts

    resolved = access.resolve_query(query, page="city")
    scope = unit_of(state.store(), resolved.scope_code)
    level = child_level(scope.level) or scope.level
    counts = child_counts(state.store(), scope.code, level=level)
    return counts_table(counts, id_="city-warning-counts")


@callback(
    Output(KPIS, "children"),
    Output(RANKING_BOX, "children"),
    Output(RANKING_TITLE, "children"),
    Output(EMPTY, "children"),
    Input(C.QUERY, "data"),
)
def update_city(query):
    """KPIs and ranking of the scope's children (thin: layers.views.city_view)."""
    resolved = access.resolve_query(query, page="city")
    store, filters, scope = state.store(), resolved.view.filters, resolved.scope_code
    city = views.city_view(store, scope, filters=filters)
    chosen = resolved.view.unit  # a selected village: its own cards, its street's ranking
    span = shell.cached_info(store, chosen)  # the unit's own data range: what it can compare
    changes = kpi_changes(store, chosen, filters=filters, first=span.date_from,
                          last=span.date_to)
    k = city.kpis if chosen == scope else views.unit_row(store, chosen, filters=filters)
    empty = C.empty_message() if not k or not k.get("cases") else partial_notice(resolved)
    cards = C.kpi_cards([
        ("信访件数", C.num(k.get("cases")), f"未办结 {C.num(k.get('open_cases'))}"),
        ("超期未办结", C.num(k.get("overdue_open")), "截至数据日期"),
        *[(RATE_LABELS[r], C.rate_value(k, r), _nd(k, r), C.change_text(changes[r]))
          for r in KPI_RATES],
    ])
    ranking = city.ranking.copy()
    moved = ranking_changes(store, scope, rate="on_time_completion", filters=filters,
                            first=span.date_from, last=span.date_to)
    ranking = ranking.merge(moved.rename(columns={"yoy": "otc_yoy", "mom": "otc_mom"}),
                            on="code", how="left")
    for rate in RATES:
        if rate in ranking:
            ranking[rate + "_pct"] = (100 * ranking[rate]).round(1)
    columns = [("rank", "排名"), ("name", "单位"), ("cases", "件数 n"),
               ("open_cases", "未办结"), ("overdue_open", "超期未办结")]
    columns += [(r + "_pct", RATE_LABELS[r] + " %") for r in RATES if r in ranking]
    columns += [(key, f"按期办结率{zh}（个百分点）") for key, zh in
                (("otc_yoy", "同比"), ("otc_mom", "环比")) if ranking[key].notna().any()]
    columns += [("cases_per_10k", "每万人件数"), ("days_to_close_median", "办结天数中位")]
    table = C.grid(RANKING, ranking, columns, height=420, page_size=None, pinned="name",
                   row_id="code")
    title = f"各{_child_zh(city.unit.level)}排名（按按期办结率）"
    if city.unassigned_cases and city.unit.level == "city":
        title += f" · 未落格 {city.unassigned_cases:,} 件"
    # the click's store comes with the grid, so the click callback waits for a click
    return cards, [table, dcc.Store(id=RANKING_PICK)], title, empty


@callback(
    Output(RANKING_PICK, "data"),
    Input(RANKING, "cellClicked"),
    State(C.QUERY, "data"),
    prevent_initial_call=True,
)
def drill_from_ranking(clicked, query):
    """Open the unit of a clicked ranking row (its code is the row's id; scope-checked).

    The query string goes to the store beside the grid (inserted with it: no request when the
    grid arrives), which ``gridgovNav.go`` copies into the URL.
    """
    resolved = access.resolve_query(query, page="city")
    code = parse_unit(clicked.get("rowId") if isinstance(clicked, dict) else None)
    if not code or code == resolved.view.unit:
        return no_update
    view = resolved.view.with_(unit=access.require_unit(code, page="city"))
    return view.to_search()


clientside_callback(
    ClientsideFunction(namespace="gridgovNav", function_name="go"),
    Output(shell.URL, "search", allow_duplicate=True),
    Input(RANKING_PICK, "data"),
    prevent_initial_call=True,
)


@callback(Output(TREND, "figure"), Input(C.QUERY, "data"), Input(TREND_RATE, "value"))
def update_trend(query, rate):
    """Monthly trend of the selected unit (thin: layers.views.monthly_trend)."""
    view = access.resolve_query(query, page="city").view
    store = state.store()
    code = view.unit
    trend = views.monthly_trend(store, code, filters=view.filters)
    name = unit_of(store, code).name
    rate = rate if isinstance(rate, str) and rate in figures.TREND_RATES else "on_time_completion"
    return figures.trend_figure(trend, rate=rate,
                                title=f"{name}：近 12 个月")


@callback(Output(PEERS, "children"), Input(C.QUERY, "data"))
def update_peers(query):
    """The selected unit against its peers and the city (thin: layers.views.peer_comparison).

    Only peers inside the account's scope are compared (and the city only for a city account):
    a district sees its own streets side by side, not the other districts' figures.
    """
    resolved = access.resolve_query(query, page="city")
    view, scope = resolved.view, resolved.account.scope
    if view.unit == views.CITY_CODE:
        return html.P("在地图上点击一个区（或在排名表中查看），即可与同级单位和全市比较。",
                      className="muted")
    if view.unit == scope.code:
        return html.P("同级单位比较超出您的辖区；请在地图上点击下级单位，与辖区内同级单位比较。",
                      className="muted")
    metric = view.metric if view.metric in RATE_LABELS else "on_time_completion"
    peers = views.peer_comparison(state.store(), view.unit, metric=metric, filters=view.filters)
    peers = peers[[scope.allows_unit(code) if role != "city" else scope.level == "city"
                   for code, role in zip(peers["code"], peers["role"], strict=True)]]
    return dcc.Graph(figure=figures.peer_figure(peers, label=RATE_LABELS[metric]),
                     config={"displayModeBar": False})


def partial_notice(resolved: access.Resolved) -> html.Div | None:
    """A notice when the chosen window runs past the data day (a partial period, 截至 day)."""
    f = resolved.view.filters
    info = shell.cached_info(state.store(), resolved.account.scope.code)
    if not (f.date_from or f.date_to):
        return None
    day = partial_end(Period(f.date_from, f.date_to), info.date_to)
    if day is None:
        return None
    return html.Div(f"所选时段尚未结束：数据截至 {day}，本期为不完整期，不宜与完整期直接比较。",
                    className="partial-notice", role="status", id="partial-notice")


def _nd(row: dict, rate: str) -> str:
    num, den = row.get(rate + "_num"), row.get(rate + "_den")
    return f"{C.num(num)} / {C.num(den)}" if den else "无可计算的案件"


def _child_zh(level: str) -> str:
    child = child_level(level) or level
    return LEVEL_NAMES_ZH.get(child, child)
