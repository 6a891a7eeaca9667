"""One documented registry of settings, validated once and passed explicitly.

Library code receives a :class:`Settings` (inside a :class:`geo.store.Store`) as an
argument; only entry points (the CLI, the Dash app factory) read the environment, through
:meth:`Settings.from_env`. Every field carries its help text and its allowed values, so
``docs/settings.md`` and ``gridgov settings`` are generated from it, a test fails when a
setting is undocumented, and a bad value stops start-up with a bilingual message naming the
variable and what it accepts (datasette's typed settings), instead of a traceback later.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

from geo.errors import SettingsError

ENV_PREFIX = "GRIDGOV_"
BASEMAP_CHOICES = ("osm", "amap", "tianditu", "none")
MODE_CHOICES = ("production", "demo")
COOKIE_SECURE_CHOICES = ("auto", "always")
DEV_ID_HASH_SALT = "gridgov-dev-salt"
"""The development salt: accepted only in demo mode (``GRIDGOV_MODE=demo``)."""


def _setting(default: Any, help: str, *, choices: tuple[str, ...] | None = None,
             low: float | None = None, high: float | None = None, secret: bool = False,
             may_be_empty: bool = False) -> Any:
    return field(default=default, metadata={"help": help, "choices": choices, "low": low,
                                            "high": high, "secret": secret,
                                            "may_be_empty": may_be_empty})


@dataclass(frozen=True)
class Settings:
    """Every tunable value of gridgov, with its default and its reason."""

    database_url: str = _setting(
        "sqlite:///gridgov.db",
        "Store URL: sqlite:///FILE (embedded default) or postgresql+psycopg://… (PostGIS).",
    )
    nearest_max_m: float = _setting(
        200.0,
        "A case point at most this many metres outside every cell is attached to the nearest "
        "cell (rivers, coastline, GPS noise) and flagged with the distance.",
        low=0, high=5000,
    )
    default_deadline_days: int = _setting(
        60, "办理期限: days from 受理 to 办结 when the source gives no due date (信访工作条例 Art. 34).",
        low=1, high=365,
    )
    extension_days: int = _setting(
        30, "Days added to the deadline when an extension (延期) is approved (Art. 34).",
        low=0, high=365,
    )
    acceptance_days: int = _setting(
        15, "Days from 登记 within which 受理 counts as timely (及时受理, Art. 22/23).",
        low=1, high=90,
    )
    rating_window_days: int = _setting(
        30,
        "Days after 答复 during which the petitioner may rate; after that the rating state is "
        "超期未评价. No official window is published (docs/domain.md), hence a setting.",
        low=1, high=365,
    )
    followup_days: int = _setting(
        15,
        "Days after 答复 within which a 回访 (follow-up contact) is due; an inferred working "
        "rule (the 条例 sets no limit), shown as the deadline of the 待回访 list.",
        low=1, high=365,
    )
    due_soon_share: float = _setting(
        0.8,
        "A deadline is 临期 (due soon) once this share of its limit has passed: acceptance "
        "(登记 + 15 days) from day 12, handling (60 days) with 12 days left.",
        low=0.5, high=0.99,
    )
    min_cases_for_rate: int = _setting(
        10, "A unit with fewer cases than this gets no rate for ranking (too few to compare).",
        low=1, high=100_000,
    )
    coverage_radius_hall_m: float = _setting(
        1000.0, "Walking reach of a district petition hall (区信访超市), metres (GB 50180-2018 "
        "15-minute life circle).", low=50, high=20_000,
    )
    coverage_radius_centre_m: float = _setting(
        1000.0, "Walking reach of a street comprehensive-governance centre (镇街综治中心), metres.",
        low=50, high=20_000,
    )
    coverage_radius_station_m: float = _setting(
        500.0, "Walking reach of a village service station (村居服务站), metres.",
        low=50, high=20_000,
    )
    coverage_radius_mediation_m: float = _setting(
        500.0, "Walking reach of a people's mediation room (人民调解工作室), metres.",
        low=50, high=20_000,
    )
    id_hash_salt: str = _setting(
        DEV_ID_HASH_SALT,
        "Salt for hashing petitioners' ID numbers (身份证号). Set a secret value in production "
        "(the dashboard refuses to start with this default outside demo mode); changing it "
        "breaks repeat-petitioner matching across runs.", secret=True,
    )
    mode: str = _setting(
        "production",
        "production: real data; the dashboard refuses the development ID salt and demo "
        "accounts cannot log in. demo: synthetic data only (gridgov demo); the development salt "
        "and the demo accounts are accepted, and a store holding real cases is refused.",
        choices=MODE_CHOICES,
    )
    secret_key: str = _setting(
        "",
        "Key signing the session cookie and CSRF tokens. Empty: a random key at every start "
        "(everyone logs in again after a restart). Give every server process behind one address "
        "the same value.", secret=True, may_be_empty=True,
    )
    session_idle_minutes: int = _setting(
        30, "A session unused for this many minutes ends (空闲超时); the user logs in again.",
        low=1, high=1440,
    )
    login_max_failures: int = _setting(
        5, "Consecutive wrong passwords after which an account is locked for "
        "login_lockout_minutes (an administrator's reset-password unlocks it).",
        low=1, high=100,
    )
    login_lockout_minutes: int = _setting(
        15, "How long an account stays locked, and the window over which failed logins from one "
        "client address are counted.", low=1, high=1440,
    )
    address_max_failures: int = _setting(
        20, "Failed logins from one client address within login_lockout_minutes after which "
        "that address may not try again until the window has passed.", low=1, high=10_000,
    )
    password_min_length: int = _setting(
        10, "Shortest password accepted when an account is created or a password changed.",
        low=8, high=128,
    )
    cookie_secure: str = _setting(
        "auto",
        "Secure flag of the session cookie: auto sets it when the request came over HTTPS; "
        "always sets it on every response (behind a proxy that terminates TLS).",
        choices=COOKIE_SECURE_CHOICES,
    )
    collective_min_people: int = _setting(
        5, "集体访: a case with at least this many people involved (涉及人数) is a collective "
        "petition, a red warning (条例 Art. 20 caps a group visit at 5 representatives).",
        low=2, high=1000,
    )
    cluster_radius_m: float = _setting(
        300.0, "群体性苗头: cases of one category within this many metres of a case (EPSG:4547) "
        "count towards a space-time cluster.", low=10, high=5000,
    )
    cluster_days: int = _setting(
        7, "群体性苗头: the cases of a cluster are registered within this many calendar days "
        "(the latest case's day and the days before it, inclusive).", low=1, high=90,
    )
    cluster_min_cases: int = _setting(
        5, "群体性苗头: a space-time cluster needs at least this many cases from different "
        "petitioners.", low=2, high=1000,
    )
    repeat_window_days: int = _setting(
        90, "重复访: days over which one petitioner's cases are counted.", low=7, high=730,
    )
    repeat_min_cases: int = _setting(
        3, "重复访: a petitioner with at least this many cases in the window is a repeat "
        "petitioner.", low=2, high=100,
    )
    repeat_min_villages: int = _setting(
        2, "重复访: a petitioner whose cases in the window concern at least this many different "
        "villages is a repeat petitioner too.",
        low=2, high=100,
    )
    warning_lookback_days: int = _setting(
        30, "Event warnings (集体访, 群体性苗头, 越级访, 不满意未跟进) look at cases registered (or "
        "rated) in this many days up to the data date; deadline warnings cover every open case.",
        low=7, high=730,
    )
    surge_baseline_weeks: int = _setting(
        8, "Surge (异常增多): weeks of a unit's own history that form its baseline (EARS-style, "
        "8-12 weeks).", low=4, high=52,
    )
    surge_guard_weeks: int = _setting(
        1, "Surge: weeks left out between the current week and the baseline (guard band), so a "
        "surge that began last week does not raise its own baseline.", low=0, high=8,
    )
    surge_min_cases: int = _setting(
        5, "Surge: a unit and category needs at least this many cases in the week to be a surge "
        "(one case is never a surge).", low=2, high=1000,
    )
    warning_fdr: float = _setting(
        0.05, "False-discovery rate (Benjamini-Hochberg) for the statistical (弱信号) warnings "
        "across all units and categories tested in one run.", low=0.001, high=0.5,
    )
    future_tolerance_min: float = _setting(
        10.0,
        "A timestamp later than the moment of loading by more than this many minutes (clock skew "
        "between systems) is rejected as lying in the future, so one mistyped year cannot move "
        "the data date (as of) past today.",
        low=0, high=1440,
    )
    max_text_chars: int = _setting(
        10_000,
        "Longest free-text value (地址, 信访内容 …) a row may carry; a longer one rejects the row "
        "with its line number (the same limit on SQLite and PostGIS). Coded columns are limited "
        "by their column width in the schema (信访件编号 64 characters, codes 15).",
        low=100, high=1_000_000,
    )
    store_lock_wait_s: float = _setting(
        300.0,
        "A load that finds another load writing to the same store waits this many seconds for "
        "it (saying so), then stops with a 'store busy' message; two loads never interleave.",
        low=0, high=86_400,
    )
    api_rate_per_minute: int = _setting(
        120,
        "Open311 API calls one key may make per minute (counted from the audit trail, so every "
        "server process shares the limit); more are refused with 429 until the minute has passed.",
        low=1, high=1_000_000,
    )
    report_rate_per_hour: int = _setting(
        5,
        "Cases one client address may report through the QR-code form (扫码上报) per hour; more "
        "are refused with a message saying when to try again (a poster is public: this stops "
        "one phone from flooding a village's list).",
        low=1, high=10_000,
    )
    address_aliases_file: str = _setting(
        "",
        "CSV of extra place names for reading addresses (columns 别名, 区划代码: e.g. a former "
        "village name and the code of the unit it now belongs to). Empty: none.",
        may_be_empty=True,
    )
    workers: int = _setting(
        0,
        "Dashboard server processes (gridgov serve): 0 = two per CPU core (the default), as "
        "gunicorn workers forked from a master that has loaded and warmed the case table, so "
        "they share it copy-on-write (docs/scaling.md); 1 = one waitress process (also where "
        "gunicorn cannot run, e.g. Windows).",
        low=0, high=64,
    )
    basemap: str = _setting(
        "osm", "Dashboard basemap: osm, amap (GCJ-02, shifted), tianditu, or none (plain background).",
        choices=BASEMAP_CHOICES,
    )

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            _check(f, getattr(self, f.name))

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``GRIDGOV_*`` environment variables, then explicit overrides.

        Returns
        -------
        Settings
            Defaults, replaced by any ``GRIDGOV_<FIELD>`` variable, replaced by ``overrides``
            whose value is not None.
        """
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = environ.get(ENV_PREFIX + f.name.upper())
            if raw is not None:
                values[f.name] = _parse(f, raw.strip())
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def to_env(self) -> dict[str, str]:
        """These settings as ``GRIDGOV_*`` variables, for a child process to read back.

        ``Settings.from_env(s.to_env()) == s`` for every valid ``s``: the dashboard server runs
        the early warnings in a child process (so the statistics libraries never load into the
        serving process) and hands it exactly its own settings this way.
        """
        return {ENV_PREFIX + f.name.upper(): str(getattr(self, f.name))
                for f in dataclasses.fields(self)}

    @classmethod
    def documentation(cls) -> list[tuple[str, Any, str]]:
        """List (environment variable, default, help) for every setting."""
        return [
            (ENV_PREFIX + f.name.upper(), f.default, f.metadata.get("help", ""))
            for f in dataclasses.fields(cls)
        ]


def allowed_text(f: dataclasses.Field) -> str:
    """What a setting accepts, for messages and docs ("0 – 5000", "osm / amap / …")."""
    meta = f.metadata
    if meta.get("choices"):
        return " / ".join(meta["choices"])
    if meta.get("may_be_empty") and f.name.endswith("_file"):
        return "文件路径或空 file path or empty"
    if meta.get("low") is not None or meta.get("high") is not None:
        kind = "整数 integer" if isinstance(f.default, int) else "数字 number"
        return f"{kind} {_number(meta.get('low'))} – {_number(meta.get('high'))}"
    if f.name == "database_url":
        return "sqlite:///FILE | postgresql://…"
    if meta.get("may_be_empty"):
        return "文本（可为空）text, may be empty"
    return "非空文本 non-empty text"


def _parse(f: dataclasses.Field, raw: str) -> Any:
    """Turn an environment value into the field's type, or raise SettingsError naming it."""
    kind = type(f.default)
    try:
        if kind is int:
            return int(raw)
        if kind is float:
            return float(raw)
    except ValueError:
        raise _error(f, raw) from None
    return raw


def _check(f: dataclasses.Field, value: Any) -> None:
    meta = f.metadata
    kind = type(f.default)
    if kind in (int, float):
        if isinstance(value, bool) or not isinstance(value, int | float) or (
                kind is int and not float(value).is_integer()) or value != value:
            raise _error(f, value)
        if (meta.get("low") is not None and value < meta["low"]) or (
                meta.get("high") is not None and value > meta["high"]):
            raise _error(f, value)
        return
    if not isinstance(value, str) or not (value.strip() or meta.get("may_be_empty")):
        raise _error(f, value)
    if meta.get("choices") and value not in meta["choices"]:
        raise _error(f, value)
    if f.name == "database_url" and not value.startswith(("sqlite:", "postgresql", "postgres:")):
        raise _error(f, value)


def _error(f: dataclasses.Field, value: Any) -> SettingsError:
    env = ENV_PREFIX + f.name.upper()
    shown = "…" if f.metadata.get("secret") else value
    return SettingsError(
        f"设置 {env}={shown!s} 无效，可用值：{allowed_text(f)} / setting {env}={shown!s} is "
        f"invalid; allowed: {allowed_text(f)}"
    )


def _number(value: float | None) -> str:
    if value is None:
        return "∞"
    return f"{value:g}"


def settings_markdown() -> str:
    """Render docs/settings.md from the registry (``gridgov settings --markdown``)."""
    lines = [
        "# Settings",
        "",
        "Generated from `geo/settings.py` by `gridgov settings --markdown > docs/settings.md`;",
        "a test fails when the two differ. Set any of these as an environment variable;",
        "`--db` on the command line overrides `GRIDGOV_DATABASE_URL`.",
        "",
        "| variable | default | allowed | meaning |",
        "|---|---|---|---|",
    ]
    for f in dataclasses.fields(Settings):
        env = ENV_PREFIX + f.name.upper()
        default = f"`{f.default}`" if f.default != "" else "（空 empty）"
        lines.append(f"| `{env}` | {default} | {allowed_text(f)} | {f.metadata['help']} |")
    return "\n".join(lines) + "\n"
