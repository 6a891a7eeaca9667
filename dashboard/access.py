"""The scope resolver: every page, callback and download asks here what the session may see.

A request names a page and a unit (the URL, or the view-query store a page put in its layout,
which a crafted request can set to anything); :func:`resolve` re-derives the unit the page is
computed for (:func:`dashboard.shell.scope_for`) and checks it, and the unit itself, against
the scope of the session's account (:class:`geo.scope.Scope`) — never against anything the
request says about scope. A request outside the scope is refused (:class:`Refused`: a Chinese
message; HTTP 403 for callbacks, downloads and APIs) and the refusal is audited; it is never
quietly widened or narrowed to something else. A page URL without a unit opens the account's
own area.

Views, exports, reveals and refusals are written to the audit trail (:mod:`geo.audit`);
callbacks that only redraw part of a page already audited are not, so the trail has one row
per page seen, not one per chart.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import flask
from dash import dcc, html

from dashboard import state
from dashboard.auth import client_address, current_account
from dashboard.query import PAGES, ViewState, fit_to_data
from geo import audit
from geo.accounts import Account
from geo.codes import level_of
from geo.errors import CodeError
from geo.scope import Scope
from layers.access import OutOfScope, case_in_scope, reveal_contact
from layers.units import picker_labels

PAGE_ZH = {"city": "领导视图", "street": "街道视图", "village": "网格员视图"}


class Refused(Exception):  # noqa: N818 - it is what happens, not a malfunction
    """A request outside the session's scope (or without a session); ``message`` is Chinese."""

    def __init__(self, message: str, *, status: int = 403) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Resolved:
    """A page request checked against the session: its view, the unit it is computed for."""

    page: str
    view: ViewState
    scope_code: str | None
    """The unit the page shows (None: the page asks the user to pick one below ``view.unit``)."""
    account: Account
    problems: tuple[str, ...] = ()
    """Chinese messages for URL parameters that were refused (the nearest valid view is shown)."""


def account() -> Account:
    """The session's account; :class:`Refused` (401) when there is none."""
    found = current_account()
    if found is None:
        raise Refused("请先登录", status=401)
    return found


def scope() -> Scope:
    """The session's scope."""
    return account().scope


def resolve(page: str, params: Mapping[str, Any] | str | None) -> Resolved:
    """Check a page request (URL parameters or a query string) against the session's scope.

    Raises
    ------
    Refused
        No session, an account without a data scope, an unknown page, or a unit outside the
        scope (audited).
    """
    who = account()
    if page not in PAGES:
        raise Refused("未知的视图", status=404)
    if not who.scope.sees_data:
        raise Refused("管理员账户不查看案件数据；请使用管理页面或另设带辖区的账户。")
    if isinstance(params, str) or params is None:
        params = parse_qs((params or "").lstrip("?"))
    view, problems = ViewState.parse(params)
    if not params.get("unit"):
        view = view.with_(unit=home_unit(page, who.scope))
    from dashboard.shell import cached_info, nearest_unit, scope_for

    view, missing = nearest_unit(state.store(), view)
    if missing:
        problems += (missing,)
    info = cached_info(state.store(), who.scope.code)  # the account's own data range
    view, outside = fit_to_data(view, info.date_from, info.date_to)
    problems += outside
    scope_code = scope_for(page, view.unit)
    for code in {view.unit, scope_code} - {None}:
        require_unit(code, page=page)
    return Resolved(page=page, view=view, scope_code=scope_code, account=who,
                    problems=problems)


def resolve_query(query: Mapping[str, Any] | None, *, page: str | None = None) -> Resolved:
    """:func:`resolve` for the view-query store a page keeps (``{"page", "search", …}``).

    Only ``page`` and ``search`` are read; a ``scope`` or ``unit`` in the store is ignored
    (it is whatever the request says). A page's own callbacks pass their ``page``, so they
    compute what that page would show for the unit, whatever page the store claims.
    """
    if not isinstance(query, Mapping):
        raise Refused("请求无效", status=400)
    claimed, search = query.get("page"), query.get("search")
    if not isinstance(claimed, str) or not isinstance(search, str | type(None)):
        raise Refused("请求无效", status=400)
    return resolve(page or claimed, search or "")


def require_unit(code: str | None, *, page: str | None = None) -> str:
    """Return ``code`` when the session's scope holds it; refuse (audited) otherwise."""
    who = account()
    if not code or not who.scope.allows_unit(code):
        refuse(f"单位 {code} 不在您的辖区（{who.scope_code or '无'}）内，无权查看。",
               unit_code=_code_or_none(code), detail=f"page={page}" if page else None)
    return code


def require_case(case_id: str) -> bool:
    """Return True when the case exists in the scope, False when no case has that id.

    Raises
    ------
    Refused
        The case exists outside the session's scope (audited with its id).
    """
    who = account()
    inside = case_in_scope(state.store(), who.scope, case_id)
    if inside is None:
        return False
    if not inside:
        refuse("该案件不在您的辖区内，无权查看。", case_ids=[case_id])
    return True


def reveal(case_id: str, reason: str) -> Any:
    """Reveal one case's contact for a stated reason (audited with the read); refuse otherwise."""
    who = account()
    try:
        return reveal_contact(state.store(), case_id, scope=who.scope, actor=who.actor,
                              reason=reason, address=client_address())
    except OutOfScope as error:
        refuse(str(error).split(" / ")[0], case_ids=[str(case_id)[:64]],
               detail=f"reveal reason={str(reason)[:16]}")


def record(action: str, **fields: Any) -> None:
    """Write an audit row for the session's account (its own transaction).

    In the server's turn to write (:meth:`geo.store.Store.write_turn`): every page view writes
    one, and on SQLite a writer that finds the lock taken sleeps in the busy handler in steps
    of up to 100 ms instead of going on when the holder leaves.
    """
    who = account()
    store = state.store()
    with store.write_turn():
        audit.record_now(store.engine, action, actor=who.actor, address=client_address(),
                         **fields)


def refuse(message: str, **fields: Any) -> None:
    """Audit a refusal and raise :class:`Refused` with the Chinese ``message``."""
    record("refused", **fields)
    raise Refused(message)


def home_unit(page: str, scope_: Scope) -> str:
    """The unit a page opens at when its URL names none: the account's own area."""
    return scope_.code


def landing_path(who: Account) -> str:
    """Where an account lands after login: its own area, in the view made for its role."""
    scope_ = who.scope
    if not scope_.sees_data:
        return "/admin"
    level = scope_.level
    page = {"village": "village", "grid": "village", "street": "street"}.get(level, "city")
    return PAGES[page] + ViewState(unit=scope_.code).to_search()


def allowed_pages(who: Account | None, unit: str) -> set[str]:
    """The views whose unit for ``unit`` lies in the account's scope (for the navigation)."""
    from dashboard.shell import scope_for

    if who is None or not who.scope.sees_data:
        return set()
    return {page for page in PAGES
            if who.scope.allows_unit(scope_for(page, unit) or unit)}


def crumb_allowed(code: str) -> bool:
    """Whether a breadcrumb may link to ``code`` (units above the scope are shown as text)."""
    who = current_account()
    return bool(who and who.scope.allows_unit(code))


def picker_options(codes: list[str]) -> list[dict]:
    """Unit-picker options of units in scope, labelled 名称（镇街，区）, searchable by code too."""
    who = account()
    codes = [c for c in codes if who.scope.allows_unit(c)]
    labels = picker_labels(state.store(), codes)
    return [{"label": label, "value": code, "search": f"{label} {code}"}
            for code, label in zip(codes, labels, strict=True)]


def guard_layout(layout: Callable[..., Any]) -> Callable[..., Any]:
    """Render a page's refusal (a Chinese message) instead of the page when it is refused."""

    @functools.wraps(layout)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return layout(*args, **kwargs)
        except Refused as error:
            return refused_page(error)

    return guarded


def refused_page(error: Refused) -> html.Div:
    """The page shown instead of a refused one, with a way back to the account's own area."""
    who = current_account()
    links = [dcc.Link("返回我的辖区", href=landing_path(who))] if who else []
    return html.Div(className="page refused", children=[
        html.H1("无权查看" if error.status == 403 else "无法打开"),
        html.Div(error.message, className="empty-message", role="alert", id="refused-message"),
        *links,
    ])


def refused_response(error: Refused) -> flask.Response:
    """The HTTP answer to a refused callback, download or API request (403/401/404)."""
    return flask.Response(error.message, status=error.status, mimetype="text/plain; charset=utf-8")


def install(server: flask.Flask) -> None:
    """Answer every :class:`Refused` that reaches Flask with its status and message."""
    server.register_error_handler(Refused, refused_response)


def _code_or_none(code: str | None) -> str | None:
    try:
        level_of(code)
    except (CodeError, TypeError):
        return None
    return code
