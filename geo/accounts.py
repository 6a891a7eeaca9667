"""Accounts (账户), passwords, logins and server-side sessions.

An account has a role and a scope unit (:mod:`geo.scope`), a validity period, an argon2id
password hash (argon2-cffi, the maintained binding of the Password Hashing Competition
winner; parameters are argon2-cffi's RFC 9106 low-memory profile and old hashes are upgraded
at the next login) and its lockout state. Every change to an account and every login, failed
login and logout writes an audit row in the same transaction (:mod:`geo.audit`).

Sessions live in the store (``user_session``): the browser's cookie carries only a random
token whose SHA-256 is the row's key, so logging out, an idle timeout or disabling an account
ends access at once on every server process, whatever the browser still holds.

Repeated failures slow an attacker down twice over: an account is locked for
``login_lockout_minutes`` after ``login_max_failures`` consecutive wrong passwords, and a client
address that failed ``address_max_failures`` times within that window may not try again until
it has passed (counted from the audit trail, so there is no second record of failures).
"""

from __future__ import annotations

import csv
import hashlib
import secrets
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import argon2
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from geo import audit, schema
from geo.codes import level_of
from geo.errors import CodeError, GridgovError, SettingsError
from geo.scope import Scope, check_role_scope
from geo.settings import DEV_ID_HASH_SALT, Settings
from geo.vocab import LEVEL_NAMES_ZH, ROLE_ZH, ROLES

LAST_SEEN_EVERY = timedelta(seconds=60)
"""A session's last_seen_at is written at most this often (not on every request)."""
IMPORT_COLUMNS = {
    "username": ("username", "用户名", "账号"),
    "display_name": ("display_name", "姓名", "显示名"),
    "role": ("role", "角色"),
    "scope_code": ("scope_code", "辖区代码", "辖区"),
    "valid_from": ("valid_from", "有效期起", "生效日期"),
    "valid_to": ("valid_to", "有效期止", "失效日期"),
}
"""Columns of a staff list (``gridgov users import``) and the headers each accepts."""
PASSWORD_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789"
USERNAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789._-")
_HASHER = argon2.PasswordHasher()
_DUMMY_HASH = _HASHER.hash("gridgov: a password no account has")


class AccountError(GridgovError):
    """An account operation was refused; ``problems`` lists every reason (an import's rows)."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        self.problems = list(problems or [])
        super().__init__(message)


@dataclass(frozen=True)
class Account:
    """One account as the dashboard and the CLI see it (never the password hash)."""

    id: int
    username: str
    display_name: str
    role: str
    scope_code: str | None
    active: bool
    valid_from: datetime | None
    valid_to: datetime | None
    must_change_password: bool
    failed_logins: int
    locked_until: datetime | None
    demo: bool
    last_login_at: datetime | None = None

    @property
    def scope(self) -> Scope:
        """The account's scope (:class:`geo.scope.Scope`)."""
        return Scope(self.role, self.scope_code)

    @property
    def role_zh(self) -> str:
        """The role in Chinese (网格员, 镇街 …)."""
        return ROLE_ZH.get(self.role, self.role)

    @property
    def actor(self) -> audit.Actor:
        """The account as an audit row names it."""
        return audit.Actor(self.username, self.role, self.scope_code)

    def usable(self, now: datetime, *, mode: str) -> str | None:
        """Return why the account may not be used now (Chinese), or None when it may."""
        if not self.active:
            return "账户已停用，请联系管理员"
        if self.valid_from and now < self.valid_from:
            return f"账户自 {self.valid_from:%Y-%m-%d} 起生效"
        if self.valid_to and now >= self.valid_to:
            return "账户已过有效期，请联系管理员"
        if self.demo and mode != "demo":
            return "演示账户只能在演示模式下登录"
        return None


@dataclass
class LoginResult:
    """The outcome of :func:`login`: a session token, or the reason (Chinese) it failed."""

    account: Account | None = None
    token: str | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        """True when a session was opened."""
        return self.token is not None


@dataclass
class ImportResult:
    """Accounts created by :func:`import_users`, with their one-time passwords."""

    created: list[tuple[str, str]] = field(default_factory=list)


# --------------------------------------------------------------------------- start-up


def check_serving(engine: Engine, settings: Settings) -> None:
    """Refuse to serve with the development ID salt outside demo mode, or demo mode on real data.

    Raises
    ------
    SettingsError
        Production mode with :data:`geo.settings.DEV_ID_HASH_SALT`, or demo mode on a store that
        holds cases not made by ``gridgov demo``.
    """
    if settings.mode != "demo" and settings.id_hash_salt == DEV_ID_HASH_SALT:
        raise SettingsError(
            "GRIDGOV_ID_HASH_SALT 仍是开发用默认值：生产环境请设置保密的盐值；只用演示数据时设置 "
            "GRIDGOV_MODE=demo / GRIDGOV_ID_HASH_SALT is the development default: set a secret "
            "salt in production, or GRIDGOV_MODE=demo for synthetic data only")
    if settings.mode == "demo":
        query = sa.select(schema.cases.c.case_id).where(
            schema.cases.c.synthetic.is_(False)).limit(1)
        with engine.connect() as conn:
            if conn.execute(query).first() is not None:
                raise SettingsError(
                    "演示模式下数据库中不能有真实案件（GRIDGOV_MODE=demo 仅用于演示数据）/ demo "
                    "mode refused: the store holds real (non-synthetic) cases; unset GRIDGOV_MODE")


# --------------------------------------------------------------------------- accounts


def add_user(engine: Engine, *, username: str, display_name: str, role: str,
             scope_code: str | None, password: str, settings: Settings, actor: audit.Actor,
             valid_from: datetime | None = None, valid_to: datetime | None = None,
             must_change: bool = True, demo: bool = False) -> Account:
    """Create an account (audited); the password must be changed at first login by default.

    Raises
    ------
    AccountError
        Bad username, role, scope, dates or password, or the username is taken.
    """
    with engine.begin() as conn:
        problems = _check_new(conn, username=username, display_name=display_name, role=role,
                              scope_code=scope_code, valid_from=valid_from, valid_to=valid_to)
        problems += _password_problems(password, settings)
        if problems:
            raise AccountError("账户未创建 / account not created: " + "; ".join(problems),
                               problems)
        _insert(conn, username=username, display_name=display_name, role=role,
                scope_code=scope_code, password=password, valid_from=valid_from,
                valid_to=valid_to, must_change=must_change, demo=demo, actor=actor)
        return _account(conn, username)


def list_users(engine: Engine) -> list[Account]:
    """Every account, by username."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(*_ACCOUNT_COLUMNS).order_by(schema.users.c.username)
                            ).mappings().all()
    return [_to_account(r) for r in rows]


def get_user(engine: Engine, username: str) -> Account | None:
    """The account with this username, or None."""
    with engine.connect() as conn:
        return _account(conn, username)


def disable_user(engine: Engine, username: str, *, actor: audit.Actor) -> Account:
    """Disable an account and end its sessions at once (audited)."""
    now = datetime.now()
    with engine.begin() as conn:
        account = _require(conn, username)
        u = schema.users
        conn.execute(u.update().where(u.c.id == account.id).values(active=False, updated_at=now))
        _end_sessions(conn, account.id, reason="disabled", now=now)
        audit.record(conn, "account", actor=actor, detail=f"停用账户 disable {username}")
        return _account(conn, username)


def reset_password(engine: Engine, username: str, password: str, *, settings: Settings,
                   actor: audit.Actor) -> Account:
    """Set a new one-time password, unlock the account, end its sessions (audited)."""
    problems = _password_problems(password, settings)
    if problems:
        raise AccountError("密码未重置 / password not reset: " + "; ".join(problems), problems)
    now = datetime.now()
    with engine.begin() as conn:
        account = _require(conn, username)
        u = schema.users
        conn.execute(u.update().where(u.c.id == account.id).values(
            password_hash=_HASHER.hash(password), must_change_password=True, failed_logins=0,
            locked_until=None, updated_at=now, password_changed_at=now))
        _end_sessions(conn, account.id, reason="reset", now=now)
        audit.record(conn, "account", actor=actor,
                     detail=f"重置密码并解锁 reset password {username}")
        return _account(conn, username)


def change_password(engine: Engine, account: Account, old: str, new: str, *,
                    settings: Settings, address: str | None = None) -> None:
    """Change one's own password (the old one must match); clears must-change (audited).

    Raises
    ------
    AccountError
        The old password is wrong or the new one is not acceptable.
    """
    problems = _password_problems(new, settings)
    if new == old:
        problems.append("新密码不能与原密码相同 / the new password must differ from the old one")
    with engine.begin() as conn:
        stored = conn.execute(sa.select(schema.users.c.password_hash).where(
            schema.users.c.id == account.id)).scalar_one()
        if not _verify(stored, old):
            problems.insert(0, "原密码不正确 / the current password is wrong")
        if problems:
            raise AccountError("；".join(p.split(" / ")[0] for p in problems), problems)
        now = datetime.now()
        u = schema.users
        conn.execute(u.update().where(u.c.id == account.id).values(
            password_hash=_HASHER.hash(new), must_change_password=False, updated_at=now,
            password_changed_at=now))
        audit.record(conn, "account", actor=account.actor, address=address,
                     detail="修改本人密码 changed own password")


def import_users(engine: Engine, path: Path, *, settings: Settings,
                 actor: audit.Actor) -> ImportResult:
    """Create every account of a staff list (CSV, UTF-8 or GBK) in one transaction.

    Each account gets a random one-time password (returned, to hand over; it must be changed
    at first login). All or nothing: one bad row (unknown role, a scope code that is not a
    current unit of the role's level, a taken or repeated username, a bad date) rejects the
    file, and the error lists every bad row with its line number.

    Raises
    ------
    AccountError
        With ``problems``: one line per rejected row.
    """
    rows = _read_staff_list(path)
    result = ImportResult()
    with engine.begin() as conn:
        problems: list[str] = []
        seen: set[str] = set()
        for line, row in rows:
            try:
                valid_from, valid_to = _day(row.get("valid_from")), _day(row.get("valid_to"))
            except ValueError:
                problems.append(f"第 {line} 行：日期应为 YYYY-MM-DD / line {line}: dates must be "
                                "YYYY-MM-DD")
                continue
            username = row.get("username", "")
            found = _check_new(conn, username=username, display_name=row.get("display_name", ""),
                               role=parse_role(row.get("role", "")), scope_code=row.get("scope_code")
                               or None, valid_from=valid_from, valid_to=valid_to)
            if username in seen:
                found.append(f"用户名 {username} 在文件中重复 / username {username} repeats in "
                             "the file")
            seen.add(username)
            problems += [f"第 {line} 行：{p}" for p in found]
            if not found:
                password = new_password()
                _insert(conn, username=username, display_name=row["display_name"],
                        role=parse_role(row["role"]), scope_code=row.get("scope_code") or None,
                        password=password, valid_from=valid_from, valid_to=valid_to,
                        must_change=True, demo=False, actor=actor)
                result.created.append((username, password))
        if problems:  # raising inside the transaction rolls back every account of the file
            raise AccountError(f"名单有 {len(problems)} 处问题，未导入任何账户 / {len(problems)} "
                               "problem(s) in the staff list; no account was imported", problems)
    return result


DEMO_USERNAMES = {"grid_worker": "demo-grid", "street": "demo-street",
                  "district": "demo-district", "city": "demo-city", "admin": "demo-admin"}
"""The demo account of each role (created by ``gridgov demo``; usable in demo mode only)."""


def create_demo_accounts(engine: Engine, *, settings: Settings) -> tuple[str, list[Account]]:
    """Create (or renew) one demo account per role with one fresh password; return both.

    The grid worker holds the village with the most cases, the street and district accounts
    that village's street and district, so every demo role lands on data. Demo accounts log
    in only in demo mode (``GRIDGOV_MODE=demo``).
    """
    from geo.codes import parent_of

    c = schema.cases.c
    with engine.connect() as conn:
        village = conn.execute(sa.select(c.village_code).where(c.village_code.is_not(None))
                               .group_by(c.village_code)
                               .order_by(sa.func.count().desc(), c.village_code).limit(1)
                               ).scalar()
    if village is None:
        raise AccountError("演示账户需要先有演示案件 / demo accounts need demo cases first")
    street = parent_of(village)
    scopes = {"grid_worker": village, "street": street, "district": parent_of(street),
              "city": street[:4] + "00000000", "admin": None}
    names = {"grid_worker": "演示网格员", "street": "演示镇街", "district": "演示区",
             "city": "演示市级", "admin": "演示管理员"}
    password = new_password()
    actor = cli_actor()
    with engine.begin() as conn:
        _drop_accounts(conn, schema.users.c.username.in_(DEMO_USERNAMES.values()))
        for role, username in DEMO_USERNAMES.items():
            _insert(conn, username=username, display_name=names[role], role=role,
                    scope_code=scopes[role], password=password, valid_from=None, valid_to=None,
                    must_change=False, demo=True, actor=actor)
        created = [_account(conn, username) for username in DEMO_USERNAMES.values()]
    return password, created


def drop_demo_accounts(engine: Engine, *, prefix: str) -> None:
    """Remove the demo accounts whose username starts with ``prefix``, and their sessions.

    For tools that renew accounts they made, as :func:`create_demo_accounts` renews its own
    (``bench/bench_load.py`` benches a store in place, and :func:`add_user` refuses a taken
    username). Only demo accounts: a real account is disabled, never removed.
    """
    u = schema.users.c
    with engine.begin() as conn:
        _drop_accounts(conn, u.username.startswith(prefix, autoescape=True) & u.demo.is_(True))


def _drop_accounts(conn: Connection, which: sa.ColumnElement[bool]) -> None:
    """Delete the accounts ``which`` selects, their sessions first."""
    u = schema.users
    old = list(conn.execute(sa.select(u.c.id).where(which)).scalars())
    if old:
        conn.execute(schema.user_session.delete().where(schema.user_session.c.user_id.in_(old)))
        conn.execute(u.delete().where(u.c.id.in_(old)))


def new_password(length: int = 16) -> str:
    """A random one-time password: letters and digits without look-alikes (≈ 90 bits at 16).

    No punctuation, so a spreadsheet never takes one for a formula (``-…``, ``=…``).
    """
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(length))


# --------------------------------------------------------------------------- logins and sessions


def login(engine: Engine, username: str, password: str, *, settings: Settings,
          address: str | None, now: datetime | None = None) -> LoginResult:
    """Check a password and open a session (audited either way).

    Returns
    -------
    LoginResult
        ``token`` (for the cookie) and the account on success; otherwise ``reason`` in Chinese.
        Unknown usernames and wrong passwords give the same reason and take the same time.
    """
    now = now or datetime.now()
    window = timedelta(minutes=settings.login_lockout_minutes)
    username = (username or "").strip().lower()[:64]
    wrong = "用户名或密码错误"
    with engine.begin() as conn:
        attempt = audit.Actor(username or None)
        if audit.failures_from(conn, address, since=now - window) >= settings.address_max_failures:
            audit.record(conn, "login_failed", actor=attempt, address=address,
                         detail="本地址失败次数过多 address throttled")
            return LoginResult(reason=f"该地址登录失败次数过多，请 {settings.login_lockout_minutes}"
                                      " 分钟后再试")
        account = _account(conn, username) if username else None
        if account is None:
            _verify(_DUMMY_HASH, password)  # the same time as a real check
            audit.record(conn, "login_failed", actor=attempt, address=address,
                         detail="未知用户名 unknown username")
            return LoginResult(reason=wrong)
        if account.locked_until and now < account.locked_until:
            audit.record(conn, "login_failed", actor=account.actor, address=address,
                         detail="账户已锁定 account locked")
            return LoginResult(reason=f"登录失败次数过多，账户已锁定至 {account.locked_until:%H:%M}"
                                      "，请稍后再试或联系管理员重置密码")
        stored = conn.execute(sa.select(schema.users.c.password_hash).where(
            schema.users.c.id == account.id)).scalar_one()
        u = schema.users
        if not _verify(stored, password):
            failures = account.failed_logins + 1
            locked = now + window if failures >= settings.login_max_failures else None
            conn.execute(u.update().where(u.c.id == account.id).values(
                failed_logins=0 if locked else failures, locked_until=locked))
            audit.record(conn, "login_failed", actor=account.actor, address=address,
                         detail="密码错误 wrong password" + ("，已锁定 locked" if locked else ""))
            if locked:
                return LoginResult(reason=f"登录失败次数过多，账户已锁定 "
                                          f"{settings.login_lockout_minutes} 分钟")
            return LoginResult(reason=wrong)
        refused = account.usable(now, mode=settings.mode)
        if refused:
            audit.record(conn, "login_failed", actor=account.actor, address=address,
                         detail=refused)
            return LoginResult(reason=refused)
        values: dict = {"failed_logins": 0, "locked_until": None, "last_login_at": now}
        if _HASHER.check_needs_rehash(stored):
            values["password_hash"] = _HASHER.hash(password)
        conn.execute(u.update().where(u.c.id == account.id).values(**values))
        token = secrets.token_urlsafe(32)
        conn.execute(schema.user_session.insert().values(
            token_hash=token_hash(token), user_id=account.id, created_at=now, last_seen_at=now,
            address=(address or "")[:64] or None))
        audit.record(conn, "login", actor=account.actor, address=address)
        return LoginResult(account=_account(conn, username), token=token)


def session_account(engine: Engine, token: str | None, *, settings: Settings,
                    now: datetime | None = None, address: str | None = None,
                    write_turn: Callable[[], AbstractContextManager] | None = None
                    ) -> Account | None:
    """Return the account of a live session, or None (ending it when idle or no longer usable).

    One indexed read per request; the last-seen time is written at most once a minute, inside
    ``write_turn()`` when given (the server's queue of writers, :meth:`geo.store.Store.write_turn`).
    """
    if not token:
        return None
    now = now or datetime.now()
    s, u = schema.user_session, schema.users
    key = token_hash(token)
    query = (sa.select(s.c.last_seen_at, s.c.ended_at, *_ACCOUNT_COLUMNS)
             .join(u, u.c.id == s.c.user_id).where(s.c.token_hash == key))
    with engine.connect() as conn:
        row = conn.execute(query).mappings().first()
    if row is None or row["ended_at"] is not None:
        return None
    account = _to_account(row)
    idle = now - row["last_seen_at"] > timedelta(minutes=settings.session_idle_minutes)
    unusable = account.usable(now, mode=settings.mode)
    if idle or unusable:
        end_session(engine, token, reason="idle" if idle else "disabled", address=address,
                    now=now)
        return None
    if now - row["last_seen_at"] >= LAST_SEEN_EVERY:
        # the callbacks of one view arrive together and all see the old time: one writes it
        with write_turn() if write_turn else nullcontext(), engine.begin() as conn:
            conn.execute(s.update().where(s.c.token_hash == key,
                                          s.c.last_seen_at <= now - LAST_SEEN_EVERY)
                         .values(last_seen_at=now))
    return account


def end_session(engine: Engine, token: str | None, *, reason: str = "logout",
                address: str | None = None, now: datetime | None = None) -> None:
    """End a session (logout, idle timeout); audited as a logout with the reason."""
    if not token:
        return
    now = now or datetime.now()
    s, u = schema.user_session, schema.users
    key = token_hash(token)
    with engine.begin() as conn:
        row = conn.execute(sa.select(u.c.username, u.c.role, u.c.scope_code)
                           .join(s, s.c.user_id == u.c.id)
                           .where(s.c.token_hash == key, s.c.ended_at.is_(None))).first()
        if row is None:
            return
        conn.execute(s.update().where(s.c.token_hash == key).values(ended_at=now,
                                                                    end_reason=reason))
        audit.record(conn, "logout", actor=audit.Actor(*row), address=address,
                     detail={"logout": "退出登录", "idle": "空闲超时 idle timeout",
                             "disabled": "账户不可用 account unusable"}.get(reason, reason))


def token_hash(token: str) -> str:
    """The key a session token is stored under (its SHA-256: the token itself is never kept)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def cli_actor() -> audit.Actor:
    """The operating-system user running a ``gridgov`` command, as an audit actor."""
    import getpass

    try:
        name = getpass.getuser()
    except (OSError, KeyError):
        name = "unknown"
    return audit.Actor(f"cli:{name}"[:64], "admin", None)


# --------------------------------------------------------------------------- helpers

_ACCOUNT_COLUMNS = tuple(schema.users.c[name] for name in (
    "id", "username", "display_name", "role", "scope_code", "active", "valid_from", "valid_to",
    "must_change_password", "failed_logins", "locked_until", "demo", "last_login_at"))


def _to_account(row) -> Account:  # noqa: ANN001 - a SQLAlchemy row mapping
    return Account(**{c.name: row[c.name] for c in _ACCOUNT_COLUMNS})


def _account(conn: Connection, username: str) -> Account | None:
    row = conn.execute(sa.select(*_ACCOUNT_COLUMNS).where(schema.users.c.username == username)
                       ).mappings().first()
    return _to_account(row) if row is not None else None


def _require(conn: Connection, username: str) -> Account:
    account = _account(conn, username)
    if account is None:
        raise AccountError(f"没有用户名为 {username} 的账户 / no account named {username}")
    return account


def _insert(conn: Connection, *, username: str, display_name: str, role: str,
            scope_code: str | None, password: str, valid_from: datetime | None,
            valid_to: datetime | None, must_change: bool, demo: bool,
            actor: audit.Actor) -> None:
    now = datetime.now()
    conn.execute(schema.users.insert().values(
        username=username, display_name=display_name.strip(), role=role, scope_code=scope_code,
        active=True, valid_from=valid_from, valid_to=valid_to, password_hash=_HASHER.hash(password),
        must_change_password=must_change, failed_logins=0, locked_until=None, demo=demo,
        created_at=now, updated_at=now, password_changed_at=now))
    audit.record(conn, "account", actor=actor, unit_code=scope_code,
                 detail=f"新建账户 add {username}（{ROLE_ZH[role]}）")


def _check_new(conn: Connection, *, username: str, display_name: str, role: str,
               scope_code: str | None, valid_from: datetime | None,
               valid_to: datetime | None) -> list[str]:
    """Every reason (bilingual) a new account cannot be created as given."""
    problems = []
    if not username or len(username) > 64 or not set(username) <= USERNAME_CHARS:
        problems.append(f"用户名 {username!r} 无效：只能用小写字母、数字和 . _ -（至多 64 位）/ "
                        f"username {username!r} is invalid: lower-case letters, digits, . _ -")
    elif _account(conn, username) is not None:
        problems.append(f"用户名 {username} 已存在 / username {username} is taken")
    if not (display_name or "").strip():
        problems.append("姓名不能为空 / the display name is empty")
    try:
        check_role_scope(role, scope_code)
        if scope_code is not None and not _is_current_unit(conn, scope_code):
            problems.append(f"辖区代码 {scope_code} 不是当前网格中的{LEVEL_NAMES_ZH[level_of(scope_code)]}"
                            f" / scope {scope_code} is not a unit of the current grid")
    except CodeError as error:
        problems.append(str(error))
    if valid_from and valid_to and valid_to <= valid_from:
        problems.append("有效期止应晚于有效期起 / valid_to must be after valid_from")
    return problems


def _is_current_unit(conn: Connection, code: str) -> bool:
    g = schema.grid_unit.c
    return conn.execute(sa.select(g.code).where(g.code == code, g.is_current.is_(True))
                        ).first() is not None


def _password_problems(password: str, settings: Settings) -> list[str]:
    if len(password or "") < settings.password_min_length:
        return [f"密码至少 {settings.password_min_length} 位 / a password needs at least "
                f"{settings.password_min_length} characters"]
    return []


def _verify(stored: str, password: str) -> bool:
    try:
        return _HASHER.verify(stored, password or "")
    except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
        return False


def _end_sessions(conn: Connection, user_id: int, *, reason: str, now: datetime) -> None:
    s = schema.user_session
    conn.execute(s.update().where(s.c.user_id == user_id, s.c.ended_at.is_(None))
                 .values(ended_at=now, end_reason=reason))


def parse_role(value: str) -> str:
    """A role given as its key (street) or its Chinese name (镇街)."""
    value = (value or "").strip()
    by_zh = {zh: key for key, zh in ROLE_ZH.items()}
    return by_zh.get(value, value.lower() if value.lower() in ROLES else value)


def _day(value: str | None) -> datetime | None:
    value = (value or "").strip()
    return datetime.fromisoformat(value[:10]) if value else None


def _read_staff_list(path: Path) -> list[tuple[int, dict[str, str]]]:
    raw = path.read_bytes()
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:  # pragma: no cover - gb18030 decodes any byte string
        raise AccountError("无法识别文件编码 / cannot decode the file")
    reader = csv.DictReader(text.splitlines())
    headers = {h.strip(): h for h in reader.fieldnames or []}
    mapping = {}
    for name, accepted in IMPORT_COLUMNS.items():
        found = next((headers[a] for a in accepted if a in headers), None)
        if found:
            mapping[name] = found
    missing = [IMPORT_COLUMNS[n][1] for n in ("username", "display_name", "role")
               if n not in mapping]
    if missing:
        raise AccountError(f"名单缺少列：{'、'.join(missing)} / the staff list lacks the columns "
                           f"{', '.join(missing)} (username, display_name, role, scope_code)")
    rows = []
    for line, record in enumerate(reader, start=2):
        values = {name: (record.get(column) or "").strip() for name, column in mapping.items()}
        if any(values.values()):
            values["username"] = values.get("username", "").lower()
            rows.append((line, values))
    return rows
