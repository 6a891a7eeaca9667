"""The case export (案件表): the cases of a view, with their deadlines' state, in chunks.

The same selection as the view's counts (:func:`layers.metrics.case_selection` inside the unit),
ordered by registration (newest first), and the same rule masks for the state columns
(办理期限状态, 评价状态 …), so an export says what the screen says. Chunks of rows are chosen
on the columnar table and only their display columns are read from SQL, so memory does not grow
with the size of the city and the first rows leave at once. Personal fields are masked
(:func:`geo.privacy.mask_frame`); the ID hash is never included.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime

import numpy as np
import pandas as pd

from geo.privacy import mask_frame
from geo.store import Store
from geo.vocab import (
    ATTACH_METHODS,
    LEVEL_NAMES_ZH,
    RATED,
    RATING_EXPIRED,
    RATING_PENDING,
    STATUS_ZH,
)
from layers.casedata import NULL, CaseTable, as_datetime64, case_table
from layers.filters import Filters
from layers.lists import display_columns
from layers.metrics import case_selection
from layers.rules import CaseState, Rules, case_state, deadline_text

CHUNK_ROWS = 20_000
EXPORT_COLUMNS_ZH: dict[str, str] = {
    "case_id": "信访件编号",
    "registered_at": "登记时间",
    "accepted_at": "受理时间",
    "due_at": "办理期限",
    "replied_at": "答复时间",
    "closed_at": "办结时间",
    "status_zh": "状态",
    "acceptance_state": "受理期限状态",
    "handling_state": "办理期限状态",
    "category": "内容分类",
    "purpose": "信访目的",
    "channel": "信访渠道",
    "is_repeat": "重复信访",
    "is_backlog": "积案",
    "backlog_leader": "包案领导",
    "registered_level": "登记机构级别",
    "handling_unit": "承办单位",
    "rating": "评价",
    "rating_state": "评价状态",
    "district_code": "区代码",
    "street_code": "镇街代码",
    "village_code": "村居代码",
    "attach_method": "落格方式",
    "attach_distance_m": "落格距离（米）",
    "attach_level": "落格层级",
    "attach_note": "落格说明",
    "attach_candidates": "候选单位",
    "address_match": "地址匹配",
    "lon": "经度",
    "lat": "纬度",
    "address": "地址",
    "petitioner_name": "信访人",
    "petitioner_phone": "联系电话",
}
"""Columns of the case export, in order, with their Chinese headers."""
_SQL_COLUMNS = ("backlog_leader", "registered_level", "handling_unit", "rating",
                "attach_distance_m", "attach_level", "attach_note", "attach_candidates",
                "address_match", "lon", "lat", "address", "petitioner_name", "petitioner_phone")


def export_notes(*, unit_name: str, unit_level: str, view_title: str, filters: Filters,
                 as_of: datetime | None, rows: int, limit: int | None = None,
                 account_area: str | None = None) -> pd.DataFrame:
    """The 说明 sheet of an export: what the file holds, in Chinese, one fact a row.

    A forwarded file must say on its own what it is: the unit and view, the filters in words
    (not a URL), the data date, how many rows it holds (and whether it was cut), and that
    personal fields are masked.
    """
    level = LEVEL_NAMES_ZH.get(unit_level, unit_level)
    held = f"{min(rows, limit) if limit else rows:,} 行"
    if limit is not None and rows > limit:
        held += f"（共 {rows:,} 件，按登记时间倒序只导出前 {limit:,} 行；完整数据请导出 CSV）"
    facts = [
        ("范围", f"{unit_name}（{level}）"),
        ("视图", view_title),
        *(("筛选条件", line) for line in filters.describe_zh()),
        ("数据截至", f"{as_of:%Y-%m-%d %H:%M}" if as_of else "无数据"),
        ("行数", held),
        ("排序", "按登记时间倒序（最新在前）"),
        ("个人信息", "信访人姓名、联系电话已脱敏；身份证号不导出"),
        ("导出时间", f"{datetime.now():%Y-%m-%d %H:%M}"),
    ]
    if account_area:
        facts.insert(1, ("导出账户辖区", account_area))
    return pd.DataFrame(facts, columns=["项目", "内容"])


def export_rows(store: Store, code: str, *, filters: Filters | None = None,
                as_of: datetime | date | None = None) -> np.ndarray:
    """The case-table positions an export of unit ``code`` holds, newest registration first."""
    table = case_table(store)
    state = case_state(table, Rules.of(store.settings), as_of)
    rows = np.flatnonzero(case_selection(table, state, filters or Filters()) & table.in_unit(code))
    registered = table.minutes("registered_at")[rows].astype(np.int64)
    return rows[np.argsort(-registered, kind="stable")]


def export_frames(
    store: Store,
    code: str,
    *,
    filters: Filters | None = None,
    as_of: datetime | date | None = None,
    limit: int | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> Iterator[pd.DataFrame]:
    """Yield the export of unit ``code`` as frames of at most ``chunk_rows`` rows.

    Columns are :data:`EXPORT_COLUMNS_ZH` (Chinese headers); an empty export yields one empty
    frame with the headers.
    """
    table = case_table(store)
    state = case_state(table, Rules.of(store.settings), as_of)
    rows = export_rows(store, code, filters=filters, as_of=as_of)
    if limit is not None:
        rows = rows[:limit]
    if not len(rows):
        yield pd.DataFrame(columns=list(EXPORT_COLUMNS_ZH.values()))
        return
    for start in range(0, len(rows), chunk_rows):
        yield _chunk(store, table, state, rows[start:start + chunk_rows])


def _chunk(store: Store, table: CaseTable, state: CaseState, rows: np.ndarray) -> pd.DataFrame:
    ids = list(table.case_id.take(rows))
    sql = display_columns(store.engine, ids, _SQL_COLUMNS).reindex(ids)
    status = pd.Series(table.categoricals["status"][rows], dtype=object)
    out = pd.DataFrame({"case_id": ids})
    for column in ("registered_at", "accepted_at", "due_at", "replied_at", "closed_at"):
        out[column] = as_datetime64(table.minutes(column)[rows])
    out["status_zh"] = status.map(STATUS_ZH).fillna(status).to_numpy(dtype=object)
    out["acceptance_state"] = _acceptance_state(state, rows)
    out["handling_state"] = _handling_state(table, state, rows)
    for column in ("category", "purpose", "channel"):
        out[column] = pd.Series(table.categoricals[column][rows], dtype=object).to_numpy()
    out["is_repeat"] = np.where(table.flags["is_repeat"][rows], "是", "否")
    out["is_backlog"] = np.where(table.flags["is_backlog"][rows], "是", "否")
    for column in _SQL_COLUMNS:
        out[column] = sql[column].to_numpy(dtype=object)
    out["rating_state"] = np.select(
        [state.mask("rated", rows), state.mask("rating_expired", rows),
         state.mask("rating_pending", rows)],
        [RATED, RATING_EXPIRED, RATING_PENDING], default="")
    for column in ("district_code", "street_code", "village_code"):
        out[column] = pd.Series(table.categoricals[column][rows], dtype=object).to_numpy()
    method = pd.Series(table.categoricals["attach_method"][rows], dtype=object)
    out["attach_method"] = method.map(ATTACH_METHODS).fillna(method).to_numpy(dtype=object)
    level = out["attach_level"]
    out["attach_level"] = level.map(LEVEL_NAMES_ZH).fillna(level).to_numpy(dtype=object)
    out = mask_frame(out)
    return out[list(EXPORT_COLUMNS_ZH)].rename(columns=EXPORT_COLUMNS_ZH)


def _acceptance_state(state: CaseState, rows: np.ndarray) -> list[str]:
    left = state.days_left("acceptance", rows)
    pending, refused, accepted = (state.mask(name, rows) for name in
                                  ("acceptance_pending", "not_accepted", "accepted"))
    out = []
    for j in range(len(rows)):
        if pending[j]:
            out.append(("超期未受理 " if left[j] < 0 else "待受理 ") + deadline_text(int(left[j])))
        elif refused[j]:
            out.append("不予受理")
        elif accepted[j]:
            out.append("已受理")
        else:
            out.append("")
    return out


def _handling_state(table: CaseTable, state: CaseState, rows: np.ndarray) -> list[str]:
    closed_day = table.days("closed_at")[rows]
    due = state.due_day("handling", rows)
    left = state.days_left("handling", rows)
    open_, soon, closed = (state.mask(name, rows) for name in
                           ("open", "handling_due_soon", "closed"))
    out = []
    for j in range(len(rows)):
        if open_[j] and left[j] != NULL:
            label = "超期未办结 " if left[j] < 0 else "临期 " if soon[j] else ""
            out.append(label + deadline_text(int(left[j])))
        elif closed[j] and due[j] != NULL:
            late = int(closed_day[j] - due[j])
            out.append("按期办结" if late <= 0 else f"超期办结（{late} 天）")
        elif closed[j]:
            out.append("已办结")
        else:
            out.append("")
    return out
