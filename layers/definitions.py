"""Every metric's definition, in Chinese and English: label, formula, cohort, unit and source.

This registry is the single statement of what each number means. The dashboard shows these
texts, ``docs/metrics.md`` is generated from them (:func:`render_markdown`; a test fails when
the file and the registry disagree), and :mod:`layers.metrics` implements exactly these rules.
Items marked [I] are design choices where no official rule is published.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MetricDef:
    """One metric's definition.

    Attributes
    ----------
    key
        Column name in :func:`layers.metrics.compute_metrics` (rates also have key_num,
        key_den, key_rankable) or :func:`layers.coverage.compute_coverage`.
    kind
        rate, count, density, distance, share, days or flag.
    unit
        Display unit (%, 件, 件/km², 件/万人, 米, 天).
    source
        Where the rule comes from: the regulation's article or the public source.
    """

    key: str
    label_zh: str
    label_en: str
    kind: str
    unit: str
    formula_zh: str
    formula_en: str
    cohort_zh: str
    cohort_en: str
    source: str
    higher_is_better: bool | None


GD = "广东省信访统计口径"
"""The published Guangdong petition statistics (their KPI formulas are public)."""
_WINDOW_ZH = "统计期按登记时间"
_WINDOW_EN = "cases registered in the window"

METRICS: dict[str, MetricDef] = {
    m.key: m
    for m in (
        MetricDef(
            "cases", "信访件数", "Cases", "count", "件",
            "统计期内登记的信访件数", "number of cases",
            _WINDOW_ZH + "；按问题属地归入网格",
            _WINDOW_EN + ", attributed to the place of the problem",
            "按信访件编号去重计件", None,
        ),
        MetricDef(
            "open_cases", "未办结件数", "Open cases", "count", "件",
            "未办结且非不予受理的件数", "cases not closed and not 不予受理",
            _WINDOW_ZH + "；按数据截止时间判断", _WINDOW_EN + ", judged at the data date (as of)",
            "信访工作条例 第三十四条（办结）", False,
        ),
        MetricDef(
            "overdue_open", "超期未办结件数", "Overdue open cases", "count", "件",
            "未办结且办理期限早于数据截止日", "open cases whose due date is before the data date",
            _WINDOW_ZH + "；办理期限缺失时 = 受理 + 60 天（延期 + 30 天）",
            _WINDOW_EN + "; missing due date = accepted + 60 days (+30 if extended)",
            "信访工作条例 第三十四条", False,
        ),
        MetricDef(
            "due_soon", "临期未办结件数", "Open cases due soon", "count", "件",
            "未办结、尚未超期且办理时限已用去 80% 以上（60 天期限剩 12 天以内）",
            "open cases not yet overdue of which 80 % of the handling limit has passed (12 days "
            "or fewer left of 60)",
            _WINDOW_ZH + "；比例可配置 [I]",
            _WINDOW_EN + "; the share is a setting (due_soon_share) [I]",
            "信访工作条例 第三十四条；临期比例为工作口径 [I]", False,
        ),
        MetricDef(
            "acceptance_pending", "待受理件数", "Cases awaiting acceptance", "count", "件",
            "已登记、未办结、尚未作出受理或不予受理决定的件数",
            "registered, open cases without a decision to accept or not to accept yet",
            _WINDOW_ZH, _WINDOW_EN, "信访工作条例 第二十二条、第二十三条（15 日内告知）", False,
        ),
        MetricDef(
            "acceptance_overdue", "超期未受理件数", "Acceptance overdue", "count", "件",
            "待受理且登记日期 + 15 天已过", "awaiting acceptance past registration + 15 days",
            _WINDOW_ZH + "；期限当日仍属按期", _WINDOW_EN + "; the limit day itself is on time",
            "信访工作条例 第二十二条、第二十三条", False,
        ),
        MetricDef(
            "acceptance_due_soon", "受理临期件数", "Acceptance due soon", "count", "件",
            "待受理、未超期且 15 天受理期限已用去 80% 以上（登记后第 12 天起）",
            "awaiting acceptance, not yet overdue, 80 % of the 15-day limit passed (from day 12)",
            _WINDOW_ZH + " [I]", _WINDOW_EN + " [I]", "信访工作条例 第二十三条；临期比例 [I]", False,
        ),
        MetricDef(
            "reply_pending", "待答复件数", "Cases awaiting a reply", "count", "件",
            "已受理、未办结且尚未答复的件数（答复期限同办理期限）",
            "accepted open cases not replied yet (the reply is due with the handling limit)",
            _WINDOW_ZH, _WINDOW_EN, "信访工作条例 第三十四条（书面答复）", False,
        ),
        MetricDef(
            "followup_pending", "待回访件数", "Follow-ups pending", "count", "件",
            "已答复（或已办结）但尚未回访的件数；回访时限为答复后 15 天 [I]",
            "replied (or closed) cases not followed up yet; follow-up due 15 days after the "
            "reply [I]",
            _WINDOW_ZH + "；回访时限可配置 [I]",
            _WINDOW_EN + "; the follow-up limit is a setting (followup_days) [I]",
            "工作口径 [I]（条例未规定回访时限）", False,
        ),
        MetricDef(
            "followup_overdue", "超期未回访件数", "Follow-ups overdue", "count", "件",
            "待回访且答复后已超过回访时限", "follow-up pending past the follow-up limit",
            _WINDOW_ZH + " [I]", _WINDOW_EN + " [I]", "工作口径 [I]", False,
        ),
        MetricDef(
            "rating_pending", "待评价件数", "Ratings pending", "count", "件",
            "已答复、未评价且仍在评价期限内（默认答复后 30 天）",
            "replied, not rated, still inside the rating window (default 30 days after the reply)",
            _WINDOW_ZH + "；评价期限可配置 [I]", _WINDOW_EN + "; the window is a setting [I]",
            "国信发〔2022〕11号 满意度评价（评价期限未公布 [I]）", None,
        ),
        MetricDef(
            "cases_per_km2", "每平方公里件数", "Cases per km²", "density", "件/km²",
            "信访件数 ÷ 面积（国家 2000 坐标系平面投影计算）", "cases ÷ area (measured in EPSG:4547)",
            _WINDOW_ZH, _WINDOW_EN,
            "国家 2000 坐标系（CGCS2000）3 度带高斯-克吕格投影（中央经线 114°E）计算面积", None,
        ),
        MetricDef(
            "cases_per_10k", "每万人件数", "Cases per 10,000 residents", "density", "件/万人",
            "信访件数 ÷ 人口 × 10000（估算人口另行标注）",
            "cases ÷ population × 10,000 (estimated populations are flagged)",
            _WINDOW_ZH, _WINDOW_EN, "第七次全国人口普查（2020）各区人口；镇街、村居人口为估算", None,
        ),
        MetricDef(
            "timely_acceptance", "及时受理率", "Timely acceptance rate", "rate", "%",
            "及时受理 ÷ (及时受理 + 超期受理 + 超期未受理)；及时受理 = 受理日期 ≤ 登记日期 + 15 天",
            "accepted on time ÷ (on time + accepted late + not accepted and past the limit); "
            "on time = acceptance date ≤ registration date + 15 days",
            "登记日期 + 15 天落在统计期内的初件（不含不予受理）；期限未到且未受理者不计入",
            "first-time cases (初件, not 不予受理) whose registration date + 15 days falls in the "
            "window; not yet accepted and still within the limit: excluded",
            GD + "（及时受理率，仅统计初件）；信访工作条例 第二十二条、第二十三条", True,
        ),
        MetricDef(
            "on_time_completion", "按期办结率", "On-time completion rate", "rate", "%",
            "按期办结 ÷ (按期办结 + 超期办结 + 未到期未办结 + 超期未办结)；"
            "按期办结 = 办结日期 ≤ 办理期限",
            "closed on time ÷ (closed on time + closed late + open not yet due + open overdue); "
            "on time = closing date ≤ due date (closing on the due date counts as on time)",
            "办理期限落在统计期内的初件（不含不予受理）；期限缺失时 = 受理 + 60 天（延期 + 30 天）",
            "first-time cases (not 不予受理) whose due date falls in the window; missing due date "
            "= accepted + 60 days (+30 if extended)",
            GD + "（按期办结率）；信访工作条例 第三十四条", True,
        ),
        MetricDef(
            "first_time_resolution", "一次性化解率", "First-time resolution rate", "rate", "%",
            "一次性化解件 ÷ 初次信访办结件；一次性化解 = 初件已办结、评价为满意或基本满意、"
            "截至数据日无重复信访 [I]",
            "resolved first time ÷ first-time cases closed; resolved = closed, rated 满意 or "
            "基本满意, and no repeat petition of it up to the data date [I]",
            "统计期内办结的初件（未评价者计入分母、不计入分子）[I]",
            "first-time cases closed in the window (unrated ones count in the denominator "
            "only) [I]",
            "临沂市信访局公开口径（一次性化解件 ÷ 初次信访办结件）；操作定义 [I]", True,
        ),
        MetricDef(
            "satisfaction", "满意率", "Satisfaction rate", "rate", "%",
            "(满意 + 基本满意) ÷ (满意 + 基本满意 + 不满意)",
            "(satisfied + basically satisfied) ÷ (satisfied + basically satisfied + dissatisfied)",
            "评价日期（缺失时用答复、办结日期）落在统计期内的已评价件 [I]",
            "rated cases whose rating date (else reply, else closing date) falls in the window [I]",
            GD + "（群众满意率）；国信发〔2022〕11号", True,
        ),
        MetricDef(
            "participation", "参评率", "Rating participation rate", "rate", "%",
            "已评价 ÷ (已评价 + 超期未评价)；超期未评价 = 答复后超过评价期限（默认 30 天）未评价",
            "rated ÷ (rated + rating window expired); expired = not rated more than the rating "
            "window (default 30 days) after the reply",
            "答复日期（缺失时用办结日期）落在统计期内的件；评价期内未评价者不计入 [I]",
            "cases replied (else closed) in the window; still inside the rating window and not "
            "rated: excluded [I]",
            GD + "（参评率）；评价期限未公布，默认 30 天 [I]", True,
        ),
        MetricDef(
            "repeat", "重复信访率", "Repeat petition rate", "rate", "%",
            "重件 ÷ 总件数", "repeat cases (重件) ÷ all cases",
            _WINDOW_ZH, _WINDOW_EN, GD + "（重复信访率 = 重件次 ÷ 总件次）", False,
        ),
        MetricDef(
            "backlog_cases", "积案件数", "Backlog cases", "count", "件",
            "标记为积案的件数", "cases flagged 积案",
            _WINDOW_ZH, _WINDOW_EN, "国家信访信息系统 积案标志", False,
        ),
        MetricDef(
            "backlog_open", "积案未化解件数", "Backlog cases open", "count", "件",
            "积案中截至数据日仍未办结的件数", "backlog cases still open on the data date",
            _WINDOW_ZH, _WINDOW_EN, "国家信访信息系统 积案标志；包案化解", False,
        ),
        MetricDef(
            "backlog_resolved", "积案已化解件数", "Backlog cases resolved", "count", "件",
            "积案中截至数据日已办结的件数", "backlog cases closed by the data date",
            _WINDOW_ZH, _WINDOW_EN, "临沂市信访局公开口径（累计化解积案）", True,
        ),
        MetricDef(
            "backlog_clearance", "积案化解率", "Backlog clearance rate", "rate", "%",
            "已化解（截至数据日已办结）积案 ÷ 积案", "backlog cases closed by the data date ÷ "
            "backlog cases",
            "统计期内登记的积案 [I]", "backlog cases registered in the window [I]",
            "临沂市信访局公开口径（累计化解 ÷ 交办积案）", True,
        ),
        MetricDef(
            "local_resolution", "属地化解率", "Local resolution rate", "rate", "%",
            "在区、镇街、村居登记的件数 ÷ 登记机构级别已知的件数",
            "cases registered at district, street or village level ÷ cases whose registering "
            "level is known",
            _WINDOW_ZH + "；按问题属地归入网格 [I]",
            _WINDOW_EN + ", attributed to the place of the problem [I]",
            "信访工作条例 第十五条（小事不出村、大事不出镇、矛盾不上交）；口径 [I]", True,
        ),
        MetricDef(
            "days_to_close_median", "办结用时中位数", "Median days to close", "days", "天",
            "办结时间 − 登记时间（天）的中位数", "median of (closed − registered) in days",
            "统计期内办结的件（按办结日期）[I]", "cases closed in the window (by closing date) [I]",
            "信访工作条例 第二十二条、第三十四条（时限）", False,
        ),
        MetricDef(
            "days_to_close_p90", "办结用时第90百分位", "90th percentile days to close", "days",
            "天", "办结时间 − 登记时间（天）的第 90 百分位（线性插值）",
            "90th percentile (linear) of (closed − registered) in days",
            "统计期内办结的件（按办结日期）[I]", "cases closed in the window (by closing date) [I]",
            "信访工作条例 第二十二条、第三十四条（时限）", False,
        ),
        MetricDef(
            "covered_area_share", "覆盖面积占比", "Covered area share", "share", "%",
            "站点服务半径内面积 ÷ 单元面积（平面投影计算）",
            "area within reach of any station ÷ unit area (EPSG:4547)",
            "当前边界与站点；半径：信访超市/综治中心 1000 米，服务站/调解室 500 米（可配置）",
            "current boundaries and stations; reach 1000 m for halls/centres, 500 m for "
            "stations/mediation rooms (configurable)",
            "GB 50180-2018《城市居住区规划设计标准》十五分钟生活圈 [I]", True,
        ),
        MetricDef(
            "covered_pop_share", "覆盖人口占比", "Covered population share", "share", "%",
            "站点服务半径内人口 ÷ 人口；村居内人口按面积均匀分布，上级由村居汇总",
            "population within reach ÷ population; population spread uniformly over each "
            "village's area, upper levels summed from villages",
            "同上", "as above", "GB 50180-2018 生活圈；人口加权覆盖 [I]", True,
        ),
        MetricDef(
            "nearest_hall_m", "最近信访超市距离", "Distance to nearest petition hall", "distance",
            "米", "单元人口中心到最近区信访超市的直线距离",
            "straight-line distance from the unit's population centre to the nearest hall",
            "人口中心 = 面积质心（质心在单元外时取内点）",
            "population centre = area centroid (a point inside when the centroid is outside)",
            "GB 50180-2018 步行距离", False,
        ),
        MetricDef(
            "nearest_centre_m", "最近综治中心距离", "Distance to nearest street centre",
            "distance", "米", "单元人口中心到最近镇街综治中心的直线距离",
            "straight-line distance from the population centre to the nearest centre",
            "同上", "as above", "GB 50180-2018 步行距离", False,
        ),
        MetricDef(
            "nearest_station_m", "最近村居服务站距离", "Distance to nearest village station",
            "distance", "米", "单元人口中心到最近村居服务站的直线距离",
            "straight-line distance from the population centre to the nearest station",
            "同上", "as above", "GB 50180-2018 步行距离", False,
        ),
        MetricDef(
            "nearest_mediation_m", "最近人民调解工作室距离", "Distance to nearest mediation room",
            "distance", "米", "单元人口中心到最近人民调解工作室的直线距离",
            "straight-line distance from the population centre to the nearest mediation room",
            "同上", "as above", "GB 50180-2018 步行距离", False,
        ),
        MetricDef(
            "has_required_station", "按要求设站", "Has its required station", "flag", "",
            "镇街有综治中心、村居有服务站、区有信访超市（站点服务于本单元或位于其内）",
            "a street has a centre, a village a station, a district a hall (serving the unit "
            "or located inside it)",
            "当前边界与站点", "current boundaries and stations",
            "广州市综治中心建设（1 市 + 11 区 + 177 镇街）", True,
        ),
    )
}
"""Every metric by key, in display order."""


def render_markdown() -> str:
    """Render docs/metrics.md from :data:`METRICS` (the file must equal this text)."""
    lines = [
        "# 指标定义 / Metric definitions",
        "",
        "<!-- Generated from layers/definitions.py by `python -m layers.definitions`; "
        "do not edit by hand. -->",
        "",
        "Rates are computed per unit from summed numerators and denominators (never averaged);",
        "every rate is shown with its numerator (分子) and denominator (分母). A unit whose",
        "denominator is below `min_cases_for_rate` (default 10) keeps its rate but is not ranked",
        "(样本不足，不参与排名). Timestamps are compared as calendar days. The data date (数据截止",
        "时间, *as of*) is the latest timestamp in the cases table. [I] marks a design choice",
        "where no official rule is published.",
        "",
        "- 归属 / attribution: a case belongs to the unit of its 问题属地 (place of the problem),",
        "  taken from its finest known code (grid → village → street → district), so a case counts",
        "  in every ancestor of its cell and children add up to their parent.",
        "- 未落格 / unassigned: cases without a code at the level shown are counted in the city",
        "  row (全市) and shown as their own row; a case known only at street level is unassigned",
        "  among villages but counted in its street.",
        "- 汇总 / roll-ups: every rate of a parent or of the city is its summed numerator over its",
        "  summed denominator, never an average of children's rates.",
        "- 口径 / cohorts: the reporting window applies to each metric's own cohort date (below);",
        "  events after the data date are ignored. 初件 = not flagged 重件 (is_repeat). A window",
        "  without an end date ends on the data date (统计期未设结束日期时截至数据截止日), so a",
        "  case whose deadline is still ahead belongs to a later reporting period.",
        "",
    ]
    for m in METRICS.values():
        better = {True: "越高越好 / higher is better", False: "越低越好 / lower is better",
                  None: "—"}[m.higher_is_better]
        lines += [
            f"## {m.label_zh} / {m.label_en} (`{m.key}`)",
            "",
            f"- 类型 / kind: {m.kind}; 单位 / unit: {m.unit or '—'}; {better}",
            f"- 公式: {m.formula_zh}",
            f"- Formula: {m.formula_en}",
            f"- 口径: {m.cohort_zh}",
            f"- Cohort: {m.cohort_en}",
            f"- 来源 / source: {m.source}",
            "",
        ]
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover - regenerates docs/metrics.md
    from pathlib import Path

    target = Path(__file__).resolve().parent.parent / "docs" / "metrics.md"
    target.write_text(render_markdown(), encoding="utf-8")
    print(f"wrote {target}")
