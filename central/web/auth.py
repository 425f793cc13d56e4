"""Who is asking, and may they: the session, roles, CSRF tokens and the login rate limit.

The session is Starlette's signed cookie (itsdangerous; HttpOnly, SameSite=Lax, Secure behind
TLS) holding only the user's name, the account's session version and a CSRF token; the account
is read from PostgreSQL on every request, so a password change, a new role or a disabled
account takes effect at once. Alternatively a reverse proxy that authenticated the user passes
the name in a header (``--proxy-user-header``); the account (for its role) must still exist.
"""

from __future__ import annotations

import functools
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from central.web.users import ROLES, User

SESSION_MAX_AGE_S = 12 * 3600
Endpoint = Callable[[Request], Awaitable[Response]]


def role_at_least(user: User | None, role: str) -> bool:
    return user is not None and ROLES.index(user.role) >= ROLES.index(role)


def user_of(request: Request) -> User | None:
    """The authenticated user of this request (set by the app's authentication middleware)."""
    user = getattr(request.state, "user", None)
    return user if isinstance(user, User) else None


def require_role(role: str, *, forbidden: Callable[[Request, User | None], Response] | None = None
                 ) -> Callable[[Endpoint], Endpoint]:
    """Decorate an endpoint that needs at least ``role`` ("read-only" or "operator"); others get
    403 (and nothing is done). The app refuses anonymous requests before any endpoint runs."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")

    def wrap(endpoint: Endpoint) -> Endpoint:
        @functools.wraps(endpoint)
        async def guarded(request: Request) -> Response:
            user = user_of(request)
            if not role_at_least(user, role):
                if forbidden is not None:
                    return forbidden(request, user)
                return Response("forbidden", status_code=403)
            return await endpoint(request)
        return guarded
    return wrap


# -- CSRF ------------------------------------------------------------------------------------------

def csrf_token(request: Request) -> str:
    """This session's token (made on first use): every form posts it back."""
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = request.session["csrf"] = secrets.token_urlsafe(24)
    return token


def csrf_ok(request: Request, sent: object) -> bool:
    token = request.session.get("csrf")
    if not isinstance(token, str) or not isinstance(sent, str):
        return False
    return hmac.compare_digest(token.encode(), sent.encode())


# -- login rate limit ------------------------------------------------------------------------------

class LoginLimiter:
    """At most ``max_failures`` failed logins per client address and per user name within
    ``window_s``; then refused (even with the right password) until the oldest failure ages out.
    In memory and bounded: a restart forgets (the argon2 cost still bounds guessing)."""

    def __init__(self, *, max_failures: int = 5, window_s: float = 300.0,
                 max_keys: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_failures, self.window_s, self.max_keys = max_failures, window_s, max_keys
        self._clock = clock
        self._fails: OrderedDict[str, list[float]] = OrderedDict()

    def _recent(self, key: str, now: float) -> list[float]:
        times = [t for t in self._fails.get(key, []) if now - t < self.window_s]
        if times:
            self._fails[key] = times
        else:
            self._fails.pop(key, None)
        return times

    def retry_after(self, keys: list[str]) -> float | None:
        """Seconds to wait before another try is heard, or None if one may try now."""
        now = self._clock()
        worst = None
        for key in keys:
            times = self._recent(key, now)
            if len(times) >= self.max_failures:
                wait = self.window_s - (now - times[-self.max_failures])
                worst = wait if worst is None else max(worst, wait)
        return worst

    def failed(self, keys: list[str]) -> None:
        now = self._clock()
        for key in keys:
            self._fails.setdefault(key, []).append(now)
            self._fails.move_to_end(key)
        while len(self._fails) > self.max_keys:
            self._fails.popitem(last=False)

    def succeeded(self, key: str) -> None:
        self._fails.pop(key, None)


def safe_next(target: Any) -> str:
    """A post-login or language-switch destination on this site only (no open redirect)."""
    if not isinstance(target, str) or len(target) > 1000 or not target.startswith("/") \
            or target.startswith(("//", "/\\")) \
            or any(ord(ch) < 0x21 or ch in "\\\x7f" for ch in target):
        return "/"
    return target
