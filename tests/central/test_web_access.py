"""Who may see and do what on the fleet page: `clinic-central web` as a process on the real stack."""

from __future__ import annotations

import time

from fixtures.central import pg_query
from helpers import wait_until
from web_support import Site, cli, csrf_of, login, start_web, stop_web, web  # noqa: F401


def on_battery(central, site="SITE001", start=None):
    """SITE001's UPS on battery, through the broker and the ingest; returns the active entry."""
    s = Site(central, site)
    s.online()
    start = time.time() - 600 if start is None else start
    entry = s.raise_event("mains_lost", "ups", start, {"on_battery": True, "battery.charge_pct": 80,
                                                      "battery.runtime_s": 1500})
    s.active([entry])
    wait_until(lambda: pg_query(central, "SELECT count(*) FROM events_active WHERE site = %s "
                                         "AND jsonb_array_length(active) = 1", site)[0][0] == 1,
               timeout=20, what="the active list in PostgreSQL")
    s.close()
    return entry


def test_every_page_and_the_api_refuse_an_anonymous_visitor(web):
    c = web.client()
    for path in ("/", "/?show=on_battery", "/fleet/rows", "/clinic/SITE001"):
        r = c.get(path)
        assert r.status_code == 303, path
        assert r.headers["location"].startswith("/login?next="), path
    for path in ("/api/fleet", "/api/clinic/SITE001"):
        r = c.get(path)
        assert r.status_code == 401 and r.json() == {"error": "login required"}, path
    r = c.post("/clinic/SITE001/ack", data={"dev": "ups", "cond": "mains_lost", "start": "x"})
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    assert c.get("/login").status_code == 200           # the login page itself is public
    # a made-up cookie is no session
    c.cookies.set("clinic_session", "eyJ1IjogImFuYSIsICJ2IjogMX0=.forged.sig")
    assert c.get("/api/fleet").status_code == 401


def test_login_gives_a_signed_httponly_samesite_cookie_and_a_wrong_password_nothing(web):
    c = web.client()
    r = login(c, "ana", "not her password")
    assert r.status_code == 401 and "Usuario o contraseña incorrectos" in r.text
    # a NUL byte in the name was a 500 (PostgreSQL refuses it in text): now just a wrong login
    assert login(c, "an\x00a", "not her password").status_code == 401
    assert c.get("/api/fleet").status_code == 401
    r = login(c, "ana", "operadora-segura-1", nxt="/clinic/SITE001")
    assert r.status_code == 303 and r.headers["location"] == "/clinic/SITE001"
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    assert c.get("/api/fleet").status_code == 200
    page = c.get("/")
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    # the page's live part: unchanged is a 304 without a body
    rows = c.get("/fleet/rows")
    assert rows.status_code == 200 and 'id="fleet"' in rows.text
    again = c.get("/fleet/rows", headers={"If-None-Match": rows.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    # an open redirect is not followed: "next" must be a path on this site
    c2 = web.client()
    r = login(c2, "luis", "solo-lectura-22", nxt="//evil.example/")
    assert r.headers["location"] == "/"
    # logout ends the session
    page = c.get("/")
    assert c.post("/logout", data={"csrf": csrf_of(page.text)}).status_code == 303
    assert c.get("/api/fleet").status_code == 401


def test_a_read_only_user_sees_the_problem_but_cannot_take_charge_of_it(web, central):
    entry = on_battery(central)
    luis = web.login("luis")
    page = luis.get("/clinic/SITE001")
    assert page.status_code == 200 and "Sin red eléctrica" in page.text
    assert luis.get("/clinic/SITE%00").status_code == 400          # was a 500
    assert luis.get("/clinic/SITE999").status_code == 404
    # unknown paths: JSON for the API, no redirect for a trailing slash (the fuzz test found both)
    r = luis.get("/api/nothing")
    assert r.status_code == 404 and r.json() == {"error": "not found"}
    assert luis.get("/clinic/SITE001/").status_code == 404
    assert "/ack" not in page.text and "solo los operadores pueden atender" in page.text
    start = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(entry["start"]))
    r = luis.post("/clinic/SITE001/ack", data={
        "csrf": csrf_of(page.text), "dev": "ups", "cond": "mains_lost",
        "start": f"{start}.{int(entry['start'] % 1 * 1e6):06d}+00:00", "note": "voy"})
    assert r.status_code == 403 and "no puede hacer esto" in r.text
    assert pg_query(central, "SELECT count(*) FROM problem_acks")[0][0] == 0
    assert pg_query(central, "SELECT count(*) FROM operator_actions")[0][0] == 0

    ana = web.login("ana")
    page = ana.get("/clinic/SITE001")
    assert page.status_code == 200 and 'action="/clinic/SITE001/ack"' in page.text
    import re
    start_iso = re.search(r'name="start" value="([^"]+)"', page.text).group(1)
    # without the session's CSRF token: refused, nothing recorded
    r = ana.post("/clinic/SITE001/ack", data={"csrf": "guess", "dev": "ups",
                                              "cond": "mains_lost", "start": start_iso})
    assert r.status_code == 403
    assert pg_query(central, "SELECT count(*) FROM problem_acks")[0][0] == 0
    r = ana.post("/clinic/SITE001/ack", data={"csrf": csrf_of(page.text), "dev": "ups",
                                              "cond": "mains_lost", "start": start_iso,
                                              "note": "técnico en camino"})
    assert r.status_code == 303, r.text
    assert pg_query(central, "SELECT by_user, note FROM problem_acks") == [("ana", "técnico en camino")]
    assert pg_query(central, "SELECT actor, action, detail->>'site', detail->>'note' "
                             "FROM operator_actions") == [
        ("ana", "problem_ack", "SITE001", "técnico en camino")]
    page = luis.get("/clinic/SITE001")
    assert "Atendido por ana" in page.text and "técnico en camino" in page.text
    assert luis.get("/api/clinic/SITE001").json()["clinic"]["problems"][0]["ack_by"] == "ana"


def test_login_attempts_are_limited_even_with_the_right_password_after(web):
    c = web.client()
    for _ in range(5):
        assert login(c, "luis", "wrong guess").status_code == 401
    r = login(c, "luis", "solo-lectura-22")
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    assert "Demasiados intentos" in r.text
    assert c.get("/api/fleet").status_code == 401
    # another user from the same address is held too (the address is counted)
    assert login(web.client(), "ana", "operadora-segura-1").status_code == 429


def test_a_password_change_or_a_disabled_account_ends_its_sessions_at_once(web):
    luis = web.login("luis")
    ana = web.login("ana")
    assert luis.get("/api/fleet").status_code == 200
    r = cli(web.cfg, "users", "passwd", "luis", "--password-stdin", stdin="otra-clave-larga\n")
    assert r.returncode == 0, r.stderr
    assert luis.get("/api/fleet").status_code == 401
    assert web.login("luis", "otra-clave-larga").get("/api/fleet").status_code == 200
    assert cli(web.cfg, "users", "role", "ana", "--disable").returncode == 0
    assert ana.get("/").status_code == 303
    assert login(web.client(), "ana", "operadora-segura-1").status_code == 401


def test_users_cli_lists_roles_never_passwords_and_refuses_bad_input(web):
    r = cli(web.cfg, "users", "list", "--json")
    assert r.returncode == 0
    assert "operadora" not in r.stdout and "argon2" not in r.stdout
    assert {(u["name"], u["role"]) for u in __import__("json").loads(r.stdout)} == {
        ("ana", "operator"), ("luis", "read-only")}
    assert cli(web.cfg, "users", "add", "eve", "--password-stdin", stdin="short\n").returncode == 2
    assert cli(web.cfg, "users", "add", "ana", "--password-stdin",
               stdin="long-enough-pass\n").returncode == 2
    assert cli(web.cfg, "users", "passwd", "nobody", "--password-stdin",
               stdin="long-enough-pass\n").returncode == 2
    rows = pg_query(web.stack, "SELECT pw_hash FROM web_users")
    assert rows and all(h.startswith("$argon2id$") for (h,) in rows)


def test_behind_an_authenticating_proxy_the_header_names_the_account(central, tmp_path):
    central.start_ingest()
    w = start_web(central, tmp_path, "--proxy-user-header", "X-Remote-User")
    try:
        c = w.client()
        assert c.get("/api/fleet").status_code == 401
        assert c.get("/api/fleet", headers={"X-Remote-User": "mallory"}).status_code == 401
        assert c.get("/api/fleet", headers={"X-Remote-User": "luis"}).status_code == 200
        page = c.get("/", headers={"X-Remote-User": "luis"})
        assert page.status_code == 200 and "luis (solo lectura)" in page.text
    finally:
        stop_web(w)


def test_the_page_filters_by_condition_state_and_municipality(web, central, tmp_path):
    on_battery(central)
    inv = tmp_path / "sites.csv"
    inv.write_text("site,name,state,municipality\nSITE001,Clínica Juchitán,Oaxaca,Juchitán\n"
                   "SITE002,Clínica Ocosingo,Chiapas,Ocosingo\n")
    assert cli(web.cfg, "sites", "import", str(inv)).returncode == 0
    luis = web.login("luis")

    def sites(query):
        r = luis.get(f"/api/fleet?{query}")
        assert r.status_code == 200, r.text
        return [c["site"] for c in r.json()["clinics"]]
    assert sites("show=all") == ["SITE002", "SITE001"]      # never connected, then on battery
    assert sites("show=on_battery") == ["SITE001"]
    assert sites("state=Chiapas") == ["SITE002"]
    assert sites("state=Oaxaca&municipality=Juchit%C3%A1n&show=on_battery&for=5m") == ["SITE001"]
    assert sites("show=on_battery&for=1h") == []
    page = luis.get("/?state=Oaxaca")
    assert "Clínica Juchitán" in page.text and "Clínica Ocosingo" not in page.text
    assert "<option selected>Oaxaca</option>" in page.text and "Juchitán</option>" in page.text
    assert luis.get("/?show=everything").status_code == 400
    assert luis.get("/api/fleet?for=soon").status_code == 400


def test_pages_added_later_sit_behind_the_same_login_and_roles(web, central):
    """The hook the push and rollout pages use: ``build(settings, extra_routes=...)`` with
    ``auth.require_role("operator")``, the CSRF check and the audit log."""
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from central import fleet
    from central.web import auth
    from central.web.app import WebSettings, build

    def rollout_routes(app):
        @auth.require_role("operator", forbidden=app.forbidden)
        async def start(request):
            form = await request.form()
            if not auth.csrf_ok(request, form.get("csrf")):
                return PlainTextResponse("csrf", 403)
            with app.db() as conn:
                fleet.record_action(conn, user=auth.user_of(request).name, action="rollout_start",
                                    site=None, detail={"sites": 20})
            return PlainTextResponse("started")
        return Route("/rollout/start", start, methods=["POST"])

    settings = WebSettings(pg_dsn=central.pg_dsn, vm_url=None, secret=b"t" * 32)
    with TestClient(build(settings, extra_routes=[rollout_routes]), base_url="http://127.0.0.1",
                    follow_redirects=False) as c:
        assert c.post("/rollout/start").status_code == 303            # anonymous: to the login
        for user, status in (("luis", 403), ("ana", 200)):
            c.cookies.clear()
            assert login(c, user, {"luis": "solo-lectura-22", "ana": "operadora-segura-1"}[user]
                         ).status_code == 303
            token = csrf_of(c.get("/").text)
            assert c.post("/rollout/start", data={"csrf": token}).status_code == status, user
    assert pg_query(central, "SELECT actor, action FROM operator_actions") == [
        ("ana", "rollout_start")]


def test_rollout_progress_and_kept_command_answers_are_on_the_page(web, central):
    """Read through central.rollout / central.commands, the same as `clinic-central rollout
    status` and `commands`; any logged-in user may look, nobody can act from here."""
    rid = pg_query(central, """INSERT INTO rollouts (created_by, kind, version, key_id, envelope,
                   envelope_sha256, not_after, canary_share, max_failure_share, stage_timeout_s,
                   state, stage, stopped_reason)
                   VALUES ('alice', 'overlay', 42, 'k1', '\\x00', 'x', now() + interval '1 day',
                           0.25, 0.2, 600, 'stopped', 1, 'canary: 2 of 5 rejected')
                   RETURNING id""")[0][0]
    for site, state, reason in (("SITE001", "applied", None), ("SITE002", "rejected", "invalid"),
                                ("SITE003", "pending", None)):
        pg_query(central, "INSERT INTO rollout_sites (rollout_id, site, stage, state, reason, "
                          "sent_at) VALUES (%s, %s, %s, %s, %s, now()) RETURNING site",
                 rid, site, 2 if state == "pending" else 1, state, reason)
    pg_query(central, "INSERT INTO operator_actions (actor, action, rollout_id, sites) "
                      "VALUES ('alice', 'rollout_stop', %s, 2) RETURNING id", rid)
    pg_query(central, "INSERT INTO commands_sent (command_id, actor, command, sites) VALUES "
                      "('c1', 'alice', 'diagnose', ARRAY['SITE001']) RETURNING command_id")
    pg_query(central, """INSERT INTO command_results (site, leaf, command_id, command, ok, at, doc)
                         VALUES ('SITE001', 'cmd/result', 'c1', 'diagnose', true, now(),
                                 '{"wan": "ok"}') RETURNING id""")
    luis = web.login("luis")
    page = luis.get("/rollouts")
    assert page.status_code == 200 and f'href="/rollouts/{rid}"' in page.text
    assert "detenido" in page.text and "rechazado: 1" in page.text
    page = luis.get(f"/rollouts/{rid}")
    assert page.status_code == 200
    assert 'data-site="SITE002" data-state="rejected"' in page.text and "invalid" in page.text
    assert "canario" in page.text and "Detenido: canary: 2 of 5 rejected" in page.text
    assert "rollout_stop" in page.text
    doc = luis.get(f"/api/rollouts/{rid}").json()
    assert doc["counts"] == {"applied": 1, "rejected": 1, "pending": 1} and doc["actions"]
    assert luis.get("/api/rollouts/999").status_code == 404
    page = luis.get("/commands?site=SITE001")
    assert page.status_code == 200 and "diagnose" in page.text and "alice" in page.text
    assert "&#34;wan&#34;: &#34;ok&#34;" in page.text or '"wan": "ok"' in page.text
    assert luis.get("/commands?site=%00").status_code == 400
    assert web.client().get("/api/rollouts").status_code == 401
