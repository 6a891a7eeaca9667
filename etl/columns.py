"""Canonical column names, the Chinese headers they come under, and value vocabularies.

Every source is renamed to one set of canonical English columns (字段) before cleaning,
so the rest of the ETL never sees a source's own headers. The canonical case columns
are the columns of ``geo.schema.cases`` plus the input-only columns listed in
:data:`INPUT_ONLY_CASE_COLUMNS` (the raw ID number, which is hashed and dropped, and the
code/name hints used to attach a case without coordinates). ``docs/columns.md`` lists
them with every alias.

Values of the coded dimensions (信访内容分类, 信访目的, 信访形式, 满意度, 登记机构级别,
办理状态) are normalised to one vocabulary here too, as vectorised dictionary lookups.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from geo.errors import SourceError
from geo.schema import cases as cases_table
from geo.vocab import (
    CATEGORIES,
    CHANNELS,
    OLD_CATEGORY_MAP,
    PURPOSES,
    RATING_STATES,
    RATINGS,
    REGISTERED_LEVELS,
    STATUSES,
)

# -- canonical columns ---------------------------------------------------------------------

INPUT_ONLY_CASE_COLUMNS: tuple[str, ...] = (
    "petitioner_id",  # 身份证号: hashed with the salt, never stored
    "problem_place_code",  # 问题属地代码: a division code of any level
    "problem_place",  # 问题属地: a division name (or a code written in the name column)
)
"""Input columns that are not stored as such but feed hashing and attaching."""

_NOT_FROM_SOURCE = {"row_hash", "run_id", "updated_at", "boundary_version", "attach_method",
                    "attach_distance_m", "attach_level", "attach_note", "attach_candidates",
                    "address_match"}

CASE_COLUMNS: tuple[str, ...] = tuple(
    c.name for c in cases_table.c if c.name not in _NOT_FROM_SOURCE
) + INPUT_ONLY_CASE_COLUMNS
"""Canonical case columns a source may provide."""

TIMESTAMP_COLUMNS: tuple[str, ...] = (
    "registered_at", "transferred_at", "accepted_at", "due_at", "extended_at", "replied_at",
    "closed_at", "followed_up_at", "rated_at", "reviewed_at", "rechecked_at", "backlog_at",
)
BOOLEAN_COLUMNS: tuple[str, ...] = ("extended", "is_repeat", "is_backlog", "synthetic")
PERSONAL_INPUT_COLUMNS: tuple[str, ...] = ("petitioner_name", "petitioner_phone", "petitioner_id")

STATION_COLUMNS: tuple[str, ...] = (
    "station_id", "name", "station_type", "lon", "lat", "serves_code", "address", "synthetic",
    "village_code", "street_code", "district_code",
)

# -- header aliases ------------------------------------------------------------------------

CASE_ALIASES: dict[str, tuple[str, ...]] = {
    "case_id": ("信访件编号", "信访编号", "件编号", "编号", "案件编号", "工单编号", "xfjbh",
                "case_no", "id", "service_request_id"),
    "registered_at": ("登记时间", "登记日期", "djsj", "requested_datetime", "created_at"),
    "transferred_at": ("转送时间", "交办时间", "转送交办时间", "转办时间"),
    "accepted_at": ("受理时间", "受理日期", "slsj"),
    "due_at": ("办理期限", "办结期限", "限办截止时间", "xbjzsj", "expected_datetime"),
    "extended": ("是否延期", "延期", "延期标志"),
    "extended_at": ("延期时间", "延期批准时间", "延期日期"),
    "replied_at": ("答复时间", "答复日期", "dfsj"),
    "closed_at": ("办结时间", "办结日期", "bjsj"),
    "followed_up_at": ("回访时间", "回访日期"),
    "rating": ("满意度", "评价结果", "满意度评价", "评价"),
    "rated_at": ("评价时间", "评价日期"),
    "rating_state": ("评价状态",),
    "reviewed_at": ("复查时间", "复查意见时间", "复查日期"),
    "rechecked_at": ("复核时间", "复核意见时间", "复核日期"),
    "status": ("办理状态", "状态", "当前状态"),
    "category": ("问题类别", "内容分类", "信访内容分类", "一级分类", "问题分类", "service_name"),
    "purpose": ("信访目的", "目的"),
    "channel": ("信访形式", "渠道", "信访渠道", "来源渠道"),
    "is_repeat": ("是否重复", "初重件", "初重件标志", "重复信访标志", "是否重件"),
    "repeat_of": ("重复件编号", "原件编号", "重复信访件编号", "重复件原件编号"),
    "is_backlog": ("是否积案", "积案", "积案标志"),
    "backlog_leader": ("包案领导",),
    "backlog_at": ("积案交办时间", "列为积案时间", "积案时间"),
    "registered_level": ("登记机构级别", "登记级别", "信访来源层级"),
    "handling_unit": ("承办单位", "责任单位", "办理单位", "agency_responsible"),
    "people_count": ("涉及人数", "人数", "信访人数", "来访人数", "集体访人数"),
    "lon": ("经度", "longitude", "lng", "long", "x"),
    "lat": ("纬度", "latitude", "y"),
    "address": ("地址", "问题发生地", "问题发生地址", "发生地址", "详细地址"),
    "village_code": ("村居代码", "社区代码", "村居编码", "村社区代码"),
    "street_code": ("镇街代码", "街道代码", "镇街编码"),
    "district_code": ("区代码", "区县代码", "区划代码"),
    "grid_code": ("网格代码", "网格编码"),
    "problem_place_code": ("问题属地代码", "wtsddm"),
    "problem_place": ("问题属地", "属地"),
    "petitioner_name": ("信访人", "姓名", "信访人姓名"),
    "petitioner_phone": ("联系电话", "电话", "手机号", "手机号码"),
    "petitioner_id": ("身份证号", "身份证号码", "证件号码"),
    "petitioner_id_hash": (),
    "description": ("内容", "诉求", "信访内容", "诉求内容", "反映内容", "问题描述", "信访事项摘要",
                    "事项摘要", "摘要"),
    "synthetic": ("合成数据", "演示数据"),
}
"""Canonical case column → the headers it is known by (matching ignores case and spaces)."""

CASE_MEANINGS: dict[str, str] = {
    "case_id": "信访件编号 (required column)",
    "registered_at": "登记时间 (required value)",
    "transferred_at": "转送/交办",
    "accepted_at": "受理 (for a 不予受理 case: the decision)",
    "due_at": "办理期限",
    "extended": "延期 (+30 days)",
    "extended_at": "延期 approved (after 受理)",
    "replied_at": "答复",
    "closed_at": "办结",
    "followed_up_at": "回访 (after 答复)",
    "rating": "满意/基本满意/不满意",
    "rated_at": "评价 (after 答复)",
    "rating_state": "待评价/已评价/超期未评价",
    "reviewed_at": "复查 opinion (after 答复; Art. 35)",
    "rechecked_at": "复核 opinion (after 复查; Art. 36)",
    "status": "registered/accepted/replied/closed/not_accepted",
    "category": "信访内容分类 (19 first-level classes)",
    "purpose": "求决/申诉/揭发控告/意见建议/其他",
    "channel": "来访/来信/网上/电话/二维码/网格员上报",
    "is_repeat": "重件 (vs 初件)",
    "repeat_of": "the case it repeats, where known",
    "is_backlog": "积案",
    "backlog_leader": "包案领导",
    "backlog_at": "listed as 积案 (after 登记)",
    "registered_level": "登记机构级别: 国家/省/市/区/镇街/村居",
    "handling_unit": "承办单位",
    "people_count": "涉及人数: a whole number 1–100,000 (5 or more: 集体访)",
    "lon": "经度 (in the --crs system; stored WGS-84)",
    "lat": "纬度 (in the --crs system; stored WGS-84)",
    "address": "地址: text; read district → street → village to attach when there is no point",
    "village_code": "村居代码: hint when there is no point; stored value comes from the attached unit",
    "street_code": "镇街代码: hint (the address is read inside it); stored value from the attached unit",
    "district_code": "区代码: hint (the address is read inside it); stored value from the attached unit",
    "grid_code": "网格代码: hint; stored value comes from the attached unit",
    "petitioner_name": "信访人 (masked in exports)",
    "petitioner_phone": "联系电话 (masked in exports)",
    "petitioner_id_hash": "already-hashed ID (kept if no raw ID is given)",
    "description": "信访内容/诉求",
    "synthetic": "demo data flag",
    "petitioner_id": "身份证号: hashed (salted SHA-256) into petitioner_id_hash, never stored",
    "problem_place_code": "问题属地代码: any-level division code, used to attach without a point",
    "problem_place": "问题属地: a division name or code; read before the address",
}
"""What each canonical case column means (docs/columns.md is generated from this)."""

STATION_ALIASES: dict[str, tuple[str, ...]] = {
    "station_id": ("站点编号", "编号", "id"),
    "name": ("站点名称", "名称"),
    "station_type": ("站点类型", "类型", "type"),
    "lon": ("经度", "longitude", "lng", "long", "x"),
    "lat": ("纬度", "latitude", "y"),
    "serves_code": ("服务单位代码", "服务范围", "服务区划代码", "所属区划代码"),
    "address": ("地址", "详细地址"),
    "synthetic": ("合成数据", "演示数据"),
    "village_code": ("村居代码",),
    "street_code": ("镇街代码",),
    "district_code": ("区代码",),
}

# -- value aliases (the canonical values are geo.vocab's) ------------------------------------

_CATEGORY_EXTRA = {
    # frequent second-level names and Open311 service names seen in practice
    "物业服务": "城乡建设", "违法建设": "城乡建设", "房屋征收": "城乡建设", "城市管理": "城乡建设",
    "拖欠农民工工资": "劳动和社会保障", "劳动关系": "劳动和社会保障", "社会保险": "劳动和社会保障",
    "医患纠纷": "卫生健康", "土地征收": "自然资源", "社会治安": "政法", "噪音污染": "生态环境",
    "环境污染": "生态环境", "消费投诉": "市场监管", "食品药品": "市场监管", "交通": "交通运输",
    "退役安置": "军队事务", "社会救助": "民政与应急", "村务管理": "农村农业",
    "streetlight": "城乡建设", "pothole": "交通运输", "graffiti": "城乡建设",
    "noise": "生态环境", "trash": "生态环境", "other": "其他",
}

_PURPOSE_ALIASES = {
    "求决类": "求决", "求助": "求决", "申诉类": "申诉", "投诉": "申诉", "揭发控告类": "揭发控告",
    "揭发": "揭发控告", "控告": "揭发控告", "举报": "揭发控告", "检举": "揭发控告",
    "意见建议类": "意见建议", "建议": "意见建议", "意见": "意见建议", "咨询": "其他",
    "咨询类": "其他",
}

_CHANNEL_ALIASES = {
    "网信": "网上", "网上信访": "网上", "网络": "网上", "网上投诉": "网上", "网站": "网上",
    "app": "网上", "微信": "网上", "走访": "来访", "信件": "来信", "书信": "来信",
    "热线": "电话", "12345": "电话", "电话信访": "电话", "扫码": "二维码", "网格员": "网格员上报",
    "网格上报": "网格员上报",
}

_RATING_ALIASES = {
    "非常满意": "满意", "比较满意": "基本满意", "一般": "基本满意", "很不满意": "不满意",
    "非常不满意": "不满意", "satisfied": "满意", "basically satisfied": "基本满意",
    "dissatisfied": "不满意",
}

_LEVEL_ALIASES = {
    "国家级": "国家", "国家信访局": "国家", "中央": "国家", "省级": "省", "省信访局": "省",
    "市级": "市", "区级": "区", "县": "区", "县级": "区", "区县": "区", "镇": "镇街",
    "街道": "镇街", "乡镇": "镇街", "镇街级": "镇街", "村": "村居", "社区": "村居",
    "村居级": "村居",
}

_STATUS_ALIASES = {
    "登记": "registered", "已登记": "registered", "受理": "accepted", "已受理": "accepted",
    "办理中": "accepted", "答复": "replied", "已答复": "replied", "办结": "closed",
    "已办结": "closed", "不予受理": "not_accepted", "不再受理": "not_accepted",
    "open": "registered", "closed": "closed",
}

TRUE_WORDS = frozenset(
    {"是", "1", "true", "t", "y", "yes", "重件", "重复", "积案", "延期", "已延期"}
)


# -- public API ----------------------------------------------------------------------------


def read_mapping(path: str | Path | None) -> dict[str, str]:
    """Read a header mapping file: JSON ``{"source header": "canonical name"}``.

    Raises
    ------
    SourceError
        When the file is not a JSON object of strings, or names an unknown canonical column.
    """
    if path is None:
        return {}
    try:
        mapping = json.loads(Path(path).read_text(encoding="utf-8-sig"))
    except (OSError, ValueError) as exc:
        raise SourceError(
            f"列名映射文件无法读取：{path}（{exc}）/ cannot read the mapping file {path}: {exc}"
        ) from exc
    if not isinstance(mapping, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()
    ):
        raise SourceError(
            f"列名映射文件应为 {{\"源列名\": \"标准列名\"}} 形式的 JSON：{path} / "
            f"the mapping file must be a JSON object {{\"source header\": \"canonical\"}}"
        )
    return mapping


def canonical_headers(
    headers: list[str],
    *,
    aliases: Mapping[str, tuple[str, ...]] = CASE_ALIASES,
    mapping: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Map source headers to canonical names; headers not recognised are left out.

    The mapping file wins over the built-in aliases; when two headers map to the same
    canonical column, the first one wins (e.g. 转送时间 before 交办时间).

    Raises
    ------
    SourceError
        When the mapping names a canonical column that does not exist.
    """
    known = set(aliases)
    mapping = dict(mapping or {})
    bad = sorted(v for v in mapping.values() if v not in known)
    if bad:
        raise SourceError(
            f"列名映射指向未知的标准列：{', '.join(bad)} / the mapping names unknown canonical "
            f"columns: {', '.join(bad)} (known: {', '.join(sorted(known))})"
        )
    lookup = _alias_lookup(aliases)
    mapping_keys = {header_key(k): v for k, v in mapping.items()}
    result: dict[str, str] = {}
    taken: set[str] = set()
    for header in headers:
        key = header_key(header)
        target = mapping_keys.get(key) or lookup.get(key)
        if target is not None and target not in taken:
            result[header] = target
            taken.add(target)
    return result


def normalise_category(values: pd.Series) -> pd.Series:
    """Map category text onto the 19 first-level classes; unknown text becomes 其他.

    Accepts the 19 names, the older 17 names (国土资源 → 自然资源 …), a few frequent
    second-level names, and "一级/二级" or "一级-二级" paths (the first part is used).
    """
    table = {c: c for c in CATEGORIES} | OLD_CATEGORY_MAP | _CATEGORY_EXTRA
    return _lookup(values, table, "其他", first_part=True)


def normalise_purpose(values: pd.Series) -> pd.Series:
    """Map 信访目的 text onto 求决/申诉/揭发控告/意见建议/其他 (unknown → 其他)."""
    return _lookup(values, {p: p for p in PURPOSES} | _PURPOSE_ALIASES, "其他")


def normalise_channel(values: pd.Series) -> pd.Series:
    """Map 信访形式 onto 来访/来信/网上/电话/二维码/网格员上报 (网信 → 网上; unknown → empty)."""
    return _lookup(values, {c: c for c in CHANNELS} | _CHANNEL_ALIASES, None)


def normalise_rating(values: pd.Series) -> pd.Series:
    """Map 满意度 text onto 满意/基本满意/不满意 (unknown → empty, i.e. not rated)."""
    return _lookup(values, {r: r for r in RATINGS} | _RATING_ALIASES, None)


def normalise_registered_level(values: pd.Series) -> pd.Series:
    """Map 登记机构级别 text onto 国家/省/市/区/镇街/村居 (unknown → empty)."""
    table = {v: v for v in REGISTERED_LEVELS} | _LEVEL_ALIASES
    return _lookup(values, table, None)


def normalise_status(values: pd.Series) -> pd.Series:
    """Map a given 办理状态 onto the status codes (unknown → empty, derived later)."""
    return _lookup(values, {s: s for s in STATUSES} | _STATUS_ALIASES, None)


def normalise_rating_state(values: pd.Series) -> pd.Series:
    """Keep a given 评价状态 when it is one of 待评价/已评价/超期未评价 (else empty)."""
    return _lookup(values, {s: s for s in RATING_STATES}, None)


def parse_boolean(values: pd.Series) -> pd.Series:
    """Read 是/否, 1/0, true/false, 初件/重件 … as booleans (anything else is False)."""
    if pd.api.types.is_bool_dtype(values.dtype):
        return values.astype(bool)
    if pd.api.types.is_numeric_dtype(values.dtype):
        return values.fillna(0).astype(float) != 0
    table = dict.fromkeys(TRUE_WORDS, "1")
    return _lookup(values, table, None).notna().astype(bool)


def columns_markdown() -> dict[str, str]:
    """The generated tables of docs/columns.md, by section name (cases, stations).

    ``python -m etl.columns`` rewrites them in place; a test fails when they are stale.
    """
    rows = ["| canonical | meaning | headers accepted (besides the canonical name) |",
            "|---|---|---|"]
    for name in CASE_COLUMNS:
        aliases = ", ".join(CASE_ALIASES.get(name, ())) or "–"
        rows.append(f"| `{name}` | {CASE_MEANINGS[name]} | {aliases} |")
    stations = ["| canonical | headers accepted |", "|---|---|"]
    for name, aliases in STATION_ALIASES.items():
        stations.append(f"| `{name}` | {', '.join(aliases)} |")
    return {"cases": "\n".join(rows), "stations": "\n".join(stations)}


# -- helpers -------------------------------------------------------------------------------


_SPACES = re.compile(r"[\s\u3000_]+")


def header_key(header: object) -> str:
    """The key a header is matched by: no spaces or underscores, lower case, ASCII brackets."""
    text = str(header).replace("（", "(").replace("）", ")")
    return _SPACES.sub("", text).lower()


def _alias_lookup(aliases: Mapping[str, tuple[str, ...]]) -> dict[str, str]:
    lookup: dict[str, str] = {}
    for canonical, names in aliases.items():
        lookup.setdefault(header_key(canonical), canonical)
        for name in names:
            lookup.setdefault(header_key(name), canonical)
    return lookup


_PATH_SPLIT = re.compile(r"[/／\-—>＞|｜]")


def _lookup(
    values: pd.Series, table: dict[str, str], default: str | None, *, first_part: bool = False
) -> pd.Series:
    """Map values through a dictionary, case-insensitively, over the distinct values only.

    The file's values are factorised first, so a million rows cost one lookup per
    distinct spelling (a few dozen), not one per row.
    """
    keys = {k.lower(): v for k, v in table.items()}
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    resolved = []
    for value in uniques:
        text = str(value).strip()
        if first_part:
            text = _PATH_SPLIT.split(text, maxsplit=1)[0].strip()
        resolved.append(keys.get(text.lower(), default) if text else None)
    codes = np.where(codes < 0, len(resolved), codes)  # missing → the trailing None
    mapped = pa.array(resolved + [None], type=pa.large_string()).take(codes)
    return pd.Series(pd.array(mapped, dtype="str"), index=values.index)


if __name__ == "__main__":  # python -m etl.columns: refresh the generated tables of the docs
    from etl.reasons import reasons_markdown

    doc = Path(__file__).resolve().parents[1] / "docs" / "columns.md"
    text = doc.read_text(encoding="utf-8")
    for section, table in {**columns_markdown(), "reasons": reasons_markdown()}.items():
        text = re.sub(rf"(<!-- columns:{section} -->\n).*?(<!-- /columns:{section} -->)",
                      lambda m, t=table: m.group(1) + t + "\n" + m.group(2), text, flags=re.S)
    doc.write_text(text, encoding="utf-8")
