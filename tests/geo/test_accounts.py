"""Accounts: creation and import with clear rejects, logins, lockouts, sessions; all audited."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from geo import accounts, audit
from geo.errors import SettingsError
from geo.settings import Settings
from tests.conftest import run_cli

SETTINGS = Settings(login_max_failures=3, address_max_failures=5, session_idle_minutes=30)
ADMIN = audit.Actor("cli:test", "admin")
PASSWORD = "correct horse battery"


@pytest.fixture
def tiny_sqlite(tmp_path):
    """The tiny grid on SQLite only: argon2 is slow on purpose, so most tests run once."""
    from geo.grid import load_units
    from geo.store import make_engine, upgrade_schema
    from tests.grids import tiny_grid

    engine = make_engine(f"sqlite:///{tmp_path / 'accounts.db'}")
    upgrade_schema(engine)
    load_units(engine, tiny_grid(), kind="bundled", note="tiny test grid")
    yield engine
    engine.dispose()


def _add(engine, username="wang", role="street", scope="440103001000", **kw):
    return accounts.add_user(engine, username=username, display_name="王五", role=role,
                             scope_code=scope, password=PASSWORD, settings=SETTINGS, actor=ADMIN,
                             **kw)


def _actions(engine) -> list[str]:
    return list(audit.read_trail(engine)["action"])


def test_login_opens_a_session_that_logout_and_idleness_end(tiny_engine):
    engine = tiny_engine
    account = _add(engine, must_change=False)
    assert account.scope.allows_unit("440103001201") and account.must_change_password is False
    result = accounts.login(engine, "WANG ", PASSWORD, settings=SETTINGS, address="10.0.0.1")
    assert result.ok and result.account.username == "wang"
    assert accounts.session_account(engine, result.token, settings=SETTINGS).username == "wang"
    accounts.end_session(engine, result.token, address="10.0.0.1")
    assert accounts.session_account(engine, result.token, settings=SETTINGS) is None
    # an idle session ends by itself
    second = accounts.login(engine, "wang", PASSWORD, settings=SETTINGS, address="10.0.0.1")
    later = datetime.now() + timedelta(minutes=31)
    assert accounts.session_account(engine, second.token, settings=SETTINGS, now=later) is None
    assert _actions(engine) == ["account", "login", "logout", "login", "logout"]
    assert audit.verify(engine).ok
    # the token is never stored, only its hash
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT token_hash FROM user_session")).scalars().all()
    assert result.token not in stored and accounts.token_hash(result.token) in stored


def test_wrong_passwords_lock_the_account_and_the_address(tiny_sqlite):
    engine = tiny_sqlite
    _add(engine)
    for _ in range(3):
        failed = accounts.login(engine, "wang", "wrong password", settings=SETTINGS,
                                address="10.0.0.2")
        assert not failed.ok
    assert "锁定" in failed.reason
    locked = accounts.login(engine, "wang", PASSWORD, settings=SETTINGS, address="10.0.0.3")
    assert not locked.ok and "锁定" in locked.reason
    accounts.reset_password(engine, "wang", "a new password 1", settings=SETTINGS, actor=ADMIN)
    assert accounts.login(engine, "wang", "a new password 1", settings=SETTINGS,
                          address="10.0.0.3").account.must_change_password
    # an address that keeps failing is stopped, whatever username it tries
    for name in ("a", "b"):
        assert accounts.login(engine, name, "x", settings=SETTINGS, address="10.0.0.2").reason \
            == "用户名或密码错误"
    throttled = accounts.login(engine, "wang", "a new password 1", settings=SETTINGS,
                               address="10.0.0.2")
    assert not throttled.ok and "该地址" in throttled.reason


def test_disabled_expired_and_demo_accounts_cannot_log_in(tiny_sqlite):
    engine = tiny_sqlite
    _add(engine, "old", valid_to=datetime(2020, 1, 1))
    _add(engine, "demo-street", demo=True)
    live = _add(engine, "gone")
    token = accounts.login(engine, "gone", PASSWORD, settings=SETTINGS, address=None).token
    accounts.disable_user(engine, "gone", actor=ADMIN)
    assert accounts.session_account(engine, token, settings=SETTINGS) is None  # at once
    assert "停用" in accounts.login(engine, "gone", PASSWORD, settings=SETTINGS,
                                    address=None).reason
    assert "有效期" in accounts.login(engine, "old", PASSWORD, settings=SETTINGS,
                                      address=None).reason
    assert "演示" in accounts.login(engine, "demo-street", PASSWORD, settings=SETTINGS,
                                    address=None).reason
    assert accounts.login(engine, "demo-street", PASSWORD, settings=Settings(mode="demo"),
                          address=None).ok
    assert live.active


def test_add_refuses_bad_accounts_with_every_reason(tiny_sqlite):
    with pytest.raises(accounts.AccountError) as error:
        accounts.add_user(tiny_sqlite, username="Bad Name", display_name="", role="grid_worker",
                          scope_code="440103001000", password="short", settings=SETTINGS,
                          actor=ADMIN)
    text = " ".join(error.value.problems)
    assert "用户名" in text and "姓名" in text and "村居" in text and "密码" in text
    with pytest.raises(accounts.AccountError, match="不是当前网格"):
        _add(tiny_sqlite, scope="440199001000")
    assert audit.verify(tiny_sqlite).rows == 0  # nothing was written


def test_import_is_all_or_nothing_and_lists_every_bad_row(tiny_sqlite, tmp_path):
    engine = tiny_sqlite
    good = tmp_path / "staff.csv"
    good.write_text("用户名,姓名,角色,辖区代码,有效期止\n"
                    "li,李四,网格员,440103001001,2030-12-31\n"
                    "zhao,赵六,district,440103000000,\n", encoding="utf-8")
    bad = tmp_path / "bad.csv"
    bad.write_text("用户名,姓名,角色,辖区代码\n"
                   "li,李四,网格员,440103001001\n"          # taken (after the good import)
                   "qian,钱七,队长,440103001001\n"         # unknown role
                   "sun,孙八,镇街,440103001001\n"          # a village is not a street
                   "zhou,周九,网格员,440103001001\n"
                   "zhou,周九,网格员,440103001001\n", encoding="gbk")
    out = tmp_path / "passwords.csv"
    result = run_cli(engine, ["users", "import", str(good), "--passwords", str(out)])
    assert result.exit_code == 0, result.output
    assert "2" in result.output and out.stat().st_mode & 0o077 == 0
    assert "li" in out.read_text(encoding="utf-8-sig")
    rejected = run_cli(engine, ["users", "import", str(bad), "--passwords", str(out)])
    assert rejected.exit_code == 1 and "Traceback" not in rejected.output
    for line in ("第 2 行", "第 3 行", "第 4 行", "第 6 行"):
        assert line in rejected.output
    assert "第 5 行" not in rejected.output
    assert [a.username for a in accounts.list_users(engine)] == ["li", "zhao"]  # zhou not added


def test_cli_add_list_disable_reset(tiny_sqlite):
    engine = tiny_sqlite
    added = run_cli(engine, ["users", "add", "chen", "--name", "陈一", "--role", "市",
                             "--scope", "440100000000"])
    assert added.exit_code == 0, added.output
    password = added.output.split("one-time password: ")[1].split()[0]
    assert accounts.login(engine, "chen", password, settings=SETTINGS, address=None).ok
    listing = run_cli(engine, ["users", "list"])
    assert "chen" in listing.output and "市(city)" in listing.output
    assert run_cli(engine, ["users", "disable", "chen"]).exit_code == 0
    reset = run_cli(engine, ["users", "reset-password", "chen"])
    assert reset.exit_code == 0 and "one-time password" in reset.output
    missing = run_cli(engine, ["users", "disable", "nobody"])
    assert missing.exit_code == 1 and "nobody" in missing.output
    assert run_cli(engine, ["users", "add", "x", "--name", "X", "--role", "boss"]).exit_code == 2
    assert audit.verify(engine).ok and _actions(engine).count("account") == 3


def test_serving_refuses_the_development_salt_outside_demo_mode(tiny_sqlite):
    with pytest.raises(SettingsError, match="GRIDGOV_ID_HASH_SALT"):
        accounts.check_serving(tiny_sqlite, Settings())
    accounts.check_serving(tiny_sqlite, Settings(mode="demo"))
    accounts.check_serving(tiny_sqlite, Settings(id_hash_salt="a real secret"))


def test_the_last_seen_time_is_written_once_a_minute_in_the_write_turn(tiny_engine):
    import contextlib

    import sqlalchemy as sa

    from geo import schema

    engine = tiny_engine
    _add(engine, must_change=False)
    token = accounts.login(engine, "wang", PASSWORD, settings=SETTINGS, address=None).token
    turns = []

    @contextlib.contextmanager
    def turn():
        turns.append(1)
        yield

    def seen():
        with engine.connect() as conn:
            return conn.execute(sa.select(schema.user_session.c.last_seen_at)).scalar()

    first = seen()
    soon = datetime.now() + timedelta(seconds=10)
    assert accounts.session_account(engine, token, settings=SETTINGS, now=soon, write_turn=turn)
    assert seen() == first and turns == []  # within the minute: only read
    later = datetime.now() + timedelta(minutes=2)
    for step in range(3):  # a view's callbacks, all with the old time read
        accounts.session_account(engine, token, settings=SETTINGS, write_turn=turn,
                                 now=later + timedelta(milliseconds=step))
    assert seen() == later and turns == [1]  # the first wrote it; the others read it new


def test_dropping_demo_accounts_by_prefix_spares_real_and_other_accounts(tiny_sqlite):
    engine = tiny_sqlite
    demo = Settings(mode="demo")
    _add(engine, "load-street-01", demo=True)
    _add(engine, "load-street-02")  # a real account that happens to share the prefix
    _add(engine, "loadxstreet", demo=True)  # "-" is not a wildcard
    token = accounts.login(engine, "load-street-01", PASSWORD, settings=demo, address=None).token
    accounts.drop_demo_accounts(engine, prefix="load-")
    assert accounts.get_user(engine, "load-street-01") is None
    assert accounts.session_account(engine, token, settings=demo) is None
    assert accounts.get_user(engine, "load-street-02") is not None
    assert accounts.get_user(engine, "loadxstreet") is not None
    _add(engine, "load-street-01", demo=True)  # the name is free again
