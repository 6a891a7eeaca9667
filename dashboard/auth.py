"""Login, logout, password change, and the gate every request passes.

Built on maintained libraries rather than by hand: flask-login keeps the logged-in user for a
request (its ``user_loader`` turns the cookie's session token into the account through
:func:`geo.accounts.session_account`, so the session itself lives in the store), Flask-WTF's
``CSRFProtect`` checks a token on every POST — the login form's hidden field, and the
``X-CSRFToken`` header Dash's renderer sends with every callback, read from the
``_csrf_token`` cookie set here (Dash's ``csrf_token_name`` default). Passwords are checked by
:func:`geo.accounts.login` (argon2, lockout per account and per address, audited).

Everything but the login page, static files (Dash's component bundles, ``/assets``), the
Open311 API (its own keys) and the public QR-code form requires a live session: the pages,
``/_dash-layout``, ``/_dash-dependencies``, ``/_dash-update-component``, downloads and any API.
A request without one is sent to the login page, or answered 401 where a browser does not
navigate (callbacks, downloads, APIs).

Cookies: the session cookie is HttpOnly and SameSite=Lax, Secure when the request came over
HTTPS (or always, ``GRIDGOV_COOKIE_SECURE=always``); the CSRF cookie is readable by the page
(it must be, for the renderer to send it back) and SameSite=Strict.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

import flask
import flask_login
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFError, CSRFProtect, generate_csrf

from dashboard import state
from geo import accounts
from geo.accounts import Account
from geo.store import Store

PUBLIC_ENDPOINTS = frozenset({"login", "static", "_dash_assets.static", "/_favicon.ico"})
PUBLIC_PREFIXES = ("/_dash-component-suites/",)
"""What anyone may fetch: the login page and static files (no data in any of them)."""
OWN_ACCESS_PREFIXES = ("/open311/", "/report/")
"""Routes that decide access themselves: the Open311 API by its key, the public QR-code form by
its poster's token. The session plays no part there."""
MACHINE_PREFIXES = ("/_dash-", "/download/", "/api/", "/exports/")
"""Routes a script or the renderer calls: answered 401/403, never redirected to the login page."""
CSRF_COOKIE = "_csrf_token"
SESSION_COOKIE = "gridgov_session"


class SessionUser(flask_login.UserMixin):
    """The logged-in account of a request; its flask-login id is the session token."""

    def __init__(self, account: Account, token: str) -> None:
        self.account = account
        self.token = token

    def get_id(self) -> str:
        """The session token (flask-login keeps it in the signed cookie)."""
        return self.token


class _SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, Secure whenever the request itself came over HTTPS."""

    def __init__(self, always_secure: bool) -> None:
        self.always_secure = always_secure

    def get_cookie_secure(self, app: flask.Flask) -> bool:
        return self.always_secure or (flask.has_request_context() and flask.request.is_secure)


def install(server: flask.Flask, store: Store) -> None:
    """Add login, logout, password change, CSRF protection and the session gate to a server."""
    settings = store.settings
    server.secret_key = settings.secret_key or secrets.token_hex(32)
    server.config.update(
        SESSION_COOKIE_NAME=SESSION_COOKIE, SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax", WTF_CSRF_TIME_LIMIT=None, WTF_CSRF_SSL_STRICT=True)
    server.session_interface = _SessionInterface(settings.cookie_secure == "always")
    manager = flask_login.LoginManager(server)
    manager.session_protection = "basic"
    manager.user_loader(_load_user)
    manager.unauthorized_handler(_unauthorised)
    CSRFProtect(server)
    server.add_url_rule("/login", "login", login_page, methods=["GET", "POST"])
    server.add_url_rule("/logout", "logout", logout, methods=["POST"])
    server.add_url_rule("/password", "password", password_page, methods=["GET", "POST"])
    server.before_request(_gate)
    server.after_request(_csrf_cookie)
    server.register_error_handler(CSRFError, _csrf_failed)


def current_account() -> Account | None:
    """The account of the current request's session, or None when nobody is logged in."""
    user = flask_login.current_user
    return user.account if user and user.is_authenticated else None


def client_address() -> str | None:
    """The client's address as the server sees it (for the audit and login throttling)."""
    return flask.request.remote_addr if flask.has_request_context() else None


# --------------------------------------------------------------------------- routes


def login_page() -> flask.Response | str:
    """Show the login form; on POST check the password and open a session."""
    from dashboard.access import landing_path

    message = None
    if flask.request.method == "POST":
        form = flask.request.form
        result = accounts.login(state.store().engine, form.get("username", ""),
                                form.get("password", ""), settings=state.store().settings,
                                address=client_address())
        if result.ok:
            flask.session.clear()  # a fresh session (and CSRF token) after login: no fixation
            flask_login.login_user(SessionUser(result.account, result.token))
            if result.account.must_change_password:
                return flask.redirect("/password")
            return flask.redirect(_safe_next(form.get("next")) or landing_path(result.account))
        message = result.reason
    return flask.render_template("login.html", message=message, csrf_token=generate_csrf(),
                                 next=_safe_next(flask.request.values.get("next")) or "")


def logout() -> flask.Response:
    """End the session in the store (audited), clear the cookie, go to the login page."""
    user = flask_login.current_user
    if user and user.is_authenticated:
        accounts.end_session(state.store().engine, user.token, address=client_address())
    flask_login.logout_user()
    flask.session.clear()
    response = flask.redirect("/login")
    response.delete_cookie(CSRF_COOKIE)
    return response


def password_page() -> flask.Response | str:
    """Change one's own password (required after an account is created or reset)."""
    from dashboard.access import landing_path

    account = current_account()
    message = None
    if flask.request.method == "POST":
        form = flask.request.form
        new = form.get("new", "")
        if new != form.get("repeat", ""):
            message = "两次输入的新密码不一致"
        else:
            try:
                accounts.change_password(state.store().engine, account, form.get("old", ""), new,
                                         settings=state.store().settings,
                                         address=client_address())
            except accounts.AccountError as error:
                message = str(error)
            else:
                return flask.redirect(landing_path(account))
    return flask.render_template("password.html", message=message, csrf_token=generate_csrf(),
                                 account=account,
                                 min_length=state.store().settings.password_min_length)


# --------------------------------------------------------------------------- hooks


def _load_user(token: str) -> SessionUser | None:
    store = state.store()
    account = accounts.session_account(store.engine, token, settings=store.settings,
                                       address=client_address(), write_turn=store.write_turn)
    return SessionUser(account, token) if account else None


def _gate() -> flask.Response | None:
    """Let public files through; everything else needs a live session (and a changed password)."""
    request = flask.request
    if request.endpoint in PUBLIC_ENDPOINTS or request.path.startswith(PUBLIC_PREFIXES):
        return None
    if request.path.startswith(OWN_ACCESS_PREFIXES):
        return None
    account = current_account()
    if account is None:
        return _unauthorised()
    if account.must_change_password and request.endpoint not in ("password", "logout"):
        if request.path.startswith(MACHINE_PREFIXES):
            return _plain("请先修改初始密码 / change your one-time password first", 403)
        return flask.redirect("/password")
    return None


def _unauthorised() -> flask.Response:
    request = flask.request
    if request.path.startswith(MACHINE_PREFIXES):
        return _plain("请先登录（会话已结束或未登录）/ log in first: no live session", 401)
    return flask.redirect("/login?" + _next_query(request.full_path))


def _csrf_cookie(response: flask.Response) -> flask.Response:
    """Hand the page its CSRF token (Dash sends it back as ``X-CSRFToken`` on every callback)."""
    request = flask.request
    if (request.method == "GET" and current_account() is not None
            and not request.path.startswith(PUBLIC_PREFIXES)
            and request.endpoint not in PUBLIC_ENDPOINTS):
        response.set_cookie(CSRF_COOKIE, generate_csrf(), samesite="Strict", httponly=False,
                            secure=server_secure(), path="/")
    return response


def server_secure() -> bool:
    """Whether cookies of this response carry the Secure flag."""
    app = flask.current_app
    return bool(app.session_interface.get_cookie_secure(app))


def _csrf_failed(error: CSRFError) -> flask.Response:
    return _plain(f"请求已失效，请刷新页面后重试（CSRF）/ CSRF check failed: {error.description}",
                  400)


def _plain(text: str, status: int) -> flask.Response:
    return flask.Response(text, status=status, mimetype="text/plain; charset=utf-8")


def _safe_next(value: str | None) -> str | None:
    """A same-site path to return to after login (never another host, never the login page)."""
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith("/") or value.startswith("//") \
            or parts.path in ("/login", "/logout", "/password") or "\\" in value:
        return None
    return value


def _next_query(full_path: str) -> str:
    from urllib.parse import urlencode

    path = full_path[:-1] if full_path.endswith("?") else full_path
    return urlencode({"next": path}) if path not in ("/", "") else ""
