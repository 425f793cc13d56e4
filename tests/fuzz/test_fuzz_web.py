"""The login form and every query parameter are bytes from outside: whatever arrives, the page
answers with a status it documents (never a 500, never a session without the password), within
the fuzz budget. The app runs in process against a real PostgreSQL (Starlette's TestClient)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import quote_from_bytes

import pytest
from fuzz_budget import SECONDS_PER_INPUT, bounded, fuzz_settings
from hypothesis import given
from hypothesis import strategies as st

from helpers import require_binary, wait_until

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(1, str(ROOT / "scripts"))

PASSWORD = "una-clave-de-prueba"
PATHS = ["/", "/fleet/rows", "/api/fleet", "/clinic/SITE001", "/api/clinic/SITE001", "/rollouts",
         "/api/rollouts", "/rollouts/1", "/commands", "/api/commands"]
PARAMS = ["show", "state", "municipality", "for", "range", "next", "site", "x"]


@pytest.fixture(scope="module")
def app_client() -> Iterator[Any]:
    import glob
    if not glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        require_binary("initdb")
    from central_stack import Postgres
    from starlette.testclient import TestClient

    from central import fleet, pg
    from central.web import users
    from central.web.app import WebSettings, build
    db = Postgres().start()
    try:
        def ready() -> bool:
            try:
                pg.connect(db.dsn).close()
                return True
            except Exception:    # starting up
                return False
        wait_until(ready, timeout=30, what="PostgreSQL to accept connections")
        with pg.connect(db.dsn) as conn:
            fleet.migrate(conn)
            users.add(conn, "ana", PASSWORD, "operator")
            conn.execute("INSERT INTO sites (site, last_seen, status) VALUES ('SITE001', now(), "
                         "'online')")
        settings = WebSettings(pg_dsn=db.dsn, vm_url=None, secret=b"k" * 32,
                               login_max_failures=10**9)
        with TestClient(build(settings), base_url="http://127.0.0.1",
                        follow_redirects=False) as client:
            yield client
    finally:
        db.remove()


def _csrf(client: Any) -> str:
    import re
    page = client.get("/login")
    m = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert m
    return m.group(1)


@fuzz_settings(60)
@given(user=st.binary(max_size=80), password=st.binary(max_size=200), nxt=st.binary(max_size=80),
       extra=st.binary(max_size=200), keep_csrf=st.booleans())
def test_any_login_form_is_refused_or_redirected_never_an_error(
        app_client: Any, user: bytes, password: bytes, nxt: bytes, extra: bytes,
        keep_csrf: bool) -> None:
    app_client.cookies.clear()
    token = _csrf(app_client) if keep_csrf else "x"
    body = (b"user=" + quote_from_bytes(user).encode() + b"&password="
            + quote_from_bytes(password).encode() + b"&next=" + quote_from_bytes(nxt).encode()
            + b"&csrf=" + token.encode() + b"&" + extra)
    # argon2 is slow on purpose (64 MiB, ~0.1 s a try): a login gets 3 s on a busy machine
    with bounded("login form", seconds=max(3.0, SECONDS_PER_INPUT)):
        r = app_client.post("/login", content=body,
                            headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code in (200, 303, 400, 401), r.status_code
    if r.status_code == 303:   # only the right password opens a session
        assert password == PASSWORD.encode()
    assert app_client.get("/api/fleet").status_code == (200 if r.status_code == 303 else 401)


@fuzz_settings(80)
@given(path=st.sampled_from(PATHS), params=st.lists(
    st.tuples(st.sampled_from(PARAMS) | st.binary(max_size=10), st.binary(max_size=120)),
    max_size=4), site=st.binary(max_size=40))
def test_any_query_is_answered_with_a_documented_status(
        app_client: Any, path: str, params: list[tuple[Any, bytes]], site: bytes) -> None:
    if not app_client.get("/api/fleet").status_code == 200:
        app_client.cookies.clear()
        r = app_client.post("/login", data={"user": "ana", "password": PASSWORD,
                                            "csrf": _csrf(app_client)})
        assert r.status_code == 303
    if "SITE001" in path and site:
        path = path.replace("SITE001", quote_from_bytes(site, safe=""))
    query = "&".join(f"{quote_from_bytes(k if isinstance(k, bytes) else k.encode())}="
                     f"{quote_from_bytes(v)}" for k, v in params)
    with bounded("query"):
        r = app_client.get(f"{path}?{query}")
    assert r.status_code in (200, 400, 404), (path, query, r.status_code)
    if path.startswith("/api/"):
        assert r.headers["content-type"].startswith("application/json")
