"""What a user narrows the case table to: a date window and attribute filters (筛选条件).

A :class:`Filters` is a frozen value, so it can key caches and travel in a dashboard URL
(:meth:`Filters.to_query` / :meth:`Filters.from_query`). The date window is the reporting
period (统计期): counts use ``registered_at`` in the window, while each rate applies the window
to its own cohort date (see ``layers.definitions``), exactly as the official statistics do.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import date
from typing import Any
from urllib.parse import parse_qs, urlencode

STATUS_VALUES = ("open", "closed", "overdue")
"""Status filter values: open 未办结, closed 已办结, overdue 超期未办结 (open and past due)."""
STATUS_FILTER_ZH = {"open": "未办结", "closed": "已办结", "overdue": "超期未办结"}
"""The status filter values as a reader sees them."""
ATTRIBUTE_LABELS_ZH = {"category": "内容分类", "purpose": "信访目的", "channel": "信访渠道"}

_QUERY_KEYS = {
    "date_from": "from",
    "date_to": "to",
    "category": "category",
    "purpose": "purpose",
    "channel": "channel",
    "status": "status",
}


@dataclass(frozen=True)
class Filters:
    """A reporting window and attribute filters; empty tuples mean "no filter".

    Attributes
    ----------
    date_from, date_to
        First and last day of the window, both inclusive; None leaves that side open.
    category, purpose, channel
        Keep cases whose 信访内容分类 / 信访目的 / 信访渠道 is one of these values.
    status
        Keep cases in any of these states as of the data date: ``open``, ``closed``,
        ``overdue`` (open and past its due date).
    """

    date_from: date | None = None
    date_to: date | None = None
    category: tuple[str, ...] = ()
    purpose: tuple[str, ...] = ()
    channel: tuple[str, ...] = ()
    status: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("category", "purpose", "channel", "status"):
            value = getattr(self, name)
            if isinstance(value, str):
                value = (value,)
            object.__setattr__(self, name, tuple(sorted(set(value))))
        for name in ("date_from", "date_to"):
            value = getattr(self, name)
            if isinstance(value, str):
                object.__setattr__(self, name, date.fromisoformat(value) if value else None)
        bad = set(self.status) - set(STATUS_VALUES)
        if bad:
            raise ValueError(
                f"未知的状态筛选 {sorted(bad)}；可选 {STATUS_VALUES} / unknown status filter "
                f"{sorted(bad)}: use one of {STATUS_VALUES}"
            )
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise ValueError(
                f"开始日期晚于结束日期 / date_from {self.date_from} is after date_to {self.date_to}"
            )

    def describe_zh(self) -> list[str]:
        """The filters as a reader of an exported file reads them, one Chinese line each.

        Exports and printed reports state what they hold in words (登记日期 2025-01-01 至
        2025-03-31), never as a URL; values are data and stay plain text.
        """
        lines = []
        if self.date_from or self.date_to:
            lines.append(f"登记日期：{self.date_from or '最早'} 至 {self.date_to or '最新'}")
        for name, label in ATTRIBUTE_LABELS_ZH.items():
            values = getattr(self, name)
            if values:
                lines.append(f"{label}：" + "、".join(values))
        if self.status:
            lines.append("办理状态：" + "、".join(STATUS_FILTER_ZH[v] for v in self.status))
        return lines or ["无（全部案件）"]

    def is_empty(self) -> bool:
        """Return True when nothing is filtered."""
        return self == Filters()

    def to_query(self) -> str:
        """Serialise to a URL query string (without ``?``), e.g. ``from=2025-01-01&category=a``.

        Repeated keys carry multiple values, so values may contain commas; the result is
        stable (sorted values), so equal filters give equal URLs.
        """
        pairs: list[tuple[str, str]] = []
        for f in fields(self):
            value = getattr(self, f.name)
            key = _QUERY_KEYS[f.name]
            if isinstance(value, tuple):
                pairs.extend((key, v) for v in value)
            elif value is not None:
                pairs.append((key, value.isoformat()))
        return urlencode(pairs)

    @classmethod
    def from_query(cls, query: str | Mapping[str, Any] | None) -> Filters:
        """Parse what :meth:`to_query` wrote (a leading ``?`` and unknown keys are ignored).

        Parameters
        ----------
        query
            A query string, or a mapping of key to a value or list of values (as Flask's
            ``request.args.to_dict(flat=False)`` or ``parse_qs`` give).
        """
        if not query:
            return cls()
        if isinstance(query, str):
            parsed: Mapping[str, Any] = parse_qs(query.lstrip("?"), keep_blank_values=False)
        else:
            parsed = query
        values: dict[str, Any] = {}
        for name, key in _QUERY_KEYS.items():
            raw = parsed.get(key)
            if raw is None:
                continue
            items = [raw] if isinstance(raw, str) else list(raw)
            items = [item for item in items if item]
            if name in ("date_from", "date_to"):
                values[name] = date.fromisoformat(items[-1]) if items else None
            else:
                values[name] = tuple(items)
        return cls(**values)
