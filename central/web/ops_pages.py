"""Read-only pages of the changes pushed to many clinics and of the commands sent: a rollout's
progress and every site's outcome, and the kept command answers (central.rollout and
central.commands are the one source, as for `clinic-central rollout status` and `commands`).

Creating, starting and rolling back stay on the command line: they need the operator's signing
key, which this server does not hold.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from central import commands, rollout

if TYPE_CHECKING:
    from central.web.app import App


def routes(app: App, printable: Any) -> list[BaseRoute]:
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
        return app.render(request, "rollout.html", r=st, actions=actions, now=now_of())

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
            Route("/api/rollouts/{rid:int}", rollout_page),
            Route("/commands", commands_page), Route("/api/commands", commands_page)]
