"""The web application: routes, the authentication gate, and rendering.

    request -> SessionMiddleware (signed cookie) -> authenticate (every path but /login, /lang,
    /static) -> endpoint (HTML or JSON from the same central.fleet state) -> response

Pages redirect an anonymous visitor to /login; the JSON API answers 401. Endpoints are plain
functions run in Starlette's thread pool (psycopg is blocking); each takes a pooled connection.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from jinja2 import Environment, PackageLoader, select_autoescape
from psycopg_pool import ConnectionPool
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from agent.remote.fleet import BrokerOptions
from central import fleet
from central.web import auth, charts, users
from central.web.texts import Words, pick_language

log = logging.getLogger(__name__)
PUBLIC = ("/login", "/lang", "/static/")
MAX_PARAM = 100          # characters of a filter value; longer is a bad request
MAX_FORM_BYTES = 16_384


@dataclass(frozen=True)
class WebSettings:
    pg_dsn: str                   # never logged
    vm_url: str | None
    secret: bytes                 # signs the session cookies
    tz: str = "America/Mexico_City"
    cookie_secure: bool = False   # set when served over HTTPS (directly or by the proxy)
    proxy_user_header: str | None = None
    poll_s: float = 3.0           # the fleet page's refresh
    silent_after_s: float = fleet.SILENT_AFTER_S
    login_max_failures: int = 5
    login_window_s: float = 300.0
    broker: BrokerOptions | None = None   # the operator account that starts rollouts; never logged


class BadRequest(Exception):
    """A query parameter or form field outside what the page accepts."""


class App:
    """The state shared by the endpoints: settings, the connection pool, templates, limiter."""

    def __init__(self, settings: WebSettings) -> None:
        self.s = settings
        self.tz = ZoneInfo(settings.tz)
        self.pool = ConnectionPool(settings.pg_dsn, min_size=1, max_size=4, open=False,
                                   kwargs={"autocommit": True}, timeout=10)
        self.limiter = auth.LoginLimiter(max_failures=settings.login_max_failures,
                                         window_s=settings.login_window_s)
        self.env = Environment(loader=PackageLoader("central.web", "templates"),
                               autoescape=select_autoescape(default=True),
                               trim_blocks=True, lstrip_blocks=True)

    @contextmanager
    def db(self) -> Iterator[psycopg.Connection[Any]]:
        with self.pool.connection() as conn:
            yield conn

    def words(self, request: Request) -> Words:
        return Words(pick_language(request.cookies.get("lang"),
                                   request.headers.get("accept-language")), self.tz)

    def render(self, request: Request, template: str, status: int = 200,
               **ctx: Any) -> HTMLResponse:
        w = self.words(request)
        user = auth.user_of(request)
        html = self.env.get_template(template).render(
            w=w, user=user, request=request, csrf=auth.csrf_token(request),
            path=_path_qs(request), operator=auth.role_at_least(user, "operator"), **ctx)
        return HTMLResponse(html, status_code=status, headers={"Content-Language": w.lang})

    def forbidden(self, request: Request, user: users.User | None) -> Response:
        w = self.words(request)
        role = w(f"role.{user.role}") if user else "-"
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": "forbidden", "role": user and user.role}, 403)
        return self.render(request, "error.html", 403, message=w("error.forbidden", role=role))


def _path_qs(request: Request) -> str:
    q = request.url.query
    return request.url.path + (f"?{q}" if q else "")


def _printable(value: str) -> bool:
    return len(value) <= MAX_PARAM and not any(ord(ch) < 0x20 or ch == "\x7f" for ch in value)


def _param(request: Request, name: str, allowed: tuple[str, ...] | None = None) -> str | None:
    value = request.query_params.get(name)
    if value is None or value == "":
        return None
    if not _printable(value):
        raise BadRequest(name)
    if allowed is not None and value not in allowed:
        raise BadRequest(name)
    return value


def _filter(request: Request) -> fleet.Filter:
    show = _param(request, "show", ("all", "problems", *fleet.STATES))
    for_text = _param(request, "for")
    for_s = None
    if for_text is not None:
        try:
            for_s = fleet.parse_duration(for_text)
        except ValueError as exc:
            raise BadRequest("for") from exc
    return fleet.Filter(show=None if show in (None, "all") else show,
                        state=_param(request, "state"),
                        municipality=_param(request, "municipality"), for_s=for_s)


SECURITY_HEADERS = [
    # own files only, no framing (clickjacking of the operator buttons), no sniffing
    (b"content-security-policy", b"default-src 'self'; img-src 'self' data:; "
                                 b"frame-ancestors 'none'; form-action 'self'; base-uri 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]


class SecurityHeaders:
    def __init__(self, inner: ASGIApp) -> None:
        self.inner = inner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.inner(scope, receive, send)
            return

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + SECURITY_HEADERS
            await send(message)
        await self.inner(scope, receive, send_with_headers)


def build(settings: WebSettings, extra_routes: Sequence[Callable[[App], BaseRoute]] = ()
          ) -> Starlette:
    """The ASGI application (uvicorn serves it; tests may too).

    ``extra_routes``: factories of more pages (e.g. pushes and rollouts) given the shared ``App``
    (its ``db()``, ``render()``, ``forbidden``); they sit behind the same login gate, and guard
    their actions with ``auth.require_role("operator", forbidden=app.forbidden)``, CSRF
    (``auth.csrf_ok``) and ``fleet.record_action`` (who did what)."""
    app = App(settings)
    from central.web import ops_pages  # imports App: here, not at the top

    # -- the gate --------------------------------------------------------------------------------
    def authenticate(request: Request) -> users.User | None:
        if settings.proxy_user_header:
            name = request.headers.get(settings.proxy_user_header)
            if not name:
                return None
            with app.db() as conn:
                return users.by_name(conn, name)
        name, version = request.session.get("u"), request.session.get("v")
        if not isinstance(name, str) or type(version) is not int:
            return None
        if time.time() - float(request.session.get("t", 0)) > auth.SESSION_MAX_AGE_S:
            return None
        with app.db() as conn:
            return users.current(conn, name, version)

    class Gate:
        """Every path but the public ones needs a logged-in user."""

        def __init__(self, inner: ASGIApp) -> None:
            self.inner = inner

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http" or scope["path"].startswith(PUBLIC):
                await self.inner(scope, receive, send)
                return
            request = Request(scope, receive)
            try:
                user = await run_in_threadpool(authenticate, request)
            except psycopg.Error as exc:
                log.error("PostgreSQL: %s", str(exc).splitlines()[0] if str(exc) else exc)
                await PlainTextResponse("PostgreSQL unavailable", 503)(scope, receive, send)
                return
            if user is None:
                if scope["path"].startswith("/api/"):
                    resp: Response = JSONResponse({"error": "login required"}, 401,
                                                  headers={"WWW-Authenticate": "Session"})
                else:
                    from urllib.parse import quote
                    resp = RedirectResponse(f"/login?next={quote(_path_qs(request))}", 303)
                await resp(scope, receive, send)
                return
            scope.setdefault("state", {})["user"] = user
            await self.inner(scope, receive, send)

    def handles_bad_input(fn: Callable[[Request], Response]) -> Callable[[Request], Awaitable[
            Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                return await run_in_threadpool(fn, request)
            except BadRequest as exc:
                w = app.words(request)
                if request.url.path.startswith("/api/"):
                    return JSONResponse({"error": "bad request", "param": str(exc)}, 400)
                return app.render(request, "error.html", 400,
                                  message=w("error.bad_request", what=str(exc)))
        endpoint.__name__ = fn.__name__
        return endpoint

    # -- login -----------------------------------------------------------------------------------
    def login_page(request: Request, *, error: str | None = None, status: int = 200) -> Response:
        return app.render(request, "login.html", status, error=error,
                          next=auth.safe_next(request.query_params.get("next")))

    async def login(request: Request) -> Response:
        if request.method == "GET":
            return login_page(request)
        w = app.words(request)
        if int(request.headers.get("content-length") or 0) > MAX_FORM_BYTES:
            return login_page(request, error=w("login.bad"), status=400)
        form = await request.form(max_files=0, max_fields=10)
        name, password = form.get("user"), form.get("password")
        nxt = auth.safe_next(form.get("next"))
        if not auth.csrf_ok(request, form.get("csrf")):
            return login_page(request, error=w("login.expired"), status=400)
        if not isinstance(name, str) or not isinstance(password, str) \
                or len(name) > 64 or len(password) > 1024:
            return login_page(request, error=w("login.bad"), status=400)
        if not re.fullmatch(users.NAME_PATTERN, name):
            name = "?"    # no such account (and no NUL byte for PostgreSQL); still counted
        client = request.client.host if request.client else "?"
        keys = [f"ip:{client}", f"user:{name.casefold()}"]
        wait = app.limiter.retry_after(keys)
        if wait is not None:
            resp = login_page(request, error=w("login.too_many", s=int(wait) + 1), status=429)
            resp.headers["Retry-After"] = str(int(wait) + 1)
            return resp

        def check() -> users.User | None:
            with app.db() as conn:
                return users.verify(conn, name, password)
        user = await run_in_threadpool(check)
        if user is None:
            app.limiter.failed(keys)
            log.info("failed login for %r from %s", name, client)
            return login_page(request, error=w("login.bad"), status=401)
        app.limiter.succeeded(f"user:{name.casefold()}")
        request.session.clear()       # a new session: nothing of the anonymous one survives
        request.session.update({"u": user.name, "v": user.session_version, "t": time.time()})
        auth.csrf_token(request)
        log.info("login: %s (%s) from %s", user.name, user.role, client)
        return RedirectResponse(nxt, 303)

    async def logout(request: Request) -> Response:
        form = await request.form(max_files=0, max_fields=5)
        if auth.csrf_ok(request, form.get("csrf")):
            request.session.clear()
        return RedirectResponse("/login", 303)

    async def lang(request: Request) -> Response:
        code = request.path_params["code"]
        resp = RedirectResponse(auth.safe_next(request.query_params.get("next")), 303)
        if code in ("es", "en"):
            resp.set_cookie("lang", code, max_age=365 * 86400, httponly=True, samesite="lax",
                            secure=settings.cookie_secure)
        return resp

    # -- the fleet -------------------------------------------------------------------------------
    def load(flt: fleet.Filter) -> fleet.Fleet:
        with app.db() as conn:
            return fleet.load(conn, settings.vm_url, flt, silent_after_s=settings.silent_after_s)

    def fleet_page(request: Request) -> Response:
        flt = _filter(request)
        data = load(flt)
        return app.render(request, "fleet.html", fleet=data, flt=flt, poll_ms=int(
            settings.poll_s * 1000), states=fleet.STATES)

    rows_cache: dict[tuple[fleet.Filter, str], tuple[float, str, str]] = {}
    rows_lock = threading.Lock()
    rows_ttl = min(1.0, settings.poll_s / 2)

    def fleet_rows(request: Request) -> Response:
        """The live part of the fleet page; 304 while it has not changed (tiny polls). Rendered
        at most once a second per filter and language, whatever the number of open pages."""
        flt, w = _filter(request), app.words(request)
        key = (flt, w.lang)
        with rows_lock:
            hit = rows_cache.get(key)
        if hit is not None and time.monotonic() - hit[0] < rows_ttl:
            html, tag = hit[1], hit[2]
        else:
            html = app.env.get_template("rows.html").render(w=w, fleet=load(flt),
                                                            states=fleet.STATES)
            tag = '"' + hashlib.sha256(html.encode()).hexdigest()[:20] + '"'
            with rows_lock:
                if len(rows_cache) >= 64:
                    rows_cache.clear()
                rows_cache[key] = (time.monotonic(), html, tag)
        if request.headers.get("if-none-match") == tag:
            return Response(status_code=304, headers={"ETag": tag})
        return HTMLResponse(html, headers={"ETag": tag, "Cache-Control": "no-cache"})

    def api_fleet(request: Request) -> Response:
        data = load(_filter(request))
        return JSONResponse({"now": data.now.isoformat(), "metrics_ok": data.metrics_ok,
                             "counts": data.counts(),
                             "clinics": [c.as_dict() for c in data.clinics]})

    # -- a clinic --------------------------------------------------------------------------------
    def clinic_data(site: str) -> tuple[fleet.Fleet, list[dict[str, Any]]]:
        if not _printable(site):
            raise BadRequest("site")
        with app.db() as conn:
            data = fleet.load(conn, settings.vm_url, fleet.Filter(site=site),
                              silent_after_s=settings.silent_after_s)
            history = fleet.event_history(conn, site) if data.clinics else []
        return data, history

    def clinic_page(request: Request) -> Response:
        site = request.path_params["site"]
        rng = _param(request, "range", tuple(charts.RANGES)) or "6h"
        data, history = clinic_data(site)
        w = app.words(request)
        if not data.clinics:
            return app.render(request, "error.html", 404, message=w("error.not_found", site=site))
        end = data.now.timestamp()
        start = end - charts.RANGES[rng]
        step = max((end - start) / charts.POINTS, 15)
        svgs = []
        for spec in charts.CHARTS:
            # one step past now: VictoriaMetrics aligns steps, and the newest reading must show
            series = charts.query(settings.vm_url, site, spec, start=start, end=end + step) \
                if settings.vm_url else None
            title = w(f"chart.{spec.key}")
            svgs.append((spec.key, title, charts.svg(
                series or [], start=start, end=end, step=step, title=title,
                no_data=w("chart.no_data") if series is not None else w("fleet.no_metrics"),
                range_text=w("chart.range", lo="{lo}", hi="{hi}"),
                start_label=w.time(datetime.fromtimestamp(start, app.tz)),
                end_label=w.time(data.now))))
        return app.render(request, "clinic.html", c=data.clinics[0], now=data.now,
                          history=history, charts=svgs, rng=rng, ranges=tuple(charts.RANGES),
                          metrics_ok=data.metrics_ok)

    def api_clinic(request: Request) -> Response:
        data, history = clinic_data(request.path_params["site"])
        if not data.clinics:
            return JSONResponse({"error": "not found"}, 404)
        return JSONResponse(json.loads(json.dumps({
            "now": data.now.isoformat(), "clinic": data.clinics[0].as_dict(),
            "events": history}, default=str)))

    @auth.require_role("operator", forbidden=app.forbidden)
    async def acknowledge(request: Request) -> Response:
        site = request.path_params["site"]
        w = app.words(request)
        if int(request.headers.get("content-length") or 0) > MAX_FORM_BYTES:
            return app.render(request, "error.html", 400, message=w("error.bad_request",
                                                                    what="size"))
        form = await request.form(max_files=0, max_fields=10)
        if not auth.csrf_ok(request, form.get("csrf")):
            return app.render(request, "error.html", 403, message=w("error.csrf"))
        dev, cond, start, note = (form.get(k) for k in ("dev", "cond", "start", "note"))
        try:
            if not all(isinstance(x, str) and _printable(x) for x in (dev, cond, start)) \
                    or not _printable(site) or not isinstance(note, str | None) \
                    or "\x00" in (note or ""):
                raise ValueError("fields")
            start_at = datetime.fromisoformat(str(start))
            if start_at.tzinfo is None:
                raise ValueError("start")
        except ValueError:
            return app.render(request, "error.html", 400,
                              message=w("error.bad_request", what="start"))
        user = auth.user_of(request)
        assert user is not None   # the gate let the request in

        def record() -> bool:
            with app.db() as conn:
                return fleet.acknowledge(conn, site=site, dev=str(dev), cond=str(cond),
                                         start=start_at, user=user.name,
                                         note=str(note or "")[:500])
        if not await run_in_threadpool(record):
            return app.render(request, "error.html", 409, message=w("error.not_active"))
        log.info("%s took charge of %s %s/%s", user.name, site, dev, cond)
        from urllib.parse import quote
        return RedirectResponse(f"/clinic/{quote(site, safe='')}", 303)

    routes = [
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/lang/{code}", lang),
        Route("/", handles_bad_input(fleet_page)),
        Route("/fleet/rows", handles_bad_input(fleet_rows)),
        Route("/api/fleet", handles_bad_input(api_fleet)),
        Route("/clinic/{site}", handles_bad_input(clinic_page)),
        Route("/api/clinic/{site}", handles_bad_input(api_clinic)),
        Route("/clinic/{site}/ack", acknowledge, methods=["POST"]),
        Mount("/static", StaticFiles(packages=[("central.web", "static")]), name="static"),
        *ops_pages.routes(app, _printable),
        *(factory(app) for factory in extra_routes),
    ]

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        app.pool.open()
        try:
            yield
        finally:
            app.pool.close()

    web = Starlette(routes=routes, lifespan=lifespan, middleware=[
        Middleware(SecurityHeaders),
        Middleware(GZipMiddleware, minimum_size=1000),
        Middleware(SessionMiddleware, secret_key=settings.secret.hex(),
                   session_cookie="clinic_session", max_age=auth.SESSION_MAX_AGE_S,
                   same_site="lax", https_only=settings.cookie_secure),
        Middleware(Gate),
    ])
    web.router.redirect_slashes = False     # one URL per page; "/clinic/x/" is not found

    async def not_found(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": "not found"}, 404)
        return app.render(request, "error.html", 404,
                          message=app.words(request)("error.not_found_page"))
    web.add_exception_handler(404, not_found)
    web.state.web = app
    return web
