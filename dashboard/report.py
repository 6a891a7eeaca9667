"""The public QR-code form (扫码上报) at ``/report/<token>`` and the status lookup ``/report/status``.

A poster (``gridgov qr``) carries the URL of its reporting point (:mod:`geo.reportpoints`); the
form needs no login. It is a plain HTML form (Flask + Jinja with autoescaping, like the login
page: every value a person typed is rendered as escaped text, nothing is ever marked safe), with
one small external script for the optional browser location (the CSP allows no inline script).

What stops abuse, each refusal explained in Chinese on the form itself (the entries kept):

* Flask-WTF's CSRF token on both forms (the session cookie is set by the first GET);
* a honeypot field hidden from people; a bot that fills it is told the submission failed;
* size limits: the body (16 KB), the description (4,000 characters), name and phone;
* per client address: at most ``report_rate_per_hour`` cases an hour (from the intake record),
  and at most :data:`LOOKUPS_PER_HOUR` status lookups (from the audit trail: four digits are
  only 10,000 guesses);
* the case goes through the one intake write path (:func:`etl.intake.submit_case`) with channel
  二维码, placed in the poster's unit (a browser location outside it falls back to the unit).

The lookup shows the state of one case to whoever knows its number and the last four digits of
its phone, and nothing personal (no name, phone, address or description). A wrong pair and an
unknown number get the same answer.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from pathlib import Path

import flask
from flask_wtf.csrf import generate_csrf

from dashboard import state
from geo import audit
from geo.reportpoints import ReportPoint, point_for_token
from geo.vocab import CATEGORIES, CHANNEL_QR, STATUS_ZH

MAX_BODY_BYTES = 16 * 1024
LOOKUPS_PER_HOUR = 20
"""Status lookups one client address may make per hour."""
LOOKUP_DETAIL = "扫码查询"
STATIC = Path(__file__).parent / "report_static"


def register(server: flask.Flask) -> None:
    """Add the form, the lookup and their static files to the server."""
    blueprint = flask.Blueprint("report", __name__, static_folder=str(STATIC),
                                static_url_path="/report/static")
    blueprint.add_url_rule("/report/status", "status", status_page, methods=["GET", "POST"])
    blueprint.add_url_rule("/report/<token>", "form", form_page, methods=["GET", "POST"])
    blueprint.before_request(_limit_body)
    server.register_blueprint(blueprint)


def form_page(token: str) -> flask.Response | str:
    """Show the form of a reporting point; on POST register the case and show its number."""
    point = point_for_token(state.store().engine, token)
    if point is None:
        return _message_page(404, "二维码无效",
                             "该二维码已停用或不存在，请联系所在村居（社区）或镇街。")
    values = _values(flask.request.form if flask.request.method == "POST" else {})
    if flask.request.method == "GET":
        return _form(point, values)
    refusal = _refusal(values)
    if refusal:
        return _form(point, values, message=refusal, status=400)
    return _submit(point, values)


def status_page() -> flask.Response | str:
    """Look a case up by its number and the last four digits of the reporter's phone."""
    store = state.store()
    message = found = None
    status = 200
    if flask.request.method == "POST":
        case_id = (flask.request.form.get("case_id") or "").strip()[:64]
        digits = (flask.request.form.get("digits") or "").strip()
        address = flask.request.remote_addr
        since = datetime.now() - timedelta(hours=1)
        with store.engine.connect() as conn:
            tried = audit.actions_from(conn, address, action="report", since=since,
                                       detail_prefix=LOOKUP_DETAIL)
        if tried >= LOOKUPS_PER_HOUR:
            message, status = "查询过于频繁，请一小时后再试。", 429
        elif not case_id or len(digits) != 4 or not digits.isdigit():
            message, status = "请填写信访件编号和手机号后四位（4 位数字）。", 400
        else:
            found = _lookup(case_id, digits)
            audit.record_now(store.engine, "report", address=address,
                             case_ids=[found["case_id"]] if found else [],
                             detail=f"{LOOKUP_DETAIL} " + ("找到 found" if found else "未找到"))
            if found is None:
                message, status = "未找到：请核对信访件编号和手机号后四位。", 404
    html = flask.render_template("report_status.html", message=message, found=found,
                                 csrf_token=generate_csrf())
    return flask.Response(html, status=status, mimetype="text/html")


# --------------------------------------------------------------------------- steps


def _values(form) -> dict:  # noqa: ANN001 - a werkzeug MultiDict or {}
    def text(name: str, limit: int) -> str:
        return str(form.get(name) or "")[:limit]

    return {"category": text("category", 32), "description": text("description", 5_000),
            "name": text("name", 60).strip(), "phone": text("phone", 30).strip(),
            "consent": form.get("consent") == "yes", "website": text("website", 200),
            "lat": text("lat", 20).strip(), "lon": text("lon", 20).strip()}


def _refusal(values: dict) -> str | None:
    """Why the form cannot be taken (Chinese), or None."""
    if values["website"]:
        return "提交未通过校验，请刷新页面后重新填写。"
    if values["category"] not in CATEGORIES:
        return "请选择问题类别。"
    if not values["description"].strip():
        return "请填写问题描述。"
    if (values["name"] or values["phone"]) and not values["consent"]:
        return "填写了姓名或手机号的，请勾选同意个人信息用于本件办理；不愿提供的可留空。"
    since = datetime.now() - timedelta(hours=1)
    from etl.intake import reports_from

    limit = state.store().settings.report_rate_per_hour
    if reports_from(state.store(), flask.request.remote_addr, since=since) >= limit:
        return f"同一网络一小时内最多提交 {limit} 件，请稍后再试；紧急情况请拨打 110 或到村居（社区）反映。"
    return None


def _submit(point: ReportPoint, values: dict) -> flask.Response | str:
    from etl.intake import IntakeError, Source, Submission, submit_case

    submission = Submission(category=values["category"], description=values["description"],
                            lat=_number(values["lat"]), lon=_number(values["lon"]),
                            unit_code=point.unit_code, name=values["name"] or None,
                            phone=values["phone"] or None)
    if (submission.lat is None) != (submission.lon is None):
        submission = dataclasses.replace(submission, lat=None, lon=None)
    source = Source(name=f"qr:{point.token}", scope=point.scope,
                    actor=audit.Actor(f"qr:{point.token}", "public", point.unit_code),
                    channel=CHANNEL_QR, action="report", address=flask.request.remote_addr)
    try:
        intake = submit_case(state.store(), submission, source=source, detail="扫码上报")
    except IntakeError as error:
        return _form(point, values, message=_chinese(str(error)), status=400)
    html = flask.render_template("report_done.html", case_id=intake.case_id,
                                 repeat=not intake.created, with_phone=bool(values["phone"]))
    return flask.Response(html, status=201 if intake.created else 200, mimetype="text/html")


def _lookup(case_id: str, digits: str) -> dict | None:
    import sqlalchemy as sa

    from geo import schema

    c = schema.cases.c
    with state.store().engine.connect() as conn:
        row = conn.execute(sa.select(c.case_id, c.status, c.category, c.registered_at,
                                     c.updated_at, c.petitioner_phone)
                           .where(c.case_id.in_(list(dict.fromkeys((case_id, case_id.upper())))))).first()
    if row is None or not row.petitioner_phone:
        return None
    phone = "".join(ch for ch in str(row.petitioner_phone) if ch.isdigit())
    if len(phone) < 4 or phone[-4:] != digits:
        return None
    return {"case_id": row.case_id, "status": STATUS_ZH.get(row.status, row.status),
            "category": row.category or "—", "registered": f"{row.registered_at:%Y-%m-%d %H:%M}",
            "updated": f"{row.updated_at:%Y-%m-%d %H:%M}" if row.updated_at else "—"}


def _form(point: ReportPoint, values: dict, *, message: str | None = None,
          status: int = 200) -> flask.Response:
    from etl.intake import MAX_DESCRIPTION_CHARS

    html = flask.render_template("report.html", unit_name=point.unit_name, values=values,
                                 categories=CATEGORIES, message=message,
                                 max_chars=MAX_DESCRIPTION_CHARS, csrf_token=generate_csrf())
    return flask.Response(html, status=status, mimetype="text/html")


def _message_page(status: int, title: str, body: str) -> flask.Response:
    html = flask.render_template("report_message.html", title=title, body=body)
    return flask.Response(html, status=status, mimetype="text/html")


def _limit_body() -> flask.Response | None:
    length = flask.request.content_length
    if length is not None and length > MAX_BODY_BYTES:
        return _message_page(413, "提交内容过大",
                             f"提交内容超过 {MAX_BODY_BYTES // 1024} KB，请精简问题描述后重试。")
    return None


def _number(text: str) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None


def _chinese(message: str) -> str:
    """The Chinese half of a bilingual message ("中文 / English")."""
    return message.split(" / ", 1)[0]
