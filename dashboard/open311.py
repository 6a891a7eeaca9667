"""The Open311 GeoReport v2 server under ``/open311/v2/`` (JSON; form-encoded POST).

Routes (the spec's, plus one documented extension, docs/open311.md):

* ``GET discovery.json``, ``GET services.json`` (``service_code`` = the 19 first-level
  信访内容分类, :data:`geo.vocab.SERVICE_CODES`), ``GET services/{code}.json``: public metadata;
* ``POST requests.json``: a new case through the one intake write path (:mod:`etl.intake`);
  answers ``[{service_request_id, service_notice, account_id}]`` with 201 (200 for a repeat of
  an earlier request, same id);
* ``GET requests.json`` and ``GET requests/{id}.json``: the key's scope only
  (:mod:`layers.servicerequests`), free text masked, never names or phones;
* ``POST requests/{id}/updates.json``: a lifecycle event (受理 … 评价) appended to the case's
  timeline when :mod:`etl.transitions` allows it (the extension, docs/open311.md).

The API key (``api_key``, as the spec has it: a form or query parameter) is the only credential:
the dashboard's session and CSRF token play no part (the blueprint is exempt from both), and the
scope comes from the key, never from a cookie. Every call that needs a key is in the audit trail
(refusals too), and a key's calls are limited per minute (``api_rate_per_minute``). Errors are the
spec's array of ``{code, description}`` with 400, 403, 404 (and 413, 429, 503 where the spec is
silent). Every parameter is validated here, at the edge, before anything reads the store.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

import flask
import pandas as pd

from dashboard import state
from geo import apikeys, audit
from geo.apikeys import ApiKey
from geo.errors import GridgovError
from geo.vocab import SERVICE_CODES, STATUS_ZH

PREFIX = "/open311/v2"
JURISDICTION = "guangzhou"
"""The one jurisdiction this server answers for (``jurisdiction_id`` may be omitted)."""
MAX_BODY_BYTES = 64 * 1024
MAX_WINDOW = timedelta(days=90)
"""The spec's longest and default window of ``GET requests``."""
TZ = "+08:00"
"""Stored times are naive Asia/Shanghai; the API writes them with their offset (W3C)."""
CODE_OF = {name: code for code, name in SERVICE_CODES.items()}
_SERVICE_GROUP = "信访内容分类"


class ApiError(Exception):
    """A refused call: HTTP status and the description the client reads."""

    def __init__(self, status: int, description: str) -> None:
        self.status = status
        self.description = description
        super().__init__(description)


def register(server: flask.Flask) -> None:
    """Add the Open311 routes to the server, exempt from the session gate and from CSRF."""
    blueprint = flask.Blueprint("open311", __name__, url_prefix=PREFIX)
    blueprint.add_url_rule("/discovery.json", "discovery", discovery)
    blueprint.add_url_rule("/services.json", "services", services)
    blueprint.add_url_rule("/services/<code>.json", "service", service)
    blueprint.add_url_rule("/requests.json", "requests", requests_route, methods=["GET", "POST"])
    blueprint.add_url_rule("/requests/<request_id>.json", "request", request_route)
    blueprint.add_url_rule("/requests/<request_id>/updates.json", "updates", updates_route,
                           methods=["POST"])
    blueprint.add_url_rule("/<path:rest>", "unknown", unknown, methods=["GET", "POST"])
    blueprint.before_request(_limit_body)
    blueprint.register_error_handler(ApiError, _answer_error)
    server.register_blueprint(blueprint)
    server.extensions["csrf"].exempt(blueprint)


# --------------------------------------------------------------------------- public metadata


def discovery() -> flask.Response:
    """The spec's discovery document: where the endpoint is and what it speaks."""
    base = flask.request.host_url.rstrip("/") + PREFIX + "/"
    return _json({
        "changeset": "2026-12-01T00:00:00+08:00",
        "contact": "广州市信访网格化治理平台（gridgov）",
        "key_service": "接口密钥由平台管理员以 gridgov apikeys add 发放",
        "endpoints": [{"specification": "http://wiki.open311.org/GeoReport_v2", "url": base,
                       "changeset": "2026-12-01T00:00:00+08:00", "type": "production",
                       "formats": ["application/json"]}],
    })


def services() -> flask.Response:
    """The 19 first-level content classes (信访内容分类 一级) as services."""
    _check_jurisdiction()
    return _json([_service(code, name) for code, name in SERVICE_CODES.items()])


def service(code: str) -> flask.Response:
    """One service's definition (no extra attributes: ``metadata`` is false for every one)."""
    _check_jurisdiction()
    if code not in SERVICE_CODES:
        raise ApiError(404, f"service_code {code[:20]!r} not found / 未知服务代码")
    return _json({"service_code": code, "attributes": []})


def unknown(rest: str) -> flask.Response:
    """Any other path under the prefix: the spec's 404, never the dashboard's page router."""
    raise ApiError(404, "not found: see discovery.json / 无此接口")


# --------------------------------------------------------------------------- requests


def requests_route() -> flask.Response:
    """``GET requests.json`` (the key's cases) or ``POST requests.json`` (a new case)."""
    key = _authorised("POST requests.json" if flask.request.method == "POST"
                      else "GET requests.json")
    if flask.request.method == "POST":
        return _post_request(key)
    from layers.servicerequests import RequestQuery

    args = flask.request.args
    ids = _list(args.get("service_request_id"), limit=200, width=64)
    if ids:
        query = RequestQuery(ids=tuple(ids))
    else:
        codes = _list(args.get("service_code"), limit=19, width=8)
        if any(c not in SERVICE_CODES for c in codes):
            raise ApiError(400, "service_code not found / 未知服务代码")
        statuses = _list(args.get("status"), limit=2, width=8)
        if any(s not in ("open", "closed") for s in statuses):
            raise ApiError(400, "status must be open or closed / status 只能为 open 或 closed")
        start, end = _window(args.get("start_date"), args.get("end_date"))
        query = RequestQuery(categories=tuple(SERVICE_CODES[c] for c in codes), start=start,
                             end=end, status=tuple(statuses))
    return _requests_answer(key, query, what="GET requests.json")


def request_route(request_id: str) -> flask.Response:
    """``GET requests/{id}.json``: one case of the key's scope (404 unknown, 403 outside)."""
    key = _authorised("GET requests/{id}.json")
    from layers.access import case_in_scope
    from layers.servicerequests import RequestQuery

    request_id = _case_id(request_id)
    inside = case_in_scope(state.store(), key.scope, request_id)
    if inside is None:
        raise _refused(key, 404, f"service_request_id {request_id} not found / 无此信访件")
    if not inside:
        raise _refused(key, 403, "the request is outside the key's scope / 该信访件不在本密钥辖区内")
    return _requests_answer(key, RequestQuery(ids=(request_id,)), what="GET requests/{id}.json")


def updates_route(request_id: str) -> flask.Response:
    """``POST requests/{id}/updates.json``: one lifecycle event (受理 … 评价) with its time.

    Form fields: ``event`` (受理, 不予受理, 交办, 延期, 答复, 办结, 回访, 评价, or accepted …),
    ``updated_datetime`` (W3C; default now), ``rating`` (满意/基本满意/不满意, for 评价), ``note``.
    """
    key = _authorised("POST requests/{id}/updates.json")
    from etl.intake import IntakeError, Update, record_update

    request_id = _case_id(request_id)
    form = flask.request.form
    at = _w3c(form.get("updated_datetime"), "updated_datetime") or datetime.now()
    update = Update(event=form.get("event") or "", at=at,
                    rating=(form.get("rating") or "").strip() or None, note=form.get("note"))
    try:
        done = record_update(state.store(), request_id, update, source=_source(key),
                             detail="POST requests/{id}/updates.json")
    except IntakeError as error:
        raise _refused(key, error.status, _field_text(error)) from None
    except GridgovError as error:
        raise _refused(key, 503, f"{error} / 暂时无法更新，请稍后重试") from None
    return _json([{"service_request_id": done.case_id,
                   "status": "closed" if done.status in ("closed", "not_accepted") else "open",
                   "status_notes": STATUS_ZH.get(done.status, done.status),
                   "updated_datetime": _when(done.at)}])


def _source(key: ApiKey) -> Any:
    """The intake source of a key: its name, scope, actor and channel, the client address."""
    from etl.intake import Source

    return Source(name=apikeys.ACTOR_PREFIX + key.name, scope=key.scope, actor=key.actor,
                  channel=key.channel, action="api", address=flask.request.remote_addr)


def _post_request(key: ApiKey) -> flask.Response:
    from etl.intake import IntakeError, Submission, submit_case

    form = flask.request.form
    _check_jurisdiction()
    code = (form.get("service_code") or "").strip()
    if not code:
        raise _refused(key, 400, "service_code was not provided / 缺少 service_code")
    if code not in SERVICE_CODES:
        raise _refused(key, 400, f"service_code {code[:20]!r} not found / 未知服务代码")
    lat, lon = _coordinate(form.get("lat"), "lat"), _coordinate(form.get("long"), "long")
    name = " ".join(p for p in (form.get("last_name", "").strip(),
                                form.get("first_name", "").strip()) if p)
    submission = Submission(
        category=SERVICE_CODES[code], description=form.get("description") or "",
        lat=lat, lon=lon, address=form.get("address_string") or None, name=name or None,
        phone=(form.get("phone") or "").strip() or None)
    try:
        intake = submit_case(state.store(), submission, source=_source(key),
                             idempotency_key=flask.request.headers.get("Idempotency-Key"),
                             detail="POST requests.json")
    except IntakeError as error:
        raise _refused(key, error.status, _field_text(error)) from None
    except GridgovError as error:  # the store is busy or refused the write
        raise _refused(key, 503, f"{error} / 暂时无法受理，请稍后重试") from None
    notice = (f"已登记，信访件编号 {intake.case_id}，可凭编号查询办理进度" if intake.created else
              f"重复提交：该请求已于 {intake.registered_at:%Y-%m-%d %H:%M} 登记为 {intake.case_id}")
    return _json([{"service_request_id": intake.case_id, "service_notice": notice,
                   "account_id": None}], status=201 if intake.created else 200)


def _requests_answer(key: ApiKey, query: Any, *, what: str) -> flask.Response:
    from layers.servicerequests import find_requests

    store = state.store()
    frame = find_requests(store, key.scope, query)
    audit.record_now(store.engine, "api", actor=key.actor, unit_code=key.scope_code,
                     case_ids=list(frame.index), count=len(frame), detail=what,
                     address=flask.request.remote_addr)
    return _json([_request_item(case_id, row) for case_id, row in frame.iterrows()])


def _request_item(case_id: str, row: pd.Series) -> dict:
    category = _text(row["category"])
    return {
        "service_request_id": case_id,
        "status": "open" if row["open"] else "closed",
        "status_notes": STATUS_ZH.get(_text(row["status"]) or "", _text(row["status"])),
        "service_name": category,
        "service_code": CODE_OF.get(category or ""),
        "description": _text(row["description"]),
        "agency_responsible": _text(row["handling_unit"]),
        "service_notice": None,
        "requested_datetime": _when(row["registered_at"]),
        "updated_datetime": _when(row["updated_at"]),
        "expected_datetime": _when(row["due_at"]),
        "address": _text(row["address"]),
        "address_id": _text(row["village_code"]) or _text(row["street_code"])
        or _text(row["district_code"]),
        "zipcode": None,
        "lat": _number(row["lat"]),
        "long": _number(row["lon"]),
        "media_url": None,
    }


# --------------------------------------------------------------------------- the edge


def _authorised(what: str) -> ApiKey:
    """The call's key, or a 403 (audited); a key over its rate limit gets 429 (audited)."""
    store = state.store()
    token = flask.request.values.get("api_key")
    limit = store.settings.api_rate_per_minute
    with store.engine.connect() as conn:  # both reads on one connection (a checkout costs)
        key = apikeys.key_for_token(conn, token)
        calls = apikeys.calls_in_last_minute(conn, key) if key is not None else 0
    address = flask.request.remote_addr
    if key is None:
        audit.record_now(store.engine, "refused", address=address,
                         detail=f"Open311 {what}: " + ("缺少 api_key" if not token
                                                       else "api_key 无效或已吊销"))
        raise ApiError(403, "api_key is missing, invalid or revoked / 接口密钥缺失、无效或已吊销")
    if calls >= limit:
        audit.record_now(store.engine, "refused", actor=key.actor, address=address,
                         detail=f"Open311 {what}: 超过频率限制 rate limit {limit}/min")
        raise ApiError(429, f"rate limit: at most {limit} calls a minute per key / 调用过于频繁，"
                            "请一分钟后再试")
    return key


def _refused(key: ApiKey, status: int, description: str) -> ApiError:
    """Audit a refused keyed call, and return the error to raise."""
    audit.record_now(state.store().engine, "api", actor=key.actor, unit_code=key.scope_code,
                     address=flask.request.remote_addr,
                     detail=f"拒绝 refused {status}: {description}")
    return ApiError(status, description)


def _limit_body() -> None:
    length = flask.request.content_length
    if length is not None and length > MAX_BODY_BYTES:
        raise ApiError(413, f"request body over {MAX_BODY_BYTES // 1024} KB / 请求过大")


def _check_jurisdiction() -> None:
    given = flask.request.values.get("jurisdiction_id")
    if given and given != JURISDICTION:
        raise ApiError(404, f"jurisdiction_id not found: use {JURISDICTION} / 未知辖区")


def _coordinate(value: str | None, name: str) -> float | None:
    if value is None or not value.strip():
        return None
    try:
        number = float(value)
    except ValueError:
        raise ApiError(400, f"{name} is not a number / {name} 不是数字") from None
    if not math.isfinite(number):
        raise ApiError(400, f"{name} is not a number / {name} 不是数字")
    return number


def _window(start: str | None, end: str | None) -> tuple[datetime, datetime]:
    """The spec's window: both ends W3C times; missing ones default to the last 90 days."""
    start_at, end_at = _w3c(start, "start_date"), _w3c(end, "end_date")
    if start_at is None and end_at is None:
        end_at = datetime.now()
    if end_at is None:
        end_at = start_at + MAX_WINDOW
    if start_at is None:
        start_at = end_at - MAX_WINDOW
    if end_at < start_at:
        raise ApiError(400, "end_date is before start_date / end_date 早于 start_date")
    if end_at - start_at > MAX_WINDOW:
        raise ApiError(400, "start_date and end_date may span at most 90 days / 时间跨度不得超过 90 天")
    return start_at, end_at


def _w3c(value: str | None, name: str) -> datetime | None:
    if value is None or not value.strip():
        return None
    try:
        moment = pd.Timestamp(value.strip())
    except (ValueError, TypeError):
        raise ApiError(400, f"{name} is not a W3C date-time (2010-01-01T00:00:00Z) / "
                            f"{name} 格式无效") from None
    if pd.isna(moment):
        raise ApiError(400, f"{name} is not a W3C date-time / {name} 格式无效")
    if moment.tzinfo is not None:
        moment = moment.tz_convert("Asia/Shanghai").tz_localize(None)
    return moment.to_pydatetime()


def _list(value: str | None, *, limit: int, width: int) -> list[str]:
    if value is None or not value.strip():
        return []
    items = [v.strip() for v in value.split(",") if v.strip()]
    if len(items) > limit or any(len(v) > width or not v.isprintable() for v in items):
        raise ApiError(400, f"at most {limit} comma-separated values of {width} characters / "
                            "参数值过多或过长")
    return items


def _case_id(value: str) -> str:
    if not value or len(value) > 64 or not value.isprintable():
        raise ApiError(404, "service_request_id not found / 无此信访件")
    return value


def _field_text(error: Any) -> str:
    field = getattr(error, "field", None)
    return f"{field}: {error}" if field else str(error)


# --------------------------------------------------------------------------- answers


def _service(code: str, name: str) -> dict:
    return {"service_code": code, "service_name": name,
            "description": f"信访内容分类（一级）：{name}", "metadata": False, "type": "realtime",
            "keywords": name, "group": _SERVICE_GROUP}


def _answer_error(error: ApiError) -> flask.Response:
    return _json([{"code": error.status, "description": error.description}],
                 status=error.status)


def _json(body: Any, *, status: int = 200) -> flask.Response:
    response = flask.json.jsonify(body)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    return str(value)


def _number(value: Any) -> float | None:
    if value is None or value is pd.NA:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def _when(value: Any) -> str | None:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    moment = pd.Timestamp(value)
    if pd.isna(moment):
        return None
    return moment.floor("s").isoformat() + TZ

