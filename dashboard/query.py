"""What the URL says: the current unit, metric, map overlays and filters of a view.

Everything a user chooses lives in the query string, so any view can be bookmarked and
shared. :class:`ViewState` is the parsed form; :meth:`ViewState.to_search` writes it back.

The query string is user input, and so is every value a callback receives (the browser can
send anything): :meth:`ViewState.parse` turns it into typed values or refuses each bad one
with a Chinese message, keeping the nearest valid view (an unknown metric becomes the default
metric, an unknown overlay or status is dropped, a malformed date is ignored, reversed dates
are swapped, a malformed unit code becomes the city). Pure: no dash imports.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date
from typing import Any
from urllib.parse import parse_qs, urlencode

from geo.codes import level_of
from geo.errors import CodeError
from geo.vocab import CITY_CODE
from layers.filters import ATTRIBUTE_LABELS_ZH, STATUS_FILTER_ZH, STATUS_VALUES, Filters

DEFAULT_METRIC = "on_time_completion"
OVERLAYS = ("points", "stations", "catchments", "uncovered")
"""Map overlays: case points 案件点位, stations 服务站点, catchments 服务半径, uncovered 未覆盖区域."""
MAP_METRICS = (
    "on_time_completion", "timely_acceptance", "first_time_resolution", "satisfaction",
    "participation", "repeat", "backlog_clearance", "local_resolution", "cases", "open_cases",
    "overdue_open", "cases_per_km2", "cases_per_10k", "covered_pop_share", "covered_area_share",
    "nearest_station_m",
)
"""Metrics the map can colour by (the map's metric choice)."""
PAGES = {"city": "/", "street": "/street", "village": "/village"}
MAX_SEARCH_CHARS = 4_000
"""A longer query string is refused whole (no view needs it)."""
MAX_VALUE_CHARS = 100
"""A longer filter value is refused (no category, purpose or channel is that long)."""
MAX_VALUES = 50
"""Values one filter keeps at most."""
_CODE = re.compile(r"\d{12}")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class ViewState:
    """The state of a view, as carried in its URL."""

    unit: str = CITY_CODE
    metric: str = DEFAULT_METRIC
    overlays: tuple[str, ...] = ()
    filters: Filters = Filters()
    fixed_breaks: bool = False
    """The map's 固定分级: fixed class breaks (comparable across screens) instead of breaks
    for the units shown (``breaks=fixed`` in the URL)."""

    @classmethod
    def parse(cls, params: Mapping[str, Any] | str | None) -> tuple[ViewState, tuple[str, ...]]:
        """Parse a query string or a mapping of key → value(s) into the nearest valid view.

        Returns
        -------
        (ViewState, tuple of str)
            The view, and one Chinese message per refused value (empty when all was valid).
            Unknown keys are ignored (links may carry other parameters).
        """
        problems: list[str] = []
        if params is None:
            params = {}
        if isinstance(params, str):
            if len(params) > MAX_SEARCH_CHARS:
                return cls(), ("网址参数过长，已显示默认视图。",)
            params = parse_qs(params.lstrip("?"), keep_blank_values=False)
        if not isinstance(params, Mapping):
            return cls(), ("网址参数无法识别，已显示默认视图。",)
        read = _Reader(params, problems)

        unit = read.last("unit")
        if unit is not None and not _valid_code(unit):
            problems.append(f"网格单元代码“{shown(unit)}”无效，已显示全市。")
            unit = None
        metric = read.last("metric")
        if metric is not None and metric not in MAP_METRICS:
            problems.append(f"未知的地图指标“{shown(metric)}”，已显示按期办结率。")
            metric = None
        overlays: list[str] = []
        for overlay in read.many("show"):
            if overlay not in OVERLAYS:
                problems.append(f"未知的地图图层“{shown(overlay)}”，已忽略。")
            elif overlay not in overlays:
                overlays.append(overlay)
        breaks = read.last("breaks")
        if breaks is not None and breaks not in ("fixed", "shown"):
            problems.append(f"未知的分级方式“{shown(breaks)}”，已按当前单位分级。")
        return cls(unit=unit or CITY_CODE, metric=metric or DEFAULT_METRIC,
                   overlays=tuple(overlays), filters=_filters(read, problems),
                   fixed_breaks=breaks == "fixed"), tuple(problems)

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | str | None) -> ViewState:
        """:meth:`parse` without the messages: the nearest valid view."""
        return cls.parse(params)[0]

    def to_search(self) -> str:
        """Write the state as a query string with a leading ``?`` (defaults left out)."""
        pairs: list[tuple[str, str]] = []
        if self.unit != CITY_CODE:
            pairs.append(("unit", self.unit))
        if self.metric != DEFAULT_METRIC:
            pairs.append(("metric", self.metric))
        pairs.extend(("show", o) for o in self.overlays)
        if self.fixed_breaks:
            pairs.append(("breaks", "fixed"))
        search = urlencode(pairs)
        filters = self.filters.to_query()
        joined = "&".join(part for part in (search, filters) if part)
        return "?" + joined if joined else ""

    def with_(self, **changes: Any) -> ViewState:
        """Return a copy with some fields changed."""
        return replace(self, **changes)


def fit_to_data(view: ViewState, first: date | None, last: date | None
                ) -> tuple[ViewState, tuple[str, ...]]:
    """Drop a date that leaves no day of data in the window, saying so in Chinese.

    A start after the data's last day or an end before its first day would show an empty
    view that looks like "no cases"; the nearest valid view keeps the other end and tells the
    clerk which date was ignored and what range the data has. A window reaching past the
    data on one side is fine (a preset like 本月 may): it still holds data.
    """
    f = view.filters
    if first is None or last is None:
        return view, ()
    problems: list[str] = []
    start, end = f.date_from, f.date_to
    if start is not None and start > last:
        problems.append(f"开始日期 {start} 晚于数据的最后一天 {last}，已忽略开始日期"
                        f"（数据范围 {first} 至 {last}）。")
        start = None
    if end is not None and end < first:
        problems.append(f"结束日期 {end} 早于数据的第一天 {first}，已忽略结束日期"
                        f"（数据范围 {first} 至 {last}）。")
        end = None
    if not problems:
        return view, ()
    return view.with_(filters=replace(f, date_from=start, date_to=end)), tuple(problems)


def parse_unit(value: Any) -> str | None:
    """A unit code from a callback (a map click, a picker): 12 digits of a known level, or None."""
    return value if isinstance(value, str) and _valid_code(value) else None


def parse_day(value: Any) -> date | None:
    """A day from a date picker (``YYYY-MM-DD``, a time part allowed), or None when not one."""
    if not isinstance(value, str) or not _DAY.fullmatch(value[:10]):
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def shown(value: Any, limit: int = 30) -> str:
    """A refused value as a message may quote it: visible characters only, cut to ``limit``."""
    text = "".join(ch for ch in str(value) if unicodedata.category(ch)[0] != "C")
    return text[:limit] + "…" if len(text) > limit else text


class _Reader:
    """Values of a parameter mapping as strings; anything else is refused with a message."""

    def __init__(self, params: Mapping[str, Any], problems: list[str]) -> None:
        self.params = params
        self.problems = problems

    def many(self, key: str) -> list[str]:
        raw = self.params.get(key)
        if raw is None:
            return []
        items = list(raw) if isinstance(raw, list | tuple) else [raw]
        out = []
        for item in items:
            if not isinstance(item, str):
                self.problems.append(f"参数 {key} 的值无法识别，已忽略。")
            elif item:
                out.append(item)
        return out

    def last(self, key: str) -> str | None:
        values = self.many(key)
        return values[-1] if values else None


def _valid_code(code: str) -> bool:
    if not _CODE.fullmatch(code):
        return False
    try:
        level_of(code)
    except CodeError:
        return False
    return True


def _filters(read: _Reader, problems: list[str]) -> Filters:
    days: dict[str, date | None] = {}
    for key, label in (("from", "开始日期"), ("to", "结束日期")):
        value = read.last(key)
        days[key] = parse_day(value) if value is not None and len(value) == 10 else None
        if value is not None and days[key] is None:
            problems.append(f"{label}“{shown(value)}”无效（应为 YYYY-MM-DD），已忽略。")
    start, end = days["from"], days["to"]
    if start and end and start > end:
        problems.append("开始日期晚于结束日期，已对调。")
        start, end = end, start
    status = []
    for value in read.many("status"):
        if value in STATUS_VALUES:
            status.append(value)
        else:
            problems.append(f"未知的办理状态“{shown(value)}”，已忽略。可选："
                            + "、".join(STATUS_FILTER_ZH.values()) + "。")
    attributes: dict[str, tuple[str, ...]] = {}
    for key, label in ATTRIBUTE_LABELS_ZH.items():
        kept = []
        for value in read.many(key):
            if len(value) > MAX_VALUE_CHARS or any(
                    unicodedata.category(ch) == "Cc" for ch in value):
                problems.append(f"{label}筛选值“{shown(value)}”无效，已忽略。")
            else:
                kept.append(value)
        if len(set(kept)) > MAX_VALUES:
            problems.append(f"{label}筛选值超过 {MAX_VALUES} 个，只保留前 {MAX_VALUES} 个。")
            kept = sorted(set(kept))[:MAX_VALUES]
        attributes[key] = tuple(kept)
    return Filters(date_from=start, date_to=end, status=tuple(status), **attributes)
