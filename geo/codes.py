"""Division codes (统计用区划代码): 12 digits, nested by prefix.

Digits 1–2 province, 3–4 prefecture (广州 4401), 5–6 district (区), 7–9 street-level
unit (街道/镇), 10–12 village-level unit (居委会/村委会); a basic grid (基础网格) adds a
3-digit sequence to its village's 12 digits (15 digits). A child code starts with its
parent's significant digits: a village with its street's 9, a street with its
district's 6, a district with the city's 4 (国家统计局《统计用区划代码》编制规则).
"""

from __future__ import annotations

import re

from geo.errors import CodeError
from geo.vocab import LEVEL_NAMES_ZH, LEVELS

_SIGNIFICANT = {"city": 4, "district": 6, "street": 9, "village": 12, "grid": 15}
_CODE_RE = re.compile(r"^\d{12}(\d{3})?$")


def level_of(code: str) -> str:
    """Return the level a code stands for, from its trailing zeros and length.

    Raises
    ------
    CodeError
        If the code is not 12 digits (or 15 for a basic grid).
    """
    _check_format(code)
    if len(code) == 15:
        return "grid"
    if code[9:] != "000":
        return "village"
    if code[6:9] != "000":
        return "street"
    if code[4:6] != "00":
        return "district"
    return "city"


def parent_of(code: str) -> str | None:
    """Return the parent unit's code (12 digits), or None for a city."""
    level = level_of(code)
    if level == "city":
        return None
    keep = _SIGNIFICANT[LEVELS[LEVELS.index(level) - 1]]
    return code[:keep].ljust(12, "0")


def prefix_of(code: str) -> str:
    """Return the significant digits of a code (the prefix its children share)."""
    return code[: _SIGNIFICANT[level_of(code)]]


def nests_in(child: str, parent: str) -> bool:
    """Return True when ``child`` is a direct child code of ``parent``."""
    try:
        return parent_of(child) == parent
    except CodeError:
        return False


def unit_kind(code: str) -> str:
    """Return what the code says a street or village unit is.

    街道 (urban sub-district) for street digits 001–099, 镇 (town) for 100–199, 乡 for
    200–399, 特殊 for 400+; 居委会 (urban community) for village digits 001–199,
    村委会 (rural village) 200–399, 类居委会/类村委会 for 4xx/5xx (virtual or special units).
    """
    level = level_of(code)
    if level == "street":
        n = int(code[6:9])
        return "街道" if n < 100 else "镇" if n < 200 else "乡" if n < 400 else "特殊区域"
    if level == "village":
        n = int(code[9:12])
        if n < 200:
            return "居委会"
        if n < 400:
            return "村委会"
        return "类居委会" if n < 500 else "类村委会"
    return LEVEL_NAMES_ZH[level]


def is_urban(code: str) -> bool:
    """Return True when the code marks an urban unit (街道 or 居委会-like)."""
    return unit_kind(code) in {"街道", "居委会", "类居委会"}


def validate_code(code: str, *, level: str | None = None, parent_code: str | None = None) -> None:
    """Raise CodeError when a code is malformed, of the wrong level, or not nested in its parent."""
    actual = level_of(code)
    if level is not None and actual != level:
        raise CodeError(
            f"代码 {code} 是{LEVEL_NAMES_ZH[actual]}级，不是{LEVEL_NAMES_ZH.get(level, level)}级 / "
            f"code {code} is a {actual} code, not a {level} code"
        )
    if parent_code is not None and parent_of(code) != parent_code:
        raise CodeError(
            f"代码 {code} 不属于上级 {parent_code} / code {code} does not nest in parent {parent_code}"
        )


def _check_format(code: str) -> None:
    if not isinstance(code, str) or not _CODE_RE.match(code):
        raise CodeError(
            f"区划代码必须是12位数字（网格15位）：{code!r} / "
            f"a division code must be 12 digits (15 for a basic grid): {code!r}"
        )
