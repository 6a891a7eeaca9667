"""The monthly report (月报): one unit and one period as a Word document leaders can forward.

Everything in it comes from the same computations as the dashboard: the KPIs with their
numerators and denominators (:func:`layers.views.unit_row`, i.e. ``gridgov metrics``), the
ranking of the unit's children (:func:`layers.views.city_view`), the monthly trend as a chart
(:mod:`layers.report_chart`) with its table of n and rates beneath, and the open,
overdue and backlog counts. It states its scope, filters (in words), period and data date, and
says 样本不足 where a rate rests on fewer cases than the minimum. Values from the data (unit
names) are written as document text through python-docx, never as markup.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, replace
from datetime import date, datetime

import pandas as pd

from geo.store import Store
from geo.vocab import CITY_CODE, LEVEL_NAMES_ZH
from layers.definitions import METRICS
from layers.filters import Filters
from layers.periods import Period, partial_end, preset_period
from layers.units import child_level, unit_of
from layers.views import city_view, data_info, monthly_trend, unit_row

REPORT_RATES = ("on_time_completion", "timely_acceptance", "first_time_resolution",
                "satisfaction", "participation", "repeat", "backlog_clearance",
                "local_resolution")
"""Rates in the report's KPI table, in this order."""
REPORT_COUNTS = ("cases", "open_cases", "overdue_open", "due_soon", "acceptance_overdue",
                 "backlog_open", "backlog_resolved")
"""Counts in the report's 未办结、超期与积案 table."""
RANKED = 30
NO_FILTERS = Filters()
"""The ranking lists at most this many children (the rest are in the dashboard)."""


@dataclass(frozen=True)
class ReportPeriod:
    """The period a report covers and whether the data date cuts it."""

    filters: Filters
    title_zh: str
    partial_on: date | None


def report_period(filters: Filters, data_day: date | None) -> ReportPeriod:
    """The view's window, or (when it has none) the data's last month: a 月报 is a month."""
    if filters.date_from or filters.date_to or data_day is None:
        window = filters
    else:
        month = preset_period("month", data_day)
        window = replace(filters, date_from=month.start, date_to=month.end)
    start, end = window.date_from, window.date_to
    if start and end and (start.year, start.month) == (end.year, end.month) \
            and start.day == 1:
        title = f"{start.year}年{start.month}月"
    else:
        title = f"{start or '最早'} 至 {end or '最新'}"
    return ReportPeriod(window, title, partial_end(Period(start, end), data_day))


def monthly_report(store: Store, code: str, *, filters: Filters = NO_FILTERS,
                   with_city: bool = False) -> bytes:
    """Write the 月报 of unit ``code`` for the view's period as a .docx (bytes).

    Parameters
    ----------
    with_city
        Add the city's value beside each KPI (only for an account that sees the whole city:
        the city figure depends on cases outside any smaller scope).
    """
    from docx import Document

    unit = unit_of(store, code)
    info = data_info(store, code)
    period = report_period(filters, info.date_to)
    kpis = unit_row(store, code, filters=period.filters)
    city = unit_row(store, CITY_CODE, filters=period.filters) if with_city else {}
    document = Document()
    _style(document)
    document.add_heading(f"{unit.name}信访工作月报（{period.title_zh}）", level=0)
    _facts(document, [
        ("范围", f"{unit.name}（{LEVEL_NAMES_ZH.get(unit.level, unit.level)}）"),
        *(("统计期与筛选", line) for line in period.filters.describe_zh()),
        ("数据截至", f"{info.as_of:%Y-%m-%d %H:%M}" if info.as_of else "无数据"),
        *((("说明", f"本期尚未结束（数据截至 {period.partial_on}），为不完整期，"
            "不宜与完整期直接比较。"),) if period.partial_on else ()),
        *((("说明", "演示数据（合成），并非真实信访数据。"),) if info.synthetic else ()),
    ])
    document.add_heading("一、主要指标", level=1)
    _kpi_table(document, kpis, city)
    document.add_heading("二、未办结、超期与积案", level=1)
    _table(document, ["项目", "件数"],
           [[METRICS[c].label_zh, _count(kpis.get(c))] for c in REPORT_COUNTS])
    below = child_level(unit.level)
    if below:
        document.add_heading(f"三、各{LEVEL_NAMES_ZH.get(below, below)}排名（按按期办结率）",
                             level=1)
        _ranking(document, city_view(store, code, filters=period.filters).ranking)
    document.add_heading("四、月度趋势（近 12 个月）", level=1)
    trend = monthly_trend(store, code, filters=period.filters)
    _trend_chart(document, trend)
    _trend(document, trend)
    document.add_heading("口径", level=1)
    document.add_paragraph(
        "受理、办理期限依《信访工作条例》（2022 年）；各指标的公式与统计口径见仪表盘“指标说明”页。"
        f"分母少于 {store.settings.min_cases_for_rate} 件的比率标为“样本不足”，不参与排名。")
    for rate in REPORT_RATES:
        m = METRICS[rate]
        document.add_paragraph(f"{m.label_zh}：{m.formula_zh}（口径：{m.cohort_zh}）",
                               style="List Bullet")
    document.add_paragraph(f"生成时间：{datetime.now():%Y-%m-%d %H:%M}")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def read_kpis(docx_bytes: bytes) -> dict[str, dict[str, str]]:
    """Read a report's KPI table back: {指标: {数值, 分子, 分母, …}} (for tests and checks)."""
    from docx import Document

    table = Document(io.BytesIO(docx_bytes)).tables[1]
    header = [cell.text for cell in table.rows[0].cells]
    return {row.cells[0].text: dict(zip(header, (c.text for c in row.cells), strict=True))
            for row in table.rows[1:]}


# --------------------------------------------------------------------------- private helpers


def _style(document) -> None:  # noqa: ANN001 - a python-docx Document
    from docx.oxml.ns import qn

    normal = document.styles["Normal"]
    normal.font.name = "SimSun"
    normal.element.rPr.rFonts.set(qn("w:eastAsia"), "宋体")


def _facts(document, facts: list[tuple[str, str]]) -> None:  # noqa: ANN001
    _table(document, ["项目", "内容"], [list(f) for f in facts])


def _table(document, header: list[str], rows: list[list[str]]) -> None:  # noqa: ANN001
    table = document.add_table(rows=1, cols=len(header))
    table.style = "Table Grid"
    for cell, text in zip(table.rows[0].cells, header, strict=True):
        cell.text = text
    for row in rows:
        for cell, text in zip(table.add_row().cells, row, strict=True):
            cell.text = str(text)


def _kpi_table(document, kpis: dict, city: dict) -> None:  # noqa: ANN001
    header = ["指标", "数值", "分子", "分母", "说明"] + (["全市"] if city else [])
    rows = [["信访件数", _count(kpis.get("cases")), "", "", "统计期内登记"]
            + ([_count(city.get("cases"))] if city else [])]
    for rate in REPORT_RATES:
        den = kpis.get(rate + "_den")
        enough = kpis.get(rate + "_rankable")
        small = bool(den) and enough is not None and not bool(enough)
        rows.append([METRICS[rate].label_zh, "样本不足" if small else _pct(kpis.get(rate)),
                     _count(kpis.get(rate + "_num")), _count(den),
                     "分母不足最低件数" if small else ""]
                    + ([_pct(city.get(rate))] if city else []))
    _table(document, header, rows)


def _ranking(document, ranking: pd.DataFrame) -> None:  # noqa: ANN001
    rows = []
    for r in ranking.head(RANKED).to_dict("records"):
        rank = r.get("rank")
        rows.append(["—" if rank is None or pd.isna(rank) else str(int(rank)), str(r["name"]),
                     _count(r.get("cases")), _pct(r.get("on_time_completion")),
                     _pct(r.get("satisfaction")), _count(r.get("overdue_open"))])
    _table(document, ["排名", "单位", "件数", "按期办结率", "满意率", "超期未办结"], rows)
    if len(ranking) > RANKED:
        document.add_paragraph(f"另有 {len(ranking) - RANKED} 个单位，见仪表盘。")


def _trend_chart(document, trend: pd.DataFrame) -> None:  # noqa: ANN001
    from docx.shared import Cm

    from layers.report_chart import trend_png

    if trend.empty:
        return
    document.add_picture(io.BytesIO(trend_png(trend)), width=Cm(16))
    document.add_paragraph("柱：登记件数；线：按期办结率。浅色柱（*）为数据截止日所在的不完整月；"
                           "样本不足的月份不画线。")


def _trend(document, trend: pd.DataFrame) -> None:  # noqa: ANN001
    rows = []
    for r in trend.to_dict("records"):
        month = f"{r['month']}（截至 {r['month_end']:%m-%d}）" if r.get("partial") else r["month"]
        rate = ("样本不足" if not r.get("on_time_completion_rankable", True)
                else _pct(r.get("on_time_completion")))
        rows.append([month, _count(r["cases"]), rate,
                     f"{_count(r.get('on_time_completion_num'))}/"
                     f"{_count(r.get('on_time_completion_den'))}"])
    _table(document, ["月份", "登记件数", "按期办结率", "分子/分母"], rows)


def _count(value: object) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "—"
    return f"{int(value):,}"


def _pct(value: object) -> str:
    if value is None or pd.isna(value):
        return "—"
    return f"{100 * float(value):.1f}%"
