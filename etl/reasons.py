"""Why a row was rejected (拒收原因): every reason code and the message a clerk reads.

One table for every source and step (reading, cleaning, stations), so a reason code
means the same wherever it appears and docs/columns.md lists them all. Messages are
Chinese (for the clerk); those about the file's structure (a GeoJSON feature, a broken
line) are bilingual, since they concern the export tool as much as the clerk.
"""

from __future__ import annotations

REASONS: dict[str, str] = {
    "missing_case_id": "缺少信访件编号",
    "missing_registered_at": "缺少登记时间",
    "bad_date": "{label}无法识别：{value}",
    "future_date": "{label}晚于导入时间：{value}（导入于 {now}）",
    "date_order": "{label}早于{before}：{value}",
    "bad_coordinates": "经纬度不是有效数字，且无法按区划代码或地址落格：{value}",
    "out_of_extent": "坐标不在网格范围内，且无法按区划代码或地址落格：{value}",
    "duplicate_in_file": "同一文件中信访件编号重复（保留最后一行）",
    "too_long": "{label}过长：{value} 字，上限 {limit} 字",
    "nul_character": "{label}含空字符（NUL，多为导出工具损坏），无法入库",
    "ragged_row": ("本行有 {value} 个字段，表头有 {limit} 列（逗号多了或少了）/ the line has "
                   "{value} fields, the header {limit}"),
    "undecodable": ("本行含无法按 {value} 解码的字节（文件损坏或混有其他编码）/ the line holds "
                    "bytes that are not {value} text"),
    "bad_feature": "GeoJSON 要素无效：{value}",
    "bad_record": "JSON 记录无效：{value}",
    "missing_station_id": "缺少站点编号",
    "missing_name": "缺少站点名称",
    "bad_station_type": (
        "站点类型无法识别：{value}（应为区信访超市/镇街综治中心/村居服务站/人民调解工作室）"
    ),
    "missing_coordinates": "缺少经纬度（服务站点必须有位置）",
    "bad_people_count": "涉及人数应为 1 至 100000 的整数：{value}",
}
"""Every reject reason code and its message template."""


def reason_text(code: str, **values: object) -> str:
    """Fill a reason template: the message a clerk reads for a rejected row."""
    fields = {"label": "", "value": "", "limit": "", "before": "登记时间", "now": ""}
    fields.update(values)
    return REASONS[code].format(**fields)


REASON_NOTES: dict[str, str] = {
    "bad_date": "any timestamp column",
    "future_date": "later than the load time + `future_tolerance_min` (due dates excepted)",
    "date_order": "a lifecycle step more than a minute before an earlier one (clean.LIFECYCLE_ORDER)",
    "too_long": "stored text wider than its column (信访件编号 64) or than `max_text_chars`",
    "nul_character": "PostgreSQL cannot store it; refused on SQLite too",
    "ragged_row": "CSV",
    "undecodable": "CSV",
    "bad_feature": "GeoJSON: not an object, not a Point, coordinates not [lon, lat] numbers",
    "bad_record": "JSON: a record that is not an object",
    "missing_station_id": "stations",
    "missing_name": "stations",
    "bad_station_type": "stations",
    "missing_coordinates": "stations need a point",
}


def reasons_markdown() -> str:
    """The reject-reason table of docs/columns.md, generated from :data:`REASONS`."""
    rows = ["| code | message (for the clerk) | when |", "|---|---|---|"]
    for code, message in REASONS.items():
        rows.append(f"| `{code}` | {message} | {REASON_NOTES.get(code, '')} |")
    return "\n".join(rows)
