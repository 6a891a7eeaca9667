"""API keys (接口密钥) of the Open311 server: who may submit and read cases, for which unit.

A key belongs to one calling system (穗智访, a district's hotline platform, a site's QR kiosk): it
has a name, a scope unit (the cases it may create and read, :mod:`geo.scope`) and the 信访渠道
its cases get (网上 by default). The token is ``gg_`` + 32 random bytes (256 bits, URL-safe),
printed once by ``gridgov apikeys add`` and never stored: the store keeps its SHA-256.

Why SHA-256 and not argon2 (which the passwords use): argon2 is slow on purpose, to make
guessing a *low-entropy* secret expensive. A 256-bit random token cannot be guessed however fast
the hash is, so a slow hash adds no protection, but it would cost tens of milliseconds and a
lot of memory on every API call (the intake bench posts 20 at a time), and, being salted, it
could not be looked up by an index. An unsalted SHA-256 of a random token is the usual answer
(GitHub's and Stripe's tokens, and gridgov's own session cookies, :func:`geo.accounts.token_hash`).

Every change to a key (add, revoke) and every API call is in the audit trail (:mod:`geo.audit`);
a key's calls are counted from it for the rate limit (:func:`calls_in_last_minute`), so several
server processes share one limit with no second record.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from geo import audit, schema
from geo.codes import level_of
from geo.errors import CodeError, GridgovError
from geo.scope import Scope
from geo.vocab import CHANNEL_ONLINE, CHANNELS

TOKEN_PREFIX = "gg_"
ACTOR_PREFIX = "api:"
KEY_ROLES: dict[str, str] = {"city": "city", "district": "district", "street": "street",
                             "village": "grid_worker", "grid": "grid_worker"}
"""The role whose scope rule a key of each unit level reads with (a key is no person: it holds
the view of the office of its level, never the right to reveal a contact)."""
NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789._-")


class ApiKeyError(GridgovError):
    """A key cannot be created or revoked (bad name, scope or channel; unknown key)."""


@dataclass(frozen=True)
class ApiKey:
    """One API key as the server and the CLI see it (never the token, never its hash)."""

    id: int
    name: str
    token_prefix: str
    scope_code: str
    channel: str
    active: bool
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def scope(self) -> Scope:
        """What the key may read and write (:class:`geo.scope.Scope`); it may never reveal."""
        return Scope(KEY_ROLES[level_of(self.scope_code)], self.scope_code)

    @property
    def actor(self) -> audit.Actor:
        """The key as an audit row and a case event name it (``api:<name>``)."""
        return audit.Actor(ACTOR_PREFIX + self.name, "api", self.scope_code)


def token_hash(token: str) -> str:
    """Return the SHA-256 (hex) under which a token is stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def add_key(engine: Engine, *, name: str, scope_code: str, channel: str | None = None,
            actor: audit.Actor) -> tuple[ApiKey, str]:
    """Create a key; return it and its token (shown once, stored only as a hash).

    Raises
    ------
    ApiKeyError
        A name that is empty, too long, not ``a-z 0-9 . _ -`` or taken; a scope code that is
        not a current unit of the grid; a channel outside :data:`geo.vocab.CHANNELS`.
    """
    name = (name or "").strip().lower()
    channel = channel or CHANNEL_ONLINE
    _check_new(name, scope_code, channel)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = datetime.now().replace(microsecond=0)
    t = schema.api_key
    with engine.begin() as conn:
        if not _is_current_unit(conn, scope_code):
            raise ApiKeyError(f"辖区代码 {scope_code} 不是当前网格中的单位 / {scope_code} is not a "
                              "unit of the current grid")
        if conn.execute(sa.select(t.c.id).where(t.c.name == name)).first() is not None:
            raise ApiKeyError(f"密钥名称 {name} 已存在 / a key named {name} exists")
        conn.execute(t.insert().values(name=name, token_hash=token_hash(token),
                                       token_prefix=token[:10], scope_code=scope_code,
                                       channel=channel, active=True, created_at=now))
        audit.record(conn, "apikey", actor=actor, unit_code=scope_code,
                     detail=f"新建接口密钥 add key {name}（渠道 channel {channel}）")
        key = _key(conn, name)
    return key, token


def list_keys(engine: Engine) -> list[ApiKey]:
    """Every key, active or revoked, by name."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(*_COLUMNS).order_by(schema.api_key.c.name)).mappings()
        return [ApiKey(**row) for row in rows]


def revoke_key(engine: Engine, name: str, *, actor: audit.Actor) -> ApiKey:
    """Revoke a key: from the next call on it is refused (audited)."""
    name = (name or "").strip().lower()
    t = schema.api_key
    with engine.begin() as conn:
        key = _key(conn, name)
        if key is None:
            raise ApiKeyError(f"没有名为 {name} 的接口密钥 / no key named {name}")
        now = datetime.now().replace(microsecond=0)
        conn.execute(t.update().where(t.c.id == key.id).values(active=False, revoked_at=now))
        audit.record(conn, "apikey", actor=actor, unit_code=key.scope_code,
                     detail=f"吊销接口密钥 revoke key {name}")
        return _key(conn, name)


def key_for_token(bind: Engine | Connection, token: str | None) -> ApiKey | None:
    """Return the active key a token belongs to, or None (unknown, revoked, malformed)."""
    if not token or not isinstance(token, str) or len(token) > 200 \
            or not token.startswith(TOKEN_PREFIX):
        return None
    params = {"token_hash": token_hash(token)}
    if isinstance(bind, Connection):
        row = bind.execute(_BY_TOKEN, params).mappings().first()
    else:
        with bind.connect() as conn:
            row = conn.execute(_BY_TOKEN, params).mappings().first()
    return ApiKey(**row) if row else None


def calls_in_last_minute(bind: Engine | Connection, key: ApiKey, *,
                         now: datetime | None = None) -> int:
    """Count the key's API calls in the last 60 s, from the audit trail (the rate limit)."""
    params = {"since": (now or datetime.now()) - timedelta(seconds=60),
              "username": key.actor.username}
    if isinstance(bind, Connection):
        return int(bind.execute(_CALLS, params).scalar_one())
    with bind.connect() as conn:
        return int(conn.execute(_CALLS, params).scalar_one())


# --------------------------------------------------------------------------- helpers

_COLUMNS = tuple(schema.api_key.c[name] for name in (
    "id", "name", "token_prefix", "scope_code", "channel", "active", "created_at", "revoked_at"))
# the two reads of every API call, built once (SQLAlchemy then reuses their compiled form)
_BY_TOKEN = sa.select(*_COLUMNS).where(
    schema.api_key.c.token_hash == sa.bindparam("token_hash"), schema.api_key.c.active.is_(True))
_CALLS = sa.select(sa.func.count()).where(
    schema.audit_log.c.at >= sa.bindparam("since"), schema.audit_log.c.action == "api",
    schema.audit_log.c.username == sa.bindparam("username"))


def _key(conn: Connection, name: str) -> ApiKey | None:
    row = conn.execute(sa.select(*_COLUMNS).where(schema.api_key.c.name == name)
                       ).mappings().first()
    return ApiKey(**row) if row else None


def _check_new(name: str, scope_code: str, channel: str) -> None:
    if not name or len(name) > 64 - len(ACTOR_PREFIX) or not set(name) <= NAME_CHARS:
        raise ApiKeyError("密钥名称须为 1–60 个小写字母、数字或 . _ - / a key name is 1–60 "
                          "characters of a-z 0-9 . _ -")
    if channel not in CHANNELS:
        raise ApiKeyError(f"未知渠道 {channel!r}，可用：{'、'.join(CHANNELS)} / unknown channel; "
                          f"use one of {', '.join(CHANNELS)}")
    try:
        level_of(scope_code)
    except CodeError as error:
        raise ApiKeyError(str(error)) from error


def _is_current_unit(conn: Connection, code: str) -> bool:
    g = schema.grid_unit.c
    return conn.execute(sa.select(g.code).where(g.code == code, g.is_current.is_(True))
                        ).first() is not None
