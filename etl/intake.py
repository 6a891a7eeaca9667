"""Live intake (实时受理): one new case from the Open311 API or the QR-code form, in one write.

The one write path for a single case, so the API and the form cannot disagree with each other or
with the ETL:

1. **validate** the submission (:func:`check_submission`): a known category, a description of at
   most :data:`MAX_DESCRIPTION_CHARS` characters with no HTML, a location (a WGS-84 point, an
   address, or the unit of a QR poster), short name and phone;
2. **clean and attach** it with the ETL's own rules: the one-row frame goes through
   :func:`etl.clean.check_coordinates` (swapped pairs, WGS-84, the grid's extent) and
   :func:`etl.attach.attach_columns` (point → nearest → code → address, :mod:`etl.address`),
   the rules an ingest applies through ``clean_coordinates`` and ``attach_frame``, so a
   case placed live lies where the same row in an export would (a test checks the row equals
   what the whole :func:`etl.clean.clean_cases` gives);
3. refuse a case that lands **outside the caller's scope** (an API key's unit; a QR poster's
   unit, where a browser location outside it falls back to the poster's unit);
4. **store** it in one transaction: the case, its ``created`` event (source ``api``, the key as
   actor), the intake record and the audit row, and the store version bump, so nothing is
   half-written after a refusal and the running server sees the case from the next request on.

Idempotency: the intake record keeps the client's ``Idempotency-Key`` and a SHA-256 of the
submission's values; a repeated key, or the identical submission from the same source within
:data:`REPEAT_WINDOW`, returns the first request's case instead of creating a second one.

Writers take turns on the store-version row (a row lock on PostgreSQL, the write lock on SQLite)
before they look for an earlier submission, so two identical requests at the same moment still
create one case; the case number is the next intake sequence number under that lock. Writers of
one server (its threads and its worker processes) first queue on
:meth:`geo.store.Store.write_turn`, so they wait on a lock and not in SQLite's busy handler
(its sleeps made the slowest of 1,000 POSTs at 20 clients take 3 s). A write is a dozen
statements built once (SQLAlchemy reuses their compiled form). A repeated Idempotency-Key
returns the first case even when the body differs (the key names the request).

Status updates (:func:`record_update`) are the other live write: one lifecycle event, allowed or
refused by :mod:`etl.transitions`, in the same kind of single transaction.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from etl import clean, load
from etl.attach import attach_columns, grid_index
from etl.transitions import TransitionError, parse_event, transition
from geo import audit, schema
from geo.errors import GridgovError
from geo.scope import Scope
from geo.store import Store, bump_version
from geo.vocab import CATEGORIES, CHANNEL_ONLINE, CHANNELS, RATING_PENDING

MAX_DESCRIPTION_CHARS = 4_000
"""The longest description (信访内容) a live submission may carry."""
MAX_NAME_CHARS = 50
MAX_ADDRESS_CHARS = 500
MAX_IDEMPOTENCY_KEY_CHARS = 128
REPEAT_WINDOW = timedelta(hours=24)
"""An identical submission from the same source within this window is the same request."""
CASE_ID_PREFIX: dict[str, str] = {"网上": "WS", "二维码": "EWM", "网格员上报": "WG", "电话": "DH",
                                  "来信": "LX", "来访": "LF"}
"""Case numbers of live cases: a channel prefix, the day, the intake sequence (WS20261201000042)."""
_HTML = re.compile(r"<\s*[A-Za-z!/?]|&#?[A-Za-z0-9]+;")
_PHONE = re.compile(r"\+?[0-9][0-9 \-]{4,19}")


class IntakeError(GridgovError):
    """A submission was refused; ``status`` is the HTTP answer (400 bad, 403 out of scope).

    ``field`` names the offending parameter (the Open311 ``description`` of the error says it);
    the message is Chinese first, then English, and says what to change.
    """

    def __init__(self, message: str, *, status: int = 400, field: str | None = None) -> None:
        self.status = status
        self.field = field
        super().__init__(message)


@dataclass(frozen=True)
class Submission:
    """One reported case as a caller gives it (already mapped from Open311 or the form).

    Attributes
    ----------
    category
        信访内容分类 (一级), one of :data:`geo.vocab.CATEGORIES`.
    description
        信访内容, plain text.
    lat, lon
        A WGS-84 point (both or neither).
    address
        Address text (Open311 ``address_string``), read by :mod:`etl.address`.
    unit_code
        The unit a QR poster stands for (a village or street), used when no point places it.
    name, phone
        The reporter (信访人), optional; stored as the ETL stores them, shown masked.
    """

    category: str
    description: str
    lat: float | None = None
    lon: float | None = None
    address: str | None = None
    unit_code: str | None = None
    name: str | None = None
    phone: str | None = None


@dataclass(frozen=True)
class Source:
    """Who submits: the API key or the QR point, with the scope the case must land in.

    Attributes
    ----------
    name
        ``api:<key name>`` or ``qr:<point token>`` (the idempotency namespace).
    scope
        Where the case may be placed (a key's unit; a poster's unit).
    actor
        The audit actor of the write (and the ``actor`` of the case's ``created`` event).
    channel
        信访渠道 of the case: the key's (网上 by default) or 二维码.
    action
        The audit action: ``api`` for the Open311 API, ``report`` for the QR form.
    address
        The client's network address (audit; the form's per-address limit).
    """

    name: str
    scope: Scope
    actor: audit.Actor
    channel: str = CHANNEL_ONLINE
    action: str = "api"
    address: str | None = None


@dataclass(frozen=True)
class Intake:
    """What a submission became: the case number and where it lies; ``created`` False = a repeat."""

    case_id: str
    created: bool
    registered_at: datetime
    village_code: str | None
    street_code: str | None
    district_code: str | None
    attach_method: str


def submit_case(store: Store, submission: Submission, *, source: Source,
                idempotency_key: str | None = None, detail: str | None = None,
                now: datetime | None = None) -> Intake:
    """Validate, attach and store one new case; return it (or the first one, for a repeat).

    Parameters
    ----------
    idempotency_key
        The client's ``Idempotency-Key``: the same key from the same source returns the same case.
    detail
        What the audit row says (e.g. ``POST requests.json``).
    now
        The registration moment (登记时间); default the current time.

    Raises
    ------
    IntakeError
        Invalid submission (400) or a place outside the source's scope (403); nothing written.
    """
    check_submission(submission)  # (no require_store here: it costs 13 ms, the server checked)
    _check_source(source, idempotency_key)
    now = (now or datetime.now()).replace(microsecond=0)
    row = _placed_row(store, submission, source=source, now=now)
    body = submission_hash(submission)
    with store.write_turn(), store.engine.begin() as conn:
        _take_turn(conn)
        first = _earlier_request(conn, source.name, idempotency_key, body, now=now)
        if first is not None:
            audit.record(conn, source.action, actor=source.actor, case_ids=[first.case_id],
                         address=source.address,
                         detail=_clip(f"重复提交，返回首次受理编号 repeat of {first.case_id}; "
                                      f"{detail or ''}"))
            return first
        sequence = _next_sequence(conn)
        case_id = f"{CASE_ID_PREFIX.get(source.channel, 'JR')}{now:%Y%m%d}{sequence:06d}"
        _insert(conn, row, case_id=case_id, source=source, now=now)
        conn.execute(_INSERT_REQUEST, {
            "id": sequence, "source": source.name, "idempotency_key": idempotency_key,
            "body_hash": body, "case_id": case_id, "created_at": now,
            "address": (source.address or "")[:64] or None})
        audit.record(conn, source.action, actor=source.actor, unit_code=_finest(row),
                     case_ids=[case_id], address=source.address,
                     detail=_clip(f"新建信访件 created; {detail or ''}"))
        bump_version(conn)
    return Intake(case_id, True, now, row["village_code"], row["street_code"],
                  row["district_code"], row["attach_method"])


@dataclass(frozen=True)
class Update:
    """A lifecycle event reported for a stored case (Open311 ``updates.json``)."""

    event: str
    """An event kind or its Chinese name (受理 … 评价, :data:`geo.vocab.UPDATE_EVENTS`)."""
    at: datetime
    rating: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class Updated:
    """The case after an accepted update: its id, new status and the event's time."""

    case_id: str
    status: str
    event: str
    at: datetime


def record_update(store: Store, case_id: str, update: Update, *, source: Source,
                  detail: str | None = None, now: datetime | None = None) -> Updated:
    """Append one lifecycle event to a case's timeline, if its lifecycle allows it.

    The case's columns, its row hash, the event, the audit row and the store version change in
    one transaction; a refused update writes nothing (the caller audits the refusal).

    Raises
    ------
    IntakeError
        404 for an unknown case, 403 for a case outside the source's scope, 400 for an event
        the lifecycle does not allow (:mod:`etl.transitions`, the message says why).
    """
    now = (now or datetime.now()).replace(microsecond=0)
    note = (update.note or "").strip() or None
    if note is not None and (len(note) > 500 or "\x00" in note or _HTML.search(note)):
        raise IntakeError("说明过长（上限 500 字）或含 HTML / the note is too long or holds HTML",
                          field="note")
    try:
        event = parse_event(update.event)
    except TransitionError as error:
        raise IntakeError(str(error), field="event") from None
    at = update.at.replace(microsecond=0, tzinfo=None)
    c = schema.cases
    with store.write_turn(), store.engine.begin() as conn:
        _take_turn(conn)
        case = conn.execute(sa.select(c).where(c.c.case_id == case_id)).mappings().first()
        if case is None:
            raise IntakeError(f"没有信访件 {case_id} / no case {case_id}", status=404)
        if not source.scope.allows_case_unit(_finest(case)):
            raise IntakeError("该信访件不在本密钥辖区内 / the case is outside the key's scope",
                              status=403)
        try:
            changes = transition(case, event, at, settings=store.settings, now=now,
                                 rating=update.rating)
        except TransitionError as error:
            raise IntakeError(str(error), field="event") from None
        row = {**dict(case), **changes}
        frame = pd.DataFrame({k: [v] for k, v in row.items()})
        changes["row_hash"] = load.row_hashes(frame)[0]
        conn.execute(c.update().where(c.c.case_id == case_id).values(**changes, updated_at=now))
        text = " ".join(p for p in (update.rating, note) if p) or None
        conn.execute(schema.case_event.insert().values(
            case_id=case_id, at=at, event=event, status=row["status"], detail=text,
            recorded_at=now, source="api", actor=source.actor.username))
        audit.record(conn, source.action, actor=source.actor, unit_code=_finest(case),
                     case_ids=[case_id], address=source.address,
                     detail=_clip(f"状态更新 update {event}; {detail or ''}"))
        bump_version(conn)
    return Updated(case_id, row["status"], event, at)


def reports_from(store: Store, address: str | None, *, since: datetime) -> int:
    """Count the cases one client address reported through QR posters since a moment."""
    if not address:
        return 0
    t = schema.intake_request
    query = sa.select(sa.func.count()).where(t.c.address == address[:64], t.c.created_at >= since,
                                             t.c.source.like("qr:%"))
    with store.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def check_submission(submission: Submission) -> None:
    """Raise IntakeError (400, naming the field) for the first thing wrong with a submission."""
    if submission.category not in CATEGORIES:
        raise IntakeError(f"未知的信访内容分类 {_show(submission.category)} / unknown category",
                          field="service_code")
    text = submission.description
    if not isinstance(text, str) or not text.strip():
        raise IntakeError("请填写信访内容 / a description is required", field="description")
    if len(text) > MAX_DESCRIPTION_CHARS:
        raise IntakeError(f"信访内容过长：{len(text):,} 字，上限 {MAX_DESCRIPTION_CHARS:,} 字 / the "
                          f"description has {len(text):,} characters, at most "
                          f"{MAX_DESCRIPTION_CHARS:,}", field="description")
    for name, value, limit in (("description", text, MAX_DESCRIPTION_CHARS),
                               ("address_string", submission.address, MAX_ADDRESS_CHARS),
                               ("name", submission.name, MAX_NAME_CHARS)):
        if value is None:
            continue
        if not isinstance(value, str) or "\x00" in value or len(value) > limit:
            raise IntakeError(f"{_FIELD_ZH[name]}过长或含非法字符（上限 {limit} 字）/ {name} is too "
                              f"long or holds a NUL (at most {limit} characters)", field=name)
        if _HTML.search(value):
            raise IntakeError(f"{_FIELD_ZH[name]}不能包含 HTML 标记，请只写文字 / {name} may not "
                              "contain HTML: plain text only", field=name)
    phone = submission.phone
    if phone is not None and not (isinstance(phone, str) and _PHONE.fullmatch(phone.strip())):
        raise IntakeError("联系电话格式不正确（5–20 位数字）/ phone must be 5–20 digits",
                          field="phone")
    has_lat, has_lon = submission.lat is not None, submission.lon is not None
    if has_lat != has_lon:
        raise IntakeError("经纬度须同时提供（lat 与 long）/ give both lat and long", field="lat")
    if has_lat and not all(isinstance(v, int | float) and math.isfinite(v)
                           for v in (submission.lat, submission.lon)):
        raise IntakeError("经纬度不是有效数字 / lat and long must be numbers", field="lat")
    if not has_lat and not (submission.address or "").strip() and not submission.unit_code:
        raise IntakeError("须提供位置：经纬度（lat、long）或地址（address_string）/ a location is "
                          "required: lat and long, or address_string", field="lat")


def submission_hash(submission: Submission) -> str:
    """SHA-256 of a submission's values (what "an identical submission" means)."""
    text = json.dumps(asdict(submission), ensure_ascii=False, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------- steps

_FIELD_ZH = {"description": "信访内容", "address_string": "地址", "name": "姓名"}


def _check_source(source: Source, idempotency_key: str | None) -> None:
    if source.channel not in CHANNELS:
        raise IntakeError(f"未知渠道 {_show(source.channel)} / unknown channel")
    if idempotency_key is not None and (
            not idempotency_key or len(idempotency_key) > MAX_IDEMPOTENCY_KEY_CHARS
            or not idempotency_key.isprintable() or not idempotency_key.isascii()):
        raise IntakeError(f"Idempotency-Key 须为 1–{MAX_IDEMPOTENCY_KEY_CHARS} 个可打印 ASCII 字符 "
                          f"/ the Idempotency-Key must be 1–{MAX_IDEMPOTENCY_KEY_CHARS} printable "
                          "ASCII characters", field="Idempotency-Key")


def _placed_row(store: Store, submission: Submission, *, source: Source,
                now: datetime) -> dict:
    """Clean and attach the case with the ETL's rules; the stored row (no case id yet)."""
    grid = grid_index(store)
    values = _values(submission, channel=source.channel, now=now,
                     synthetic=store.settings.mode == "demo")
    frame = _location_frame(values)
    placed = _attach(store, grid, frame, values, now=now)
    if submission.unit_code and submission.lat is not None \
            and not source.scope.allows_case_unit(_finest(placed)):
        # a QR poster: a browser location outside the poster's unit falls back to the unit
        placed = _attach(store, grid, frame.assign(lon=np.nan, lat=np.nan), values, now=now)
    if placed["attach_method"] == "unassigned":
        raise IntakeError("无法确定位置：坐标不在网格内，地址也未能识别到任何区、镇街或村居 / the "
                          "location could not be placed: the point is outside the grid and the "
                          "address names no known district, street or village", field="lat")
    if not source.scope.allows_case_unit(_finest(placed)):
        raise IntakeError(f"位置不在本接口密钥的辖区（{source.scope.code}）内 / the location is "
                          "outside the key's scope", status=403, field="lat")
    return placed


LOCATION_COLUMNS = ("lon", "lat", "address", "village_code", "street_code")
"""The columns of a live case the coordinate and attach rules read (the rest of its values go
straight into the row): each column of a one-row frame costs pandas some 60 µs."""


def _values(submission: Submission, *, channel: str, now: datetime, synthetic: bool) -> dict:
    """The submission's values under canonical column names, as an export row would hold them.

    A case submitted to a server in demo mode is a demo case (``synthetic``): a demo store
    must stay all-synthetic, or the server refuses to start on it again.
    """
    unit = submission.unit_code
    level_column = None
    if unit:
        level_column = "village_code" if unit[9:] != "000" else "street_code"
    values = {
        "case_id": "PENDING", "registered_at": now, "category": submission.category,
        "channel": channel, "description": submission.description.strip(),
        "address": (submission.address or "").strip() or None,
        "petitioner_name": (submission.name or "").strip() or None,
        "petitioner_phone": _digits(submission.phone),
        "lon": submission.lon, "lat": submission.lat, "synthetic": synthetic,
    }
    if level_column:
        values[level_column] = unit
    return values


def _location_frame(values: dict) -> pd.DataFrame:
    """The one-row frame the ETL's rules read: :data:`LOCATION_COLUMNS` of the values."""
    return pd.DataFrame({name: [values[name]] for name in LOCATION_COLUMNS if name in values})


def _attach(store: Store, grid, frame: pd.DataFrame, given: dict, *,  # noqa: ANN001
            now: datetime) -> dict:
    """The stored row of a new case: the ETL's coordinate and attach rules, on one row.

    :func:`etl.clean.check_coordinates` (swapped pairs, WGS-84, the grid's extent) and
    :func:`etl.attach.attach_columns` (point, nearest, code, address) are the rules the ingest
    applies (through their frame forms, which a live row does without: building those frames
    was a third of a POST's CPU); the rest of the row comes from ``given`` (:func:`_values`). What
    :func:`etl.clean.clean_cases` would add for a row that has nothing but its registration
    (status 登记, 评价状态 待评价, no deadline yet) is written out here, because the whole frame
    cleaner costs 30–70 ms for one row. A test checks that both give the same row.
    """
    settings = store.settings
    raw_lon, raw_lat = frame.get("lon"), frame.get("lat")
    check = clean.check_coordinates(raw_lon, raw_lat, frame.index, crs="wgs84",
                                    extent=grid.extent, settings=settings)
    lon, lat = check.lon, check.lat
    attached = attach_columns(frame, lon, lat, grid, settings=settings)
    placed = {name: values[0] for name, values in attached.items()}
    if placed["attach_method"] == "unassigned" and any(m.any() for m in check.dropped.values()):
        problems = clean.coordinate_problems(check, frame.index, raw_lon, raw_lat)
        raise IntakeError(f"{problems['reason'].iloc[0]} / the point is outside the grid and "
                          "nothing else places it", field="lat")
    row: dict = dict.fromkeys(load.STORED_CASE_COLUMNS)
    row.update({name: False for name in ("extended", "is_repeat", "is_backlog")})
    row.update({name: given.get(name) for name in ("case_id", "category", "channel",
                                                   "description", "address", "petitioner_name",
                                                   "petitioner_phone")})
    row.update(registered_at=now, status="registered", rating_state=RATING_PENDING,
               synthetic=bool(given.get("synthetic")), lon=_plain(lon[0]), lat=_plain(lat[0]),
               boundary_version=grid.boundary_version,
               **{name: _plain(placed[name]) for name in attached})
    row["row_hash"] = _row_hash(row)
    return {name: row[name] for name in load.STORED_CASE_COLUMNS
            if name not in ("case_id", "run_id", "updated_at")}


def _row_hash(row: dict) -> str:
    """A 64-bit hash of the case's own values (``cases.row_hash``), without a frame.

    The ingest hashes its frames with pandas (:func:`etl.load.row_hashes`); a one-row frame
    costs 5 ms, a third of a live write, for a value that is only ever compared with a later
    export of the same case (an export that holds it is then counted updated once).
    """
    values = [row[name] for name in load.HASHED_CASE_COLUMNS]
    text = json.dumps(values, ensure_ascii=False, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _take_turn(conn: Connection) -> None:
    """Lock the store-version row without moving it: writers take turns from here on."""
    if conn.execute(_TAKE_TURN).rowcount == 0:
        conn.execute(schema.store_version.insert().values(id=1, version=0,
                                                          changed_at=datetime.now()))


def _earlier_request(conn: Connection, source: str, key: str | None, body: str, *,
                     now: datetime) -> Intake | None:
    if key is not None:
        case_id = conn.execute(_BY_KEY, {"source": source, "key": key}).scalar()
    else:
        case_id = conn.execute(_BY_BODY, {"source": source, "body": body,
                                          "since": now - REPEAT_WINDOW}).scalar()
    if case_id is None:
        return None
    row = conn.execute(_PLACE_OF, {"case_id": case_id}).first()
    if row is None:  # the case was deleted since: treat the request as new
        return None
    return Intake(case_id, False, *row)


def _next_sequence(conn: Connection) -> int:
    last = conn.execute(_LAST_SEQUENCE).scalar()
    return int(last or 0) + 1


# The statements of a live write, built once: SQLAlchemy then reuses their compiled form by a
# memoised key, instead of building and hashing each statement anew (py-spy of
# bench/bench_intake.py: that was a third of a POST's CPU).
_T = schema.intake_request.c
_BY_KEY = sa.select(_T.case_id).where(
    _T.source == sa.bindparam("source"), _T.idempotency_key == sa.bindparam("key")
).order_by(_T.id).limit(1)
_BY_BODY = sa.select(_T.case_id).where(
    _T.source == sa.bindparam("source"), _T.body_hash == sa.bindparam("body"),
    _T.created_at >= sa.bindparam("since")).order_by(_T.id).limit(1)
_PLACE_OF = sa.select(*(schema.cases.c[n] for n in (
    "registered_at", "village_code", "street_code", "district_code", "attach_method"))
).where(schema.cases.c.case_id == sa.bindparam("case_id"))
_LAST_SEQUENCE = sa.select(sa.func.max(_T.id))
_INSERT_CASE = schema.cases.insert()
_INSERT_EVENT = schema.case_event.insert()
_INSERT_REQUEST = schema.intake_request.insert()
_TAKE_TURN = schema.store_version.update().where(schema.store_version.c.id == 1).values(
    version=schema.store_version.c.version)


def _insert(conn: Connection, row: dict, *, case_id: str, source: Source,
            now: datetime) -> None:
    values = {**row, "case_id": case_id, "run_id": None, "updated_at": now}
    try:  # (the whole transaction is rolled back on the way out)
        # parameters, not .values(**values): the statement is then compiled once, not per case
        conn.execute(_INSERT_CASE, values)
    except sa.exc.IntegrityError:  # an imported case already has this number
        raise IntakeError(f"信访件编号 {case_id} 已存在，请重试 / case number {case_id} exists; retry",
                          status=409) from None
    conn.execute(_INSERT_EVENT, {
        "case_id": case_id, "at": now, "event": "created", "status": row["status"],
        "detail": f"渠道 {source.channel}", "recorded_at": now, "source": "api",
        "actor": source.actor.username})


def _finest(row: dict) -> str | None:
    for name in ("grid_code", "village_code", "street_code", "district_code"):
        if row.get(name):
            return row[name]
    return None


def _plain(value: object) -> object:
    """A pandas/numpy scalar as the plain Python value SQLAlchemy binds (NaN/NaT → None)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if isinstance(value, np.generic):
        value = value.item()
        return None if isinstance(value, float) and math.isnan(value) else value
    return value


def _digits(phone: str | None) -> str | None:
    if not phone or not phone.strip():
        return None
    return re.sub(r"[\s-]", "", phone.strip())


def _show(value: object) -> str:
    return repr(str(value)[:40])


def _clip(text: str) -> str:
    return text[:500]
