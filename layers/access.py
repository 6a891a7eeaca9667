"""The scope rule applied to the store: which cases a scope holds, and revealing one contact.

:mod:`geo.scope` compares codes; here a case's unit is the one the case table ties it to
(:meth:`layers.casedata.CaseTable.in_unit`: its finest known code, the rule every count and list
uses), so "may this account open case X" and "is X in this account's list" are one answer.

Revealing a petitioner's contact (联系方式) writes the audit row and reads the contact in one
transaction: the contact leaves the store only if the reveal is on record (信访工作条例,
docs/domain.md §8). Nothing here caches a contact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sqlalchemy as sa

from geo import audit, schema
from geo.errors import GridgovError
from geo.scope import Scope
from geo.store import Store
from geo.vocab import REVEAL_REASONS
from layers.casedata import case_table


class OutOfScope(GridgovError):
    """A unit or case outside the account's scope was asked for (the caller refuses it)."""


@dataclass(frozen=True)
class Contact:
    """A petitioner's contact as revealed for one case (never cached, never exported)."""

    case_id: str
    name: str
    phone: str
    reason: str


def case_in_scope(store: Store, scope: Scope, case_id: str) -> bool | None:
    """Return whether case ``case_id`` lies in the scope, or None when no case has that id."""
    table = case_table(store)
    position = table.position_of(case_id)
    if position < 0:
        return None
    return scope_holds(table, scope, position)


def scope_holds(table, scope: Scope, position: int) -> bool:  # noqa: ANN001 - a CaseTable
    """Whether the case at ``position`` of the case table lies in the scope."""
    if not scope.sees_data:
        return False
    if scope.level == "city":
        return True
    index = table.levels.get(scope.level)
    if index is None:
        return False
    unit = index.position(scope.code)
    return bool(unit >= 0 and index.case_unit[position] == unit)


def scope_mask(store: Store, scope: Scope) -> np.ndarray:
    """Which cases of the case table the scope holds (none for an unscoped account)."""
    table = case_table(store)
    if not scope.sees_data:
        return np.zeros(len(table), dtype=bool)
    return table.in_unit(scope.code)


def reveal_contact(store: Store, case_id: str, *, scope: Scope, actor: audit.Actor,
                   reason: str, address: str | None) -> Contact:
    """Record a reveal and return the contact of one case, in one transaction.

    Raises
    ------
    OutOfScope
        The role may not reveal, the reason is not one of :data:`geo.vocab.REVEAL_REASONS`, or
        the case is unknown or outside the scope (nothing is read then; the caller audits the
        refusal).
    """
    if not scope.can_reveal:
        raise OutOfScope("该角色无权查看信访人联系方式 / this role may not reveal contacts")
    if reason not in REVEAL_REASONS:
        raise OutOfScope("请选择查看理由（回访、约访或核实）/ choose a reason")
    if not case_in_scope(store, scope, case_id):
        raise OutOfScope("该案件不在您的辖区内 / the case is outside your scope")
    c = schema.cases.c
    with store.engine.begin() as conn:
        audit.record(conn, "reveal", actor=actor, unit_code=scope.code, case_ids=[case_id],
                     address=address, detail=f"理由 reason: {REVEAL_REASONS[reason]}")
        row = conn.execute(sa.select(c.petitioner_name, c.petitioner_phone)
                           .where(c.case_id == case_id)).one()
    return Contact(case_id=case_id, name=str(row[0] or ""), phone=str(row[1] or ""),
                   reason=REVEAL_REASONS[reason])
