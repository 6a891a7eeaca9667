"""The scope rule (辖区): which units and cases an account may see, from its role and scope unit.

Pure: no store, no session, no web framework, so the dashboard, the downloads and a later
Open311 API all ask the same question the same way. A unit is inside a scope when its code
nests under the scope's code (统计用区划代码 prefixes, :mod:`geo.codes`): a street's villages
start with its nine significant digits, a village's basic grids (基础网格) with its twelve. A
case is inside a scope when the finest unit it is attached to is; an unassigned case (未落格)
belongs to the city alone. Which unit a case is attached to is the case table's business
(``layers.access`` applies this rule to it); this module only compares codes.

Roles (:data:`geo.vocab.ROLES`): 网格员 hold a village or a basic grid, 镇街 a street, 区 a
district, 市 the city; 管理员 manage accounts and the audit trail and see no case data unless
they are also given a scope. Petitioners' contacts may be revealed (one case at a time, with a
reason) by 网格员 and 镇街 only, in their own scope (信访工作条例, docs/domain.md §8: petitioners'
information is kept confidential; docs/domain.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from geo.codes import level_of, prefix_of
from geo.errors import CodeError
from geo.vocab import (
    CORRECT_ROLES,
    LEVEL_NAMES_ZH,
    LEVELS,
    REVEAL_ROLES,
    ROLE_SCOPE_LEVELS,
    ROLE_ZH,
    ROLES,
)


@dataclass(frozen=True)
class Scope:
    """What one account may see: its role and the unit its view is bounded by.

    Attributes
    ----------
    role
        A :data:`geo.vocab.ROLES` value.
    code
        The scope unit's division code; None for an administrator without a scope (no data).
    """

    role: str
    code: str | None

    def __post_init__(self) -> None:
        check_role_scope(self.role, self.code)

    @property
    def sees_data(self) -> bool:
        """Whether the account sees any case data at all (an unscoped 管理员 does not)."""
        return self.code is not None

    @property
    def level(self) -> str | None:
        """The scope unit's level (city, district, street, village, grid), None without one."""
        return level_of(self.code) if self.code else None

    @property
    def can_reveal(self) -> bool:
        """Whether the role may reveal one case's contact in its scope (网格员, 镇街)."""
        return self.role in REVEAL_ROLES and self.code is not None

    @property
    def can_correct(self) -> bool:
        """Whether the role may place a case of its scope in a village (镇街, 区, 市)."""
        return self.role in CORRECT_ROLES and self.code is not None

    @property
    def is_admin(self) -> bool:
        """Whether the account manages accounts and reads the audit trail."""
        return self.role == "admin"

    def allows_unit(self, code: str | None) -> bool:
        """Return True when unit ``code`` is the scope unit or nests under it.

        A malformed code, and every code for an account without a scope, is outside.
        """
        if self.code is None or not code:
            return False
        return unit_within(code, self.code)

    def allows_case_unit(self, finest_code: str | None) -> bool:
        """Return True when a case attached to ``finest_code`` is inside the scope.

        ``finest_code`` is the finest unit the case is attached to (None: unassigned, which
        only the city scope holds).
        """
        if self.code is None:
            return False
        if not finest_code:
            return self.level == "city"
        return self.allows_unit(finest_code)


def unit_within(code: str, scope_code: str) -> bool:
    """Return True when ``code`` is ``scope_code`` or a unit below it (its prefix nests)."""
    try:
        level, scope_level = level_of(code), level_of(scope_code)
    except CodeError:
        return False
    if LEVELS.index(level) < LEVELS.index(scope_level):
        return False
    if scope_level == "grid":
        return code == scope_code
    return code.startswith(prefix_of(scope_code))


def check_role_scope(role: str, code: str | None) -> None:
    """Raise CodeError when a role cannot hold a scope unit of this level (or lacks one).

    网格员 hold a village or a basic grid, 镇街 a street, 区 a district, 市 the city; a 管理员
    may hold any unit or none.
    """
    if role not in ROLES:
        allowed = "、".join(f"{ROLE_ZH[r]}({r})" for r in ROLES)
        raise CodeError(f"未知角色 {role!r}，可用：{allowed} / unknown role {role!r}; "
                        f"use one of {', '.join(ROLES)}")
    if code is None:
        if role != "admin":
            raise CodeError(f"{ROLE_ZH[role]}必须指定辖区代码 / role {role} needs a scope unit")
        return
    level = level_of(code)
    if level not in ROLE_SCOPE_LEVELS[role]:
        allowed = "或".join(LEVEL_NAMES_ZH[x] for x in ROLE_SCOPE_LEVELS[role])
        raise CodeError(
            f"{ROLE_ZH[role]}的辖区必须是{allowed}级单位，{code} 是{LEVEL_NAMES_ZH[level]}级 / "
            f"a {role} scope must be a {' or '.join(ROLE_SCOPE_LEVELS[role])} unit; {code} is "
            f"a {level}")
