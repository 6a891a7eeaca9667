"""Every early-warning rule (预警规则) written out: level, signal, rule text and source.

The registry is the single statement of what each warning means: the rules in
:mod:`layers.warnings.signals`, :mod:`layers.warnings.surveillance` and
:mod:`layers.warnings.hotspots` implement exactly these texts, the 指标说明 page shows them,
and ``docs/warnings.md`` is generated from them (``python -m layers.warnings.definitions``; a
test fails when the file is stale). Thresholds in the texts are the defaults of settings;
:func:`rule_text` fills in the configured values.

A rule's ``version`` is part of every warning's id: changing what a rule means bumps it, so a
warning computed under the old meaning is never confused with one under the new.
"""

from __future__ import annotations

from dataclasses import dataclass

from geo.settings import Settings


@dataclass(frozen=True)
class RuleDef:
    """One warning rule.

    Attributes
    ----------
    key
        The ``rule`` column of the ``warning`` table.
    level
        red (强信号: a rule is met) or yellow (弱信号: a statistical test).
    lens
        望远镜 (risk across the city), 放大镜 (a case reminder) or 显微镜 (a unit's pain points),
        after the Guangzhou petition bureau's own words.
    text_zh
        The rule in Chinese, with ``{setting}`` placeholders filled by :func:`rule_text`.
    """

    key: str
    version: int
    level: str
    lens: str
    label_zh: str
    text_zh: str
    source: str


_DEADLINE_SOURCE = "信访工作条例 第二十二条、第二十三条、第三十四条；临期比例为工作口径 [I]"
RULES: dict[str, RuleDef] = {
    r.key: r
    for r in (
        RuleDef("acceptance_due_soon", 1, "red", "放大镜", "受理临期",
                "已登记、尚未作出受理（或不予受理）决定，登记后 {acceptance_days} 天受理期限已用去 "
                "{due_soon_pct}% 以上且未超期（与“受理临期”件数同一口径）。每件一条。",
                _DEADLINE_SOURCE),
        RuleDef("acceptance_overdue", 1, "red", "放大镜", "超期未受理",
                "已登记、尚未作出受理决定，且登记日 + {acceptance_days} 天已过（期限当日仍属按期；"
                "与“超期未受理”件数同一口径）。每件一条。", _DEADLINE_SOURCE),
        RuleDef("reply_due_soon", 1, "red", "放大镜", "答复临期",
                "已受理、尚未答复，办理期限（缺失时为受理 + {default_deadline_days} 天，延期再加 "
                "{extension_days} 天）已用去 {due_soon_pct}% 以上且未到期。每件一条。",
                _DEADLINE_SOURCE),
        RuleDef("reply_overdue", 1, "red", "放大镜", "超期未答复",
                "已受理、尚未答复，且办理期限已过。每件一条。", _DEADLINE_SOURCE),
        RuleDef("handling_due_soon", 1, "red", "放大镜", "办结临期",
                "已答复、尚未办结，办理期限已用去 {due_soon_pct}% 以上且未到期（"
                "未答复者归入“答复临期”，一件不重复预警）。每件一条。", _DEADLINE_SOURCE),
        RuleDef("handling_overdue", 1, "red", "放大镜", "超期未办结",
                "已答复、尚未办结，且办理期限已过（未答复者归入“超期未答复”）。"
                "每件一条。", _DEADLINE_SOURCE),
        RuleDef("repeat_petitioner", 1, "red", "放大镜", "重复访",
                "同一信访人（按加盐身份证号哈希识别，无身份证号时按电话号码）在截至数据日的 "
                "{repeat_window_days} 天内登记 {repeat_min_cases} 件及以上，或所涉问题属地达 "
                "{repeat_min_villages} 个及以上村居。按人归并为一条，列出其各件编号，不显示身份信息；"
                "预警单位为各件属地共同的最小上级单位。",
                "信访工作条例 第三十五条、第三十六条（复查复核后不再受理）；阈值为工作口径 [I]"),
        RuleDef("collective_people", 1, "red", "望远镜", "集体访",
                "近 {warning_lookback_days} 天内登记、涉及人数（涉及人数）达 {collective_min_people} "
                "人及以上的信访件。每件一条。",
                "信访工作条例 第二十条（多人走访推选代表不超过 5 人）；阈值 [I]"),
        RuleDef("collective_cluster", 1, "red", "望远镜", "群体性苗头",
                "同一内容分类的信访件，以其中最晚一件为中心 {cluster_radius_m} 米内（国家 2000 坐标系平面"
                "距离，含 {cluster_radius_m} 米）、{cluster_days} 个日历日内（最晚一件登记日及之前 "
                "{cluster_days_before} 天）来自 {cluster_min_cases} 名及以上不同信访人（同一人多件只计一次，"
                "身份不明者每件计一人）；共享案件的聚集合并为一条。只看近 {warning_lookback_days} 天。",
                "时空聚集规则；半径、天数、件数均可配置 [I]"),
        RuleDef("skip_level", 1, "red", "望远镜", "越级访",
                "近 {warning_lookback_days} 天内在市级及以上（市、省、国家）登记的信访件，且满足其一："
                "（1）以走访（来访）形式提出，而同一信访人此前从未在区、镇街、村居登记过信访件"
                "（属地未曾受理）；（2）登记时同一信访人在区、镇街、村居登记的信访件仍未办结。"
                "信访人身份不明的件不作判断。每件一条。",
                "信访工作条例 第二十条（走访应到本级或上一级机关）、第十五条（矛盾不上交）"),
        RuleDef("unhappy_no_followup", 1, "red", "放大镜", "不满意未跟进",
                "评价为“不满意”、截至数据日既无复查也无回访的信访件（评价日期缺失时按答复日期），"
                "只看近 {warning_lookback_days} 天内评价的件。每件一条。",
                "信访工作条例 第三十五条（复查）；国信发〔2022〕11号（满意度评价）"),
        RuleDef("backlog_no_leader", 1, "red", "放大镜", "积案无包案领导",
                "截至数据日仍未化解（未办结）且未明确包案领导的积案。每件一条。",
                "国家信访信息系统 积案标志；领导包案化解制度"),
        RuleDef("surge", 1, "yellow", "望远镜", "异常增多",
                "每个村居、镇街、区的每个内容分类：截至数据日的 7 天（本周）件数 x，与之前隔开 "
                "{surge_guard_weeks} 周保护期的 {surge_baseline_weeks} 周基线件数 b 比较。在“本周与基线"
                "发生率相同”的假设下，x 服从二项分布 B(x + b, 7 / (7 + 基线天数))（两泊松率的条件检验），"
                "单侧 p 值；所有单位 × 分类的检验一起做 Benjamini–Hochberg 校正，q ≤ {warning_fdr} 且 "
                "x ≥ {surge_min_cases}（一两件永远不算异常）为异常增多。期望值 = b × 7 / 基线天数，"
                "统计量为发生率比。数据不足 14 天基线的不做检验。同一单位、分类每个自然周至多一条。",
                "美国 CDC EARS 思路（基线 + 保护期）；条件泊松检验；Benjamini & Hochberg (1995)"),
        RuleDef("hotspot", 1, "yellow", "望远镜", "新发热点",
                "各村居近 28 天每万常住人口信访件数，以 queen 邻接（共边或共点）计算 Getis-Ord Gi*"
                "（含自身，二元权重），单侧 p = P(Z ≥ z)，全部村居一起做 "
                "Benjamini–Hochberg 校正；z > 0、q ≤ {warning_fdr} 且本村居件数高于按全市发生率的期望者为"
                "热点。本期为热点而上一期（再往前 28 天）不是者为“新发热点”，各发一条预警；持续热点只在"
                "地图上显示。同一村居每 28 天周期至多一条。",
                "Getis & Ord (1992); Ord & Getis (1995)；PySAL esda、libpysal"),
    )
}
"""Every rule, by key, in the order the 预警 page lists them."""

DEADLINE_RULES = ("acceptance_due_soon", "acceptance_overdue", "reply_due_soon", "reply_overdue",
                  "handling_due_soon", "handling_overdue")
STRONG_RULES = tuple(k for k, r in RULES.items() if r.level == "red")
WEAK_RULES = tuple(k for k, r in RULES.items() if r.level == "yellow")

MICROSCOPE_ZH = (
    ("over_represented", "高发类别",
     "本单位某内容分类件数占比与全市占比比较：单侧二项检验 P(X ≥ x | n, 全市占比)，"
     "各分类一起做 Benjamini–Hochberg 校正，q ≤ {warning_fdr} 且高于期望者为高发。"),
    ("recurrent_places", "重复发生地点",
     "同一 50 米网格（国家 2000 坐标系平面坐标取整）内有 2 件及以上的地点，按件数排序。"),
    ("handling_units", "承办单位按期办结率",
     "按承办单位统计按期办结率（与指标“按期办结率”同一口径：办理期限落在统计期内的初件），"
     "分母不少于 {min_cases_for_rate} 件者参与排序，最低者在前。"),
)
"""The 显微镜 (one unit's pain points) sections: key, title, rule text."""


def rule_text(key: str, settings: Settings) -> str:
    """Return a rule's Chinese text with the configured thresholds filled in."""
    return _fill(RULES[key].text_zh, settings)


def microscope_texts(settings: Settings) -> list[tuple[str, str, str]]:
    """Return the 显微镜 sections (key, title, text) with the configured values filled in."""
    return [(key, title, _fill(text, settings)) for key, title, text in MICROSCOPE_ZH]


def rules_version(settings: Settings) -> str:
    """One string naming every rule version and threshold: two runs agree when it does."""
    values = {name: getattr(settings, name) for name in _THRESHOLDS}
    rules = ",".join(f"{k}{r.version}" for k, r in RULES.items())
    import hashlib

    digest = hashlib.sha1(f"{rules}|{sorted(values.items())}".encode()).hexdigest()
    return digest[:16]


_THRESHOLDS = (
    "acceptance_days", "default_deadline_days", "extension_days", "due_soon_share",
    "collective_min_people", "cluster_radius_m", "cluster_days", "cluster_min_cases",
    "repeat_window_days", "repeat_min_cases", "repeat_min_villages", "warning_lookback_days",
    "surge_baseline_weeks", "surge_guard_weeks", "surge_min_cases", "warning_fdr",
    "followup_days", "rating_window_days", "min_cases_for_rate",
)
"""Settings the rules read (they key the run ledger)."""


def _fill(text: str, settings: Settings) -> str:
    values = {name: _number(getattr(settings, name)) for name in _THRESHOLDS}
    values["due_soon_pct"] = _number(round(100 * settings.due_soon_share))
    values["cluster_days_before"] = _number(settings.cluster_days - 1)
    return text.format(**values)


def _number(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def render_markdown(settings: Settings | None = None) -> str:
    """Render docs/warnings.md: every rule and 显微镜 section, with the default thresholds."""
    settings = settings or Settings()
    lines = [
        "# 预警规则 / Early-warning rules",
        "",
        "Generated from `layers/warnings/definitions.py` by `python -m layers.warnings.definitions`;",
        "a test fails when the two differ. 红 = strong signal (a rule is met), 黄 = weak signal",
        "(a statistical test). Thresholds shown are the defaults of the settings named in",
        "[settings.md](settings.md); the 指标说明 page shows the configured values.",
        "",
        "| 预警 | key (version) | 等级 | 镜 | 规则 | 依据 |",
        "|---|---|---|---|---|---|",
    ]
    for r in RULES.values():
        level = "红" if r.level == "red" else "黄"
        lines.append(f"| {r.label_zh} | `{r.key}` (v{r.version}) | {level} | {r.lens} | "
                     f"{rule_text(r.key, settings)} | {r.source} |")
    lines += ["", "## 显微镜 / one unit's pain points", "", "| 部分 | 规则 |", "|---|---|"]
    lines += [f"| {title} | {text} |" for _key, title, text in microscope_texts(settings)]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    from pathlib import Path

    target = Path(__file__).resolve().parents[2] / "docs" / "warnings.md"
    target.write_text(render_markdown(), encoding="utf-8")
