"""The 月报's trend chart (月度趋势图): cases registered per month as bars, 按期办结率 as a line.

Drawn with matplotlib (Agg, no display) to a PNG that python-docx places in the report. It
says what the dashboard's trend says: a month cut by the data date is pale and marked 截至
its last day, a rate resting on fewer cases than the minimum is not drawn (the table beside it
says 样本不足). Labels are Chinese when a CJK font is installed (the Debian package
fonts-wqy-microhei, Noto CJK, Source Han, SimHei or Microsoft YaHei); without one the chart
keeps to digits and the report's caption names the series, so no glyph is ever a box.

matplotlib is imported here only, when a report is written: a serving process never pays
for it. The chart is a ``Figure`` of its own, without pyplot and without changing
``rcParams`` (fonts are given to each label): the server writes reports in several threads
at once, and pyplot's current figure and the global rcParams are one per process
(matplotlib's guide, "Embed in a web application server").
"""

from __future__ import annotations

import io

import pandas as pd

CJK_FONTS = ("WenQuanYi Micro Hei", "Noto Sans CJK SC", "Source Han Sans SC", "SimHei",
             "Microsoft YaHei")
"""Font families tried, in order, for the chart's Chinese labels."""
BAR, BAR_PARTIAL, LINE = "#4575b4", "#c6dbef", "#d73027"


def trend_png(trend: pd.DataFrame, *, dpi: int = 150) -> bytes:
    """The trend as PNG bytes: one bar per month (``cases``), the rate as a line.

    ``trend`` is :func:`layers.views.monthly_trend`'s frame: ``month`` (YYYY-MM), ``cases``,
    ``partial``, ``month_end``, ``on_time_completion`` and ``on_time_completion_rankable``.
    """
    from matplotlib import font_manager
    from matplotlib.figure import Figure

    installed = {f.name for f in font_manager.fontManager.ttflist}
    font = next((name for name in CJK_FONTS if name in installed), None)
    zh = font is not None
    family = [font, "DejaVu Sans"] if zh else ["DejaVu Sans"]
    months = [str(m) for m in trend["month"]]
    partial = trend.get("partial", pd.Series(False, index=trend.index)).fillna(False).astype(bool)
    labels = [_month_label(m, first=i == 0, zh=zh) + ("*" if p else "")
              for i, (m, p) in enumerate(zip(months, partial, strict=True))]
    rankable = trend.get("on_time_completion_rankable",
                         pd.Series(True, index=trend.index)).fillna(False).astype(bool)
    rate = pd.to_numeric(trend.get("on_time_completion"), errors="coerce").where(rankable) * 100

    fig = Figure(figsize=(6.4, 2.8), dpi=dpi)
    bars = fig.subplots()
    x = range(len(months))
    bars.bar(x, trend["cases"], color=[BAR_PARTIAL if p else BAR for p in partial])
    bars.set_xticks(list(x), labels, fontsize=8, fontfamily=family)
    bars.set_ylabel("登记件数" if zh else "n", fontsize=8, fontfamily=family)
    bars.tick_params(axis="y", labelsize=8)
    line = bars.twinx()
    line.plot(list(x), rate, color=LINE, marker="o", markersize=3)
    line.set_ylim(0, 100)
    line.set_ylabel("按期办结率（%）" if zh else "%", fontsize=8, fontfamily=family)
    line.tick_params(axis="y", labelsize=8)
    for axis in (bars, line):
        axis.spines["top"].set_visible(False)
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()


def _month_label(month: str, *, first: bool, zh: bool) -> str:
    """``7月``; the year too on the first month and on each January (``2025年\n1月``)."""
    year, number = month[:4], int(month[5:7])
    if not zh:
        return f"{year}-{number:02d}" if first or number == 1 else f"{number:02d}"
    return f"{year}年\n{number}月" if first or number == 1 else f"{number}月"
