"""Helpers for layers tests: hand-built cases written straight into the store.

Cases go in with SQLAlchemy Core (not through the ETL), so every field is exactly what the test
says; ``case(...)`` fills the required bookkeeping columns.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from geo import schema
from geo.store import bump_version

CITY = "440100000000"
D1, D2 = "440103000000", "440104000000"
S1, S2, S3, S4 = "440103001000", "440103101000", "440104001000", "440104002000"
V1S, V1N = "440103001001", "440103001201"
V2S, V2N = "440103101001", "440103101201"
V3S, V3N = "440104001001", "440104001201"
V4S, V4N = "440104002001", "440104002201"
VILLAGES = (V1S, V1N, V2S, V2N, V3S, V3N, V4S, V4N)

_counter = iter(range(1, 10**9))


def case(village: str | None = V1S, **fields: Any) -> dict[str, Any]:
    """One case row attached to ``village`` (None: unassigned), registered 2025-01-01 09:00."""
    row: dict[str, Any] = {
        "case_id": f"C{next(_counter):07d}",
        "registered_at": datetime(2025, 1, 1, 9, 0),
        "status": "registered",
        "extended": False,
        "is_repeat": False,
        "is_backlog": False,
        "synthetic": True,
        "row_hash": "x",
        "updated_at": datetime(2025, 1, 1),
        "village_code": village,
        "street_code": None if village is None else village[:9] + "000",
        "district_code": None if village is None else village[:6] + "000000",
        "attach_method": "point" if village else "unassigned",
    }
    row.update(fields)
    if "status" not in fields:
        if row.get("closed_at"):
            row["status"] = "closed"
        elif row.get("replied_at"):
            row["status"] = "replied"
        elif row.get("accepted_at"):
            row["status"] = "accepted"
    return row


def insert_cases(engine: sa.Engine, rows: list[dict[str, Any]]) -> None:
    """Insert case rows (each from :func:`case`) as a write of data: the store version moves."""
    if rows:
        columns = sorted({key for row in rows for key in row})
        full = [{column: row.get(column) for column in columns} for row in rows]
        with engine.begin() as conn:
            conn.execute(sa.insert(schema.cases), full)
            bump_version(conn)
