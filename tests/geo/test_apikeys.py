"""API keys: created with a token shown once, stored hashed, listed, revoked; all audited."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from geo import apikeys, audit, schema
from tests.conftest import run_cli

ADMIN = audit.Actor("cli:test", "admin")


def test_a_key_is_stored_only_as_its_hash_and_found_by_its_token(tiny_engine):
    key, token = apikeys.add_key(tiny_engine, name="SuiZhiFang", scope_code="440103001000",
                                 actor=ADMIN)
    assert key.name == "suizhifang" and key.channel == "网上" and key.active
    assert token.startswith("gg_") and len(token) > 40
    with tiny_engine.connect() as conn:
        stored = conn.execute(sa.select(schema.api_key)).mappings().one()
    assert token not in str(dict(stored)) and stored["token_hash"] == apikeys.token_hash(token)
    assert apikeys.key_for_token(tiny_engine, token) == key
    assert key.scope.role == "street" and key.scope.code == "440103001000"
    for wrong in (None, "", token + "x", "gg_" + "a" * 43, "x" * 500):
        assert apikeys.key_for_token(tiny_engine, wrong) is None
    apikeys.revoke_key(tiny_engine, "suizhifang", actor=ADMIN)
    assert apikeys.key_for_token(tiny_engine, token) is None
    trail = audit.read_trail(tiny_engine)
    assert list(trail["action"]) == ["apikey", "apikey"]
    assert audit.verify(tiny_engine).ok


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)  # backend-independent logic
@pytest.mark.parametrize(("name", "scope", "channel", "says"), [
    ("", "440103001000", None, "名称"),
    ("a b", "440103001000", None, "名称"),
    ("ok", "440103001999", None, "不是当前网格"),
    ("ok", "12", None, "12"),
    ("ok", "440103001000", "微信", "未知渠道"),
])
def test_bad_keys_are_refused_with_the_reason(tiny_engine, name, scope, channel, says):
    with pytest.raises(apikeys.ApiKeyError, match=says):
        apikeys.add_key(tiny_engine, name=name, scope_code=scope, channel=channel, actor=ADMIN)
    with tiny_engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.api_key)).scalar() == 0


def test_the_cli_adds_lists_and_revokes(tiny_engine):
    added = run_cli(tiny_engine, ["apikeys", "add", "--name", "kiosk", "--scope", "440103001001",
                                  "--channel", "二维码"])
    assert added.exit_code == 0, added.output
    token = next(line.split(": ", 1)[1] for line in added.output.splitlines()
                 if line.startswith("密钥 / token"))
    assert apikeys.key_for_token(tiny_engine, token).channel == "二维码"
    listed = run_cli(tiny_engine, ["apikeys", "list"])
    assert "kiosk" in listed.output and token not in listed.output and "有效" in listed.output
    again = run_cli(tiny_engine, ["apikeys", "add", "--name", "kiosk", "--scope", "440103001001"])
    assert again.exit_code == 1 and "已存在" in again.output
    assert run_cli(tiny_engine, ["apikeys", "revoke", "kiosk"]).exit_code == 0
    assert "已吊销" in run_cli(tiny_engine, ["apikeys", "list"]).output
    assert run_cli(tiny_engine, ["apikeys", "revoke", "nobody"]).exit_code == 1
