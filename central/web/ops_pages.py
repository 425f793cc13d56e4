"""Pages of the changes pushed to many clinics and of the commands sent: a rollout's progress
and every site's outcome, and the kept command answers (central.rollout and central.commands are
the one source, as for `clinic-central rollout status` and `commands`).

An operator may start a created rollout here (POST, CSRF, recorded with the web user as actor;
central.web.rollout_runner). Creating and rolling back stay on the command line: they need the
operator's signing key, which this server never holds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from central import commands, rollout
from central.web import auth
from central.web.rollout_runner import Runner

if TYPE_CHECKING:
    from central.web.app import App


MAX_FORM_BYTES = 4096


def routes(app: App, printable: Any) -> list[BaseRoute]:
    runner = Runner(app.s.pg_dsn, app.s.broker)

    def load_rollouts() -> list[dict[str, Any]]:
        with app.db() as conn:
            return rollout.list_rollouts(conn)

    def load_rollout(rid: int) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        with app.db() as conn:
            try:
                return rollout.status(conn, rid), rollout.actions(conn, rollout_id=rid)
            except rollout.RolloutError:
                return None

    def load_commands(site: str | None) -> list[dict[str, Any]]:
        with app.db() as conn:
            return commands.list_commands(conn, site=site, limit=200)

    def now_of() -> Any:
        from datetime import UTC, datetime
        return datetime.now(UTC)

    async def rollouts_page(request: Request) -> Response:
        data = await run_in_threadpool(load_rollouts)
        if request.url.path.startswith("/api/"):
            return JSONResponse({"rollouts": data})
        return app.render(request, "rollouts.html", rollouts=data, now=now_of())

    async def rollout_page(request: Request) -> Response:
        found = await run_in_threadpool(load_rollout, request.path_params["rid"])
        api = request.url.path.startswith("/api/")
        if found is None:
            if api:
                return JSONResponse({"error": "not found"}, 404)
            return app.render(request, "error.html", 404,
                              message=app.words(request)("error.not_found_page"))
        st, actions = found
        if api:
            return JSONResponse({**st, "actions": actions})
        rid = st["id"]
        return app.render(request, "rollout.html", r=st, actions=actions, now=now_of(),
                          can_start=runner.broker is not None, running=runner.running(rid),
                          run_error=runner.error(rid))

    @auth.require_role("operator", forbidden=app.forbidden)
    async def start_rollout(request: Request) -> Response:
        rid: int = request.path_params["rid"]
        w = app.words(request)
        if int(request.headers.get("content-length") or 0) > MAX_FORM_BYTES:
            return app.render(request, "error.html", 400, message=w("error.bad_request",
                                                                    what="size"))
        form = await request.form(max_files=0, max_fields=5)
        if not auth.csrf_ok(request, form.get("csrf")):
            return app.render(request, "error.html", 403, message=w("error.csrf"))
        user = auth.user_of(request)
        assert user is not None   # the gate let the request in
        found = await run_in_threadpool(load_rollout, rid)
        if found is None:
            return app.render(request, "error.html", 404, message=w("error.not_found_page"))
        if runner.broker is None:
            return app.render(request, "error.html", 409, message=w("rollout.no_broker"))
        # Only a rollout nobody started: one stopped or interrupted is the CLI's to judge.
        if found[0]["state"] != "created" or not runner.start(rid, user.name):
            return app.render(request, "error.html", 409,
                              message=w("rollout.not_startable",
                                        state=w.code("rstate", found[0]["state"])))
        return RedirectResponse(f"/rollouts/{rid}", 303)

    async def commands_page(request: Request) -> Response:
        site = request.query_params.get("site") or None
        api = request.url.path.startswith("/api/")
        if site is not None and not printable(site):
            if api:
                return JSONResponse({"error": "bad request", "param": "site"}, 400)
            w = app.words(request)
            return app.render(request, "error.html", 400,
                              message=w("error.bad_request", what="site"))
        data = await run_in_threadpool(load_commands, site)
        if api:
            return JSONResponse({"commands": data})
        return app.render(request, "commands.html", cmds=data, site=site, now=now_of())

    return [Route("/rollouts", rollouts_page), Route("/api/rollouts", rollouts_page),
            Route("/rollouts/{rid:int}", rollout_page),
            Route("/rollouts/{rid:int}/start", start_rollout, methods=["POST"]),
            Route("/api/rollouts/{rid:int}", rollout_page),
            Route("/commands", commands_page), Route("/api/commands", commands_page)]
