"""The audit trail: rows commit with their action, and `gridgov audit verify` sees tampering."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from geo import audit, schema
from tests.conftest import run_cli

ALICE = audit.Actor("alice", "street", "440103001000")


def _three_rows(engine) -> None:
    with engine.begin() as conn:
        audit.record(conn, "login", actor=ALICE, address="127.0.0.1")
        audit.record(conn, "view", actor=ALICE, unit_code="440103001000", count=12)
        audit.record(conn, "reveal", actor=ALICE, case_ids=["C-1"], detail="回访")


def test_rows_chain_and_verify_on_both_backends(engine):
    _three_rows(engine)
    trail = audit.read_trail(engine)
    assert list(trail["seq"]) == [1, 2, 3]
    assert trail["prev_hash"].iloc[0] == audit.GENESIS
    assert list(trail["prev_hash"].iloc[1:]) == list(trail["row_hash"].iloc[:2])
    assert audit.verify(engine).ok
    result = run_cli(engine, ["audit", "verify"])
    assert result.exit_code == 0 and "3" in result.output
    exported = run_cli(engine, ["audit", "export", "--from", "2000-01-01"])
    assert exported.exit_code == 0 and "查看联系方式(reveal)" in exported.output


def test_a_row_rolls_back_with_its_action(engine):
    with pytest.raises(RuntimeError), engine.begin() as conn:
        audit.record(conn, "export", actor=ALICE, count=5)
        raise RuntimeError("the export failed")
    assert audit.verify(engine).rows == 0
    assert audit.record_now(engine, "logout", actor=ALICE) == 1  # the sequence did not move


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)  # backend-independent logic
@pytest.mark.parametrize("tamper", ["modified", "deleted", "inserted", "appended", "truncated"])
def test_verify_detects_tampering(tiny_engine, tamper):
    engine = tiny_engine
    _three_rows(engine)
    t = schema.audit_log
    with engine.begin() as conn:
        if tamper == "modified":
            conn.execute(t.update().where(t.c.seq == 2).values(count=1))
        elif tamper == "deleted":
            conn.execute(t.delete().where(t.c.seq == 2))
        elif tamper == "truncated":
            conn.execute(t.delete().where(t.c.seq == 3))
        else:
            row = dict(conn.execute(sa.select(t).where(t.c.seq == 2)).mappings().one())
            if tamper == "inserted":  # renumber the tail to make room, as a forger must
                conn.execute(t.update().where(t.c.seq == 3).values(seq=4))
                row.update(seq=3, detail="forged", row_hash=audit.row_hash({**row, "seq": 3}))
            else:  # a well-formed row after the last one (the head does not know it)
                last = conn.execute(sa.select(t.c.row_hash).where(t.c.seq == 3)).scalar_one()
                row.update(seq=4, prev_hash=last)
                row["row_hash"] = audit.row_hash(row)
            conn.execute(t.insert().values(**row))
    result = audit.verify(engine)
    assert not result.ok, tamper
    cli = run_cli(engine, ["audit", "verify"])
    assert cli.exit_code == 1 and "篡改" in cli.output and "tampered" in cli.output
