"""Plotly figures as plain dicts (no dash import): monthly trend, peer comparison, ageing."""

from __future__ import annotations

import math

import pandas as pd

from layers.definitions import METRICS

FONT = {"family": "PingFang SC, Microsoft YaHei, Noto Sans CJK SC, WenQuanYi Micro Hei, sans-serif",
        "size": 12}
_BASE_LAYOUT = {
    "font": FONT,
    "margin": {"l": 48, "r": 48, "t": 36, "b": 40},
    "paper_bgcolor": "rgba(0,0,0,0)",
    "plot_bgcolor": "rgba(0,0,0,0)",
    "legend": {"orientation": "h", "y": -0.2},
    "height": 300,
}
TREND_RATES = {rate: METRICS[rate].label_zh
               for rate in ("on_time_completion", "satisfaction", "repeat")}


def trend_figure(trend: pd.DataFrame, *, rate: str = "on_time_completion", title: str = "") -> dict:
    """Bars of cases registered per month with one rate as a line on a second axis.

    Honest about what a month holds: a month cut by the data date is labelled 截至 that day
    and drawn pale (it is not a full month); hovering shows each month's n (the rate's
    numerator and denominator); a rate whose denominator is below the minimum
    (``R_rankable`` false) is not drawn, its hover says 样本不足.
    """
    label = TREND_RATES.get(rate, rate)
    months = [_month_label(row) for row in trend.to_dict("records")]
    enough = trend[rate + "_rankable"] if rate + "_rankable" in trend else [True] * len(trend)
    values = [None if _missing(v) or not ok else round(100 * float(v), 1)
              for v, ok in zip(trend[rate], enough, strict=True)]
    nums = trend.get(rate + "_num", pd.Series([None] * len(trend)))
    dens = trend.get(rate + "_den", pd.Series([None] * len(trend)))
    rate_hover = [
        f"{label}：{v:.1f}%（{int(n):,} / {int(d):,}）" if v is not None
        else f"{label}：样本不足（分母 {int(d or 0):,} 件），不显示"
        for v, n, d in zip(values, nums.fillna(0), dens.fillna(0), strict=True)]
    partial = list(trend["partial"]) if "partial" in trend else [False] * len(trend)
    return {
        "data": [
            {"type": "bar", "x": months, "y": [int(v) for v in trend["cases"]],
             "name": "登记件数", "hovertemplate": "%{x}<br>登记 %{y:,} 件<extra></extra>",
             "marker": {"color": ["#deebf7" if p else "#9ecae1" for p in partial],
                        "line": {"color": ["#6baed6" if p else "#9ecae1" for p in partial],
                                 "width": 1}}},
            {"type": "scatter", "mode": "lines+markers", "x": months, "y": values,
             "name": label + "（%）", "yaxis": "y2", "line": {"color": "#08519c", "width": 2},
             "connectgaps": False, "text": rate_hover,
             "hovertemplate": "%{x}<br>%{text}<extra></extra>"},
        ],
        "layout": {
            **_BASE_LAYOUT,
            "title": {"text": title, "font": {"size": 14}},
            "xaxis": {"type": "category", "tickangle": -45},  # 2026-01, not "Jan 2026"
            "yaxis": {"title": {"text": "件"}, "rangemode": "tozero"},
            "yaxis2": {"title": {"text": "%"}, "overlaying": "y", "side": "right",
                       "range": [0, 100], "dtick": 20, "showgrid": False},
            "hovermode": "x unified",
        },
    }


def _month_label(row: dict) -> str:
    """YYYY-MM, or YYYY-MM（截至 MM-DD） for a month the data date cuts."""
    if row.get("partial") and row.get("month_end") is not None:
        return f"{row['month']}（截至 {row['month_end']:%m-%d}）"
    return str(row["month"])


def peer_figure(peers: pd.DataFrame, *, label: str, unit: str = "%") -> dict:
    """Horizontal bars of the peers on one metric; the selected unit dark, the city as a line."""
    body = peers[peers["role"] != "city"].iloc[::-1]
    city = peers[peers["role"] == "city"]
    scale = 100.0 if unit == "%" else 1.0
    xs = [None if _missing(v) else round(scale * float(v), 1) for v in body["value"]]
    colours = ["#08519c" if role == "unit" else "#c6dbef" for role in body["role"]]
    present = [x for x in xs if x is not None]
    low = min(present) if present else 0.0
    if len(city) and not _missing(city["value"].iloc[0]):
        low = min(low, scale * float(city["value"].iloc[0]))
    axis_range = [max(0.0, 5 * math.floor((low - 5) / 5)), 100.0] if unit == "%" else None
    shapes = []
    if len(city) and not _missing(city["value"].iloc[0]):
        x = scale * float(city["value"].iloc[0])
        shapes.append({"type": "line", "x0": x, "x1": x, "yref": "paper", "y0": 0, "y1": 1,
                       "line": {"color": "#d94801", "dash": "dash"}})
    return {
        "data": [{"type": "bar", "orientation": "h", "x": xs, "y": list(body["name"]),
                  "marker": {"color": colours}, "name": label}],
        "layout": {
            **_BASE_LAYOUT,
            "height": max(240, 22 * len(body) + 80),
            "title": {"text": f"{label}：与同级单位及全市（橙色虚线）比较", "font": {"size": 14}},
            "xaxis": {"title": {"text": unit}, **({"range": axis_range} if axis_range else {})},
            "margin": {"l": 120, "r": 24, "t": 40, "b": 40},
            "shapes": shapes,
            "showlegend": False,
        },
    }


def ageing_figure(ageing: pd.DataFrame) -> dict:
    """Bars of open cases by days since registration."""
    colours = ["#9ecae1", "#fdae6b", "#f16913", "#d7191c"]
    return {
        "data": [{"type": "bar", "x": list(ageing["bucket"]), "y": list(ageing["cases"]),
                  "marker": {"color": colours[: len(ageing)]}, "text": list(ageing["cases"]),
                  "textposition": "auto"}],
        "layout": {**_BASE_LAYOUT, "height": 240,
                   "title": {"text": "未办结案件积压时长（自登记起）", "font": {"size": 14}},
                   "yaxis": {"title": {"text": "件"}}},
    }


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def strengths_figure(streets: pd.DataFrame) -> dict:
    """The 两强 quadrant: 吸附率 (x) against 一次性化解率 (y), median lines, 两强 streets named."""
    ranked = streets[streets["ranked"]]
    def pct(values) -> list:  # noqa: ANN001 - a Series
        return [None if _missing(v) else round(100 * float(v), 1) for v in values]

    hover = [f"{r['name']}<br>吸附率 {100 * r['absorb']:.1f}%（越级 {100 * r['skip']:.1f}%）"
             f"<br>一次性化解率 {100 * r['first_time_resolution']:.1f}%"
             f"<br>按期办结率 {100 * r['on_time_completion']:.1f}%<br>n = {int(r['cases']):,}"
             for r in ranked.to_dict("records")]
    colours = ["#1b7837" if both else "#9ecae1" for both in ranked["both"]]
    shapes = []
    if len(ranked):
        for axis, column in (("x", "absorb"), ("y", "first_time_resolution")):
            value = round(100 * float(ranked[column].median()), 1)
            line = {"type": "line", "line": {"color": "#888", "dash": "dot"},
                    f"{axis}0": value, f"{axis}1": value,
                    f"{'y' if axis == 'x' else 'x'}ref": "paper",
                    f"{'y' if axis == 'x' else 'x'}0": 0, f"{'y' if axis == 'x' else 'x'}1": 1}
            shapes.append(line)
    return {
        "data": [{"type": "scatter", "mode": "markers+text", "x": pct(ranked["absorb"]),
                  "y": pct(ranked["first_time_resolution"]),
                  # names on the chart while they can be read; the list below names them all
                  "text": [n if both and ranked["both"].sum() <= 12 else ""
                           for n, both in zip(ranked["name"], ranked["both"], strict=True)],
                  "textposition": "top center", "hovertext": hover, "hoverinfo": "text",
                  "marker": {"color": colours, "size": 9, "line": {"color": "#fff", "width": 1}}}],
        "layout": {**_BASE_LAYOUT, "height": 360, "showlegend": False, "shapes": shapes,
                   "title": {"text": "吸附能力 × 化解能力（虚线：各镇街中位数；绿色为“两强”）",
                             "font": {"size": 14}},
                   "xaxis": {"title": {"text": "吸附率：镇街及以下登记占比（%）"}},
                   "yaxis": {"title": {"text": "一次性化解率（%）"}}},
    }
