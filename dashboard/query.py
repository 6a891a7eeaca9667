"""What the URL says: the current unit, metric, map overlays and filters of a view.

Everything a user chooses lives in the query string, so any view can be bookmarked and
shared. :class:`ViewState` is the parsed form; :meth:`ViewState.to_search` writes it back.
Pure: no dash imports.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qs, urlencode

from geo.codes import level_of
from geo.errors import CodeError
from geo.vocab import CITY_CODE
from layers.filters import Filters

DEFAULT_METRIC = "on_time_completion"
OVERLAYS = ("points", "stations", "catchments", "uncovered")
"""Map overlays: case points 案件点位, stations 服务站点, catchments 服务半径, uncovered 未覆盖区域."""
PAGES = {"city": "/", "street": "/street", "village": "/village"}


@dataclass(frozen=True)
class ViewState:
    """The state of a view, as carried in its URL."""

    unit: str = CITY_CODE
    metric: str = DEFAULT_METRIC
    overlays: tuple[str, ...] = ()
    filters: Filters = Filters()

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | str | None) -> ViewState:
        """Parse a query string or a mapping of key → value(s); bad values fall back to defaults."""
        if isinstance(params, str) or params is None:
            params = parse_qs((params or "").lstrip("?"))
        unit = _last(params.get("unit")) or CITY_CODE
        try:
            level_of(unit)
        except CodeError:
            unit = CITY_CODE
        overlays = tuple(o for o in _many(params.get("show")) if o in OVERLAYS)
        try:
            filters = Filters.from_query(params)
        except ValueError:
            filters = Filters()
        return cls(unit=unit, metric=_last(params.get("metric")) or DEFAULT_METRIC,
                   overlays=overlays, filters=filters)

    def to_search(self) -> str:
        """Write the state as a query string with a leading ``?`` (defaults left out)."""
        pairs: list[tuple[str, str]] = []
        if self.unit != CITY_CODE:
            pairs.append(("unit", self.unit))
        if self.metric != DEFAULT_METRIC:
            pairs.append(("metric", self.metric))
        pairs.extend(("show", o) for o in self.overlays)
        search = urlencode(pairs)
        filters = self.filters.to_query()
        joined = "&".join(part for part in (search, filters) if part)
        return "?" + joined if joined else ""

    def with_(self, **changes: Any) -> ViewState:
        """Return a copy with some fields changed."""
        return replace(self, **changes)


def _last(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, list | tuple):
        return value[-1] if value else None
    return str(value)


def _many(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [str(v) for v in value if v]
    return [str(value)] if value else []
