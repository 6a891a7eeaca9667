"""What a warning is before it is stored: a :class:`Warning`, its stable id and its unit.

Every rule (:mod:`layers.warnings.signals`, :mod:`~layers.warnings.surveillance`,
:mod:`~layers.warnings.hotspots`) returns warnings of this one shape; the runner
(:mod:`layers.warnings.run`) turns them into rows of the ``warning`` table.

The id is stable: a hash of the rule, its version and the warning's *subject* — the case for a
case reminder, the person's first case for a repeat petitioner, the category and first case of
a cluster, the unit, category and week of a surge, the unit and 28-day period of a hotspot. The
same inputs give the same id, so a re-run updates a warning instead of duplicating it, and its
state (已查看, 处置中 …) survives new data.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from geo.codes import level_of
from geo.vocab import CITY_CODE
from layers.casedata import CaseTable, day_of_number
from layers.warnings.definitions import RULES


@dataclass
class Warning:
    """One warning as a rule finds it (days are day numbers; ``rows`` index the case table)."""

    rule: str
    subject: str
    unit_code: str
    period_start: int
    period_end: int
    observed: float
    rows: np.ndarray
    reason: str
    expected: float | None = None
    statistic: float | None = None
    p_value: float | None = None
    q_value: float | None = None
    category: str | None = None
    lon: float | None = None
    lat: float | None = None
    radius_m: float | None = None
    extra: dict = field(default_factory=dict)

    @property
    def level(self) -> str:
        """red (强信号) or yellow (弱信号), from the rule."""
        return RULES[self.rule].level

    @property
    def warning_id(self) -> str:
        """The stable id: 20 hex digits of SHA-1 over rule, rule version and subject."""
        return warning_id(self.rule, self.subject)


def warning_id(rule: str, subject: str) -> str:
    """Return the stable id of the warning of ``rule`` about ``subject``."""
    text = f"{rule}|{RULES[rule].version}|{subject}"
    return "W" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:19]


def case_ids_of(table: CaseTable, rows: np.ndarray) -> list[str]:
    """The 信访件编号 of some rows (one vectorised take, not a scalar access per row)."""
    if not len(rows):
        return []
    return list(table.case_id.take(np.asarray(rows, dtype=np.int64)))


def case_units(table: CaseTable) -> np.ndarray:
    """Per case, the code of the finest unit it belongs to (village, else street, district, city).

    An object array, memoised on the table.
    """

    def build() -> np.ndarray:
        out = np.full(len(table), CITY_CODE, dtype=object)
        for level in ("district", "street", "village"):
            index = table.levels.get(level)
            if index is None:
                continue
            codes = index.units["code"].astype(str).to_numpy(dtype=object)
            known = index.case_unit >= 0
            out[known] = codes[index.case_unit[known]]
        return out

    return table.memo(("warning_case_units",), build)


def common_unit(codes: list[str] | np.ndarray) -> str:
    """Return the smallest unit every code nests in (the codes themselves are unit codes)."""
    distinct = {str(c) for c in codes}
    if not distinct:
        return CITY_CODE
    if len(distinct) == 1:
        return distinct.pop()
    levels = {level_of(c) for c in distinct}
    for digits, allowed in ((9, {"village", "street", "grid"}),
                            (6, {"village", "street", "district", "grid"})):
        if levels <= allowed and len({c[:digits] for c in distinct}) == 1:
            return next(iter(distinct))[:digits].ljust(12, "0")
    return CITY_CODE


def unit_names(table: CaseTable) -> dict[str, str]:
    """Code → name of every unit the case table knows (memoised)."""

    def build() -> dict[str, str]:
        names = {CITY_CODE: "全市"}
        for index in table.levels.values():
            names.update(zip(index.units["code"].astype(str), index.units["name"].astype(str),
                             strict=True))
        return names

    return table.memo(("warning_unit_names",), build)


def day_text(day: int) -> str:
    """A day number as YYYY-MM-DD (for the reason sentences)."""
    return day_of_number(int(day)).isoformat()
