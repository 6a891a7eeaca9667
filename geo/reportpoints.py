"""QR-code reporting points (信访受理二维码): the token in a poster's URL and the unit it reports into.

A poster printed by ``gridgov qr`` carries ``/report/<token>``; the token is random (96 bits), so
the form cannot be pointed at another unit by editing the URL, and a poster can be withdrawn by
deactivating its point without touching the unit. One active point per unit: printing a second
poster for the same village reuses its token, so every poster of a unit stays valid.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from geo import schema
from geo.codes import level_of
from geo.errors import CodeError, GridgovError
from geo.scope import Scope

POINT_LEVELS = ("village", "street")
"""Units a poster may stand for: a village (村居) or a street (镇街)."""


class ReportPointError(GridgovError):
    """A reporting point cannot be made (unknown unit, wrong level)."""


@dataclass(frozen=True)
class ReportPoint:
    """One reporting point: its token, its unit and the unit's name."""

    token: str
    unit_code: str
    unit_name: str

    @property
    def scope(self) -> Scope:
        """Where the point's cases may lie: its unit (the view of that unit's office)."""
        role = "grid_worker" if level_of(self.unit_code) == "village" else "street"
        return Scope(role, self.unit_code)


def ensure_point(engine: Engine, unit_code: str, *, level: str) -> ReportPoint:
    """Return the active point of a current village or street, creating it when there is none.

    Raises
    ------
    ReportPointError
        The code is malformed, of another level, or not a unit of the current grid.
    """
    try:
        actual = level_of(unit_code)
    except CodeError as error:
        raise ReportPointError(str(error)) from error
    if level not in POINT_LEVELS or actual != level:
        raise ReportPointError(f"{unit_code} 不是{'村居' if level == 'village' else '镇街'}代码 / "
                               f"{unit_code} is not a {level} code")
    t, g = schema.report_point, schema.grid_unit
    with engine.begin() as conn:
        name = conn.execute(sa.select(g.c.name).where(g.c.code == unit_code,
                                                      g.c.is_current.is_(True))).scalar()
        if name is None:
            raise ReportPointError(f"当前网格中没有单位 {unit_code} / no unit {unit_code} in the "
                                   "current grid")
        token = conn.execute(sa.select(t.c.token).where(t.c.unit_code == unit_code,
                                                        t.c.active.is_(True))).scalar()
        if token is None:
            token = secrets.token_urlsafe(12)
            conn.execute(t.insert().values(token=token, unit_code=unit_code, active=True,
                                           created_at=datetime.now().replace(microsecond=0)))
    return ReportPoint(token, unit_code, str(name))


def point_for_token(engine: Engine, token: str | None) -> ReportPoint | None:
    """Return the active point of a token (None: unknown, withdrawn, malformed)."""
    if not token or len(token) > 32 or not token.replace("-", "").replace("_", "").isalnum():
        return None
    t, g = schema.report_point, schema.grid_unit
    query = (sa.select(t.c.token, t.c.unit_code, g.c.name)
             .join(g, sa.and_(g.c.code == t.c.unit_code, g.c.is_current.is_(True)))
             .where(t.c.token == token, t.c.active.is_(True)))
    with engine.connect() as conn:
        row = conn.execute(query).first()
    return ReportPoint(*row) if row else None
