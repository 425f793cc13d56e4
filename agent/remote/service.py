"""Remote management inside the running agent: thin glue between MQTT and the pure checks.

    broker --config/set--> check_push (pure) --Accepted--> state files (atomic)
                                |                            -> Agent.apply_config
                                |                            -> commit-confirmed (confirm.py)
                                +--Rejection-----------------> config/state (retained)
    broker --cmd---------> check_command (pure) --Accepted--> poll_now | diagnostics | resend
                                +--Rejection-----------------> cmd/result

The agent calls ``startup`` (before anything runs: a pushed config in effect is loaded from the
state directory), ``on_connected`` (the forwarder's hook: subscribe, publish the config state),
``on_reload`` (SIGHUP: the local file, or the push still in effect) and ``close``. Pushes are
handled one at a time, each to the end of its commit-confirmed wait; commands two at a time.
Both wait in bounded queues (``agent.remote.inbox``), and replies to refused ones are rate-limited.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from agent.config import AgentConfig, parse_toml_text
from agent.errors import AgentError, ConfigError
from agent.publish.topics import Topics
from agent.remote.checks import Ignored, Reason, Rejection
from agent.remote.commands import (
    CommandAccepted,
    CommandContext,
    Diagnostics,
    PollNow,
    Resend,
    check_command,
)
from agent.remote.confirm import commit_confirmed, wait_for_broker
from agent.remote.envelope import PublicKey, load_trusted_keys, sha256_hex
from agent.remote.inbox import Inbox
from agent.remote.push import (
    Accepted,
    LocalBasis,
    PushContext,
    RevertAccepted,
    check_push,
    load_effective,
)
from agent.remote.ratelimit import RateLimiter
from agent.remote.state import LKG_FILE, RemoteState, StateStore, pushed_file

if TYPE_CHECKING:
    from agent.control.api import AgentControl
    from agent.publish.mqtt_link import MqttLink

log = logging.getLogger(__name__)

PUBLISH_TIMEOUT_S = 30.0
LOG_REPEAT_S = 600.0            # a repeated rejection is logged at warning once per this long
# A flood on the subscriptions (docs/limits.md): queued messages, handlers at once, replies sent.
PUSH_QUEUE, COMMAND_QUEUE, COMMAND_WORKERS = 4, 32, 2
QUEUED_BYTES = 4 * 1024 * 1024
REPLY_BURST, REPLY_EVERY_S = 10, 6.0     # replies to refused messages: 10 at once, then 10/min


class RemoteService:
    """Config pushes and remote commands for one ``Agent``."""

    def __init__(self, agent: AgentControl) -> None:
        self.agent = agent
        self.store: StateStore | None = None
        self.state = RemoteState()
        self.local: LocalBasis | None = None
        self.local_cfg: AgentConfig | None = None
        self.running: dict[str, Any] = {"source": "local"}   # what config/state says is in effect
        self.running_text = ""
        self.wake = asyncio.Event()          # set on every broker connection
        self._push_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._rejected: deque[str] = deque(maxlen=32)   # envelope hashes refused, in memory only
        self._commands_seen: dict[str, float] = {}      # command id -> its not_after (persisted)
        self._logged: dict[str, float] = {}
        self._pushes = Inbox(self._handle_push, name="remote:push", capacity=PUSH_QUEUE,
                             max_queued_bytes=QUEUED_BYTES)
        self._commands = Inbox(self._handle_command, name="remote:command",
                               capacity=COMMAND_QUEUE, max_queued_bytes=QUEUED_BYTES,
                               workers=COMMAND_WORKERS)
        self._replies = RateLimiter(burst=REPLY_BURST, every_s=REPLY_EVERY_S)

    # -- agent hooks ---------------------------------------------------------------------------

    async def startup(self, local_cfg: AgentConfig) -> AgentConfig:
        """The config to start with: a pushed one still in effect, else the local file's."""
        self.store = StateStore(local_cfg.state_dir)
        self.local_cfg = local_cfg
        self.local = await asyncio.to_thread(self._read_local, local_cfg)
        self.state = await asyncio.to_thread(self.store.load)
        self._commands_seen = dict(self.state.commands_seen)
        self._run_local(local_cfg)
        if not local_cfg.remote.enabled or self.state.active is None:
            return local_cfg
        pushed = await asyncio.to_thread(self._load_active)
        if pushed is None:
            return local_cfg
        cfg, text = pushed
        self.running, self.running_text = dict(self.state.active), text
        log.info("using pushed config v%s (signed by key %s); the local file is %s",
                 self.state.active.get("version"), self.state.active.get("key_id"), self.local.path)
        if self.state.confirming:
            # The agent stopped while a push was being confirmed: give it its full time again.
            self._spawn(self._confirm_after_restart(cfg), "remote:confirm")
        return cfg

    async def on_connected(self, link: MqttLink) -> None:
        """Forwarder hook, once per broker connection: subscribe and say what config is in
        effect."""
        cfg = self.agent.config
        if self.store is None or not cfg.remote.enabled:
            return
        topics = Topics(cfg.mqtt.topic_prefix, cfg.site_id)
        link.subscribe(topics.config_set, self._push_received)
        link.subscribe(topics.command, self._command_received)
        self._publish_state(link)
        self.wake.set()

    async def on_reload(self, local_cfg: AgentConfig) -> AgentConfig:
        """SIGHUP (also sent by ``config use-local``): the config to apply now."""
        if self.store is None:
            return local_cfg
        self.local_cfg = local_cfg
        self.local = await asyncio.to_thread(self._read_local, local_cfg)
        self.state = await asyncio.to_thread(self.store.load)
        chosen = local_cfg
        pushed = None
        if local_cfg.remote.enabled and self.state.active is not None:
            pushed = await asyncio.to_thread(self._load_active)
        if pushed is not None:
            chosen, self.running_text = pushed
            assert self.state.active is not None   # pushed was loaded from it
            self.running = dict(self.state.active)
        else:
            self._run_local(local_cfg)
        # Published on the current connection; if applying the config replaces the connection,
        # on_connected publishes it again on the new one.
        self._publish_state()
        return chosen

    async def close(self) -> None:
        await self._pushes.close()
        await self._commands.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass

    def summary(self) -> dict[str, Any]:
        """For diagnostics: what config is in effect and what happened last."""
        doc = self.state_doc()
        return {k: doc[k] for k in ("state", "config", "highest_version", "set_aside", "event")}

    # -- config pushes -------------------------------------------------------------------------

    def _push_received(self, topic: str, payload: bytes) -> None:
        self._pushes.offer(payload)

    async def _handle_push(self, payload: bytes) -> None:
        async with self._push_lock:
            cfg = self.agent.config
            keys = await asyncio.to_thread(self._trusted_keys, cfg)
            ctx = PushContext(site_id=cfg.site_id, now=time.time(), trusted_keys=keys,
                              max_bytes=cfg.remote.max_push_bytes,
                              highest_version=self.state.highest_version,
                              handled=frozenset(self.state.handled) | frozenset(self._rejected),
                              local=self.local or LocalBasis.of(cfg),
                              confirm_timeout_s=cfg.remote.confirm_timeout_s,
                              base_doc=self._base_doc(), revertible=self._revertible())
            decision = check_push(payload, ctx)
            if isinstance(decision, Ignored):
                log.debug("config push ignored: %s", decision.why)
            elif isinstance(decision, Rejection):
                await self._rejected_push(decision, sha256_hex(payload))
            elif isinstance(decision, RevertAccepted):
                await self._apply_revert(decision, sha256_hex(payload))
            else:
                await self._apply_push(decision)

    def _base_doc(self) -> dict[str, Any] | None:
        """What an overlay is merged onto: the pushed config in effect; None for the local file."""
        if self.running.get("source") != "push" or not self.running_text:
            return None
        try:
            return parse_toml_text(self.running_text, source="config in effect")
        except ConfigError:
            return None     # validated when applied; cannot happen short of a bug

    def _revertible(self) -> int | None:
        """The push in effect, if the config that ran before it is known (and is another)."""
        active, lkg = self.state.active, self.state.last_known_good
        if active is None or lkg is None or self.state.confirming is not None \
                or active.get("source") != "push":
            return None
        if lkg.get("source") == "push" and lkg.get("version") == active.get("version"):
            return None     # after a rollback the last-known-good is the push in effect itself
        version = active.get("version")
        return version if isinstance(version, int) else None

    async def _apply_revert(self, rev: RevertAccepted, envelope_sha: str) -> None:
        """Back to the config that ran before push N (the last-known-good), on the central
        team's signed request: the same switch as a rollback, recorded under the revert's own
        version so it cannot be replayed."""
        assert self.store is not None and self.local_cfg is not None
        lkg = dict(self.state.last_known_good or {"source": "local"})
        target, text = self.local_cfg, self.local.text if self.local else ""
        if lkg.get("source") == "push":
            lkg_text = await asyncio.to_thread(self.store.read_config, LKG_FILE)
            try:
                target = load_effective(lkg_text or "", self.local or LocalBasis.of(target),
                                        source="last-known-good")
                text = lkg_text or ""
            except ConfigError as exc:
                await self._rejected_push(Rejection(
                    Reason.INVALID_CONFIG, f"the config before v{rev.reverts} no longer "
                    "validates here", tuple(exc.problems), key_id=rev.key_id, version=rev.version),
                    envelope_sha)
                return
        log.info("reverting pushed config v%d (asked by key %s, revert v%d)", rev.reverts,
                 rev.key_id, rev.version)
        await self.agent.apply_config(target)
        now = time.time()
        self.running, self.running_text = {**lkg, "applied_at": now}, text
        event = {"type": "reverted", "version": rev.version, "reverted": rev.reverts,
                 "key_id": rev.key_id, "at": now}

        def record(s: RemoteState) -> None:
            s.highest_version = rev.version
            s.active = self.running if lkg.get("source") == "push" else None
            s.confirming = None
            s.set_aside = None
            s.remember(rev.envelope_sha256)
            s.last_event = event
        await self._update(record)
        self._publish_state()

    async def _rejected_push(self, rej: Rejection, envelope_sha: str) -> None:
        self._rejected.append(envelope_sha)
        self._log_once(f"push:{rej.reason}", "config push refused (%s): %s%s; running config kept",
                       rej.reason, rej.detail, "".join(f"\n  {p}" for p in rej.problems))
        if not self._replies.allow():
            return      # a flood: neither a state write nor a publish for each (counted)
        event = {"type": "rejected", **rej.to_dict(), "at": time.time()}
        await self._update(lambda s: setattr(s, "last_event", event))
        self._publish_state()

    async def _apply_push(self, acc: Accepted) -> None:
        assert self.store is not None
        prev_cfg, prev_running, prev_text = self.agent.config, self.running, self.running_text
        version, timeout = acc.meta.version, prev_cfg.remote.confirm_timeout_s
        now = time.time()
        meta = {"source": "push", **asdict(acc.meta), "applied_at": now,
                "file": pushed_file(version)}
        lkg = {**prev_running, "file": LKG_FILE}
        await asyncio.to_thread(self.store.write_config, meta["file"], acc.text)
        await asyncio.to_thread(self.store.write_config, LKG_FILE, prev_text)

        def record(s: RemoteState) -> None:
            s.highest_version = version
            s.active = s.latest_push = meta
            s.last_known_good = lkg
            s.confirming = {"version": version, "since": now, "timeout_s": timeout}
            s.set_aside = None
            s.remember(acc.meta.envelope_sha256)
            s.last_event = {"type": "applying", "version": version, "key_id": acc.meta.key_id,
                            "at": now}
        await self._update(record)
        log.info("applying pushed config v%d (signed by key %s, sha256 %s); rolling back unless "
                 "the broker is reached within %g s", version, acc.meta.key_id,
                 acc.meta.sha256[:12], timeout)

        async def apply() -> None:
            self.running, self.running_text = meta, acc.text
            await self.agent.apply_config(acc.config)

        async def revert(why: str | None) -> None:
            await self._rollback(version, timeout, prev_cfg, lkg, prev_text, why=why)

        if await commit_confirmed(apply=apply, revert=revert,
                                  reached=lambda: self._reached(acc.config),
                                  wake=self.wake, timeout_s=timeout):
            await self._confirmed(version)

    async def _confirm_after_restart(self, cfg: AgentConfig) -> None:
        async with self._push_lock:
            # spawned by startup, once these are set
            assert self.store is not None and self.local is not None and self.local_cfg is not None
            confirming = self.state.confirming or {}
            version = confirming.get("version")
            timeout = self.agent.config.remote.confirm_timeout_s
            if await wait_for_broker(lambda: self._reached(cfg), self.wake, timeout):
                await self._confirmed(version)
                return
            lkg = self.state.last_known_good or {"source": "local"}
            target, text = self.local_cfg, self.local.text if self.local else ""
            if lkg.get("source") == "push":
                lkg_text = await asyncio.to_thread(self.store.read_config, LKG_FILE)
                try:
                    target = load_effective(lkg_text or "", self.local, source="last-known-good")
                    text = lkg_text or ""
                except ConfigError as exc:
                    log.error("last-known-good config unusable (%s); using the local file", exc)
                    lkg = {"source": "local"}
            await self._rollback(version, timeout, target, lkg, text)

    async def _confirmed(self, version: int | None) -> None:
        if not self._still_confirming(version):
            return
        log.info("pushed config v%s confirmed: the broker is reachable with it", version)
        event = {"type": "applied", "version": version, "key_id": self.running.get("key_id"),
                 "sha256": self.running.get("sha256"), "at": time.time()}

        def record(s: RemoteState) -> None:
            s.confirming = None
            s.last_event = event
        await self._update(record)
        self._publish_state()

    async def _rollback(self, version: int | None, timeout: float, target: AgentConfig,
                        lkg: dict[str, Any], text: str, *, why: str | None = None) -> None:
        if not self._still_confirming(version):
            return
        link = self.agent.link_status()
        brokers = ", ".join(f"{b.host}:{b.port}" for b in self.agent.config.mqtt.brokers)
        if why is not None:
            reason, detail = "apply_failed", f"config v{version}: {why}"
        else:
            reason = "broker_unreachable"
            detail = (f"could not reach the broker ({brokers}) within {timeout:g} s "
                      f"with config v{version}")
            if link is not None and link.last_error:
                detail += f"; last error: {link.last_error}"
        log.error("%s: going back to the last-known-good config", detail)
        await self.agent.apply_config(target)
        self.running, self.running_text = ({**lkg, "applied_at": time.time()}, text)
        event = {"type": "rolled_back", "version": version, "reason": reason, "detail": detail,
                 "at": time.time()}

        def record(s: RemoteState) -> None:
            s.active = self.running if lkg.get("source") == "push" else None
            s.confirming = None
            s.last_event = event
        await self._update(record)
        # Reported by on_connected once the old config is back on the broker (or now if it is).
        self._publish_state()

    def _still_confirming(self, version: int | None) -> bool:
        """False once the technician set the push aside (``config use-local``) meanwhile."""
        confirming = self.state.confirming or {}
        if confirming.get("version") != version:
            log.info("pushed config v%s is no longer being confirmed (set aside on site)", version)
            return False
        return True

    def _reached(self, cfg: AgentConfig) -> bool:
        """Connected to the broker with ``cfg``'s MQTT settings (not an older connection)."""
        return self.agent.broker_reached(cfg)

    # -- commands ------------------------------------------------------------------------------

    def _command_received(self, topic: str, payload: bytes) -> None:
        self._commands.offer(payload)

    async def _handle_command(self, payload: bytes) -> None:
        cfg = self.agent.config
        now = time.time()
        self._commands_seen = {k: t for k, t in self._commands_seen.items() if t >= now}
        keys = await asyncio.to_thread(self._trusted_keys, cfg)
        ctx = CommandContext(site_id=cfg.site_id, now=now, trusted_keys=keys,
                             max_bytes=cfg.remote.max_push_bytes,
                             seen_ids=frozenset(self._commands_seen),
                             devices=self.agent.device_names())
        decision = check_command(payload, ctx)
        if isinstance(decision, Ignored):
            return
        if isinstance(decision, Rejection):
            self._log_once(f"cmd:{decision.reason}", "remote command refused (%s): %s",
                           decision.reason, decision.detail)
            doc = decision.to_dict()
            doc["id"] = doc.pop("command_id", None)
            if self._replies.allow():
                self._publish_result({"ok": False, **doc})
            return
        self._commands_seen[decision.id] = decision.not_after
        await self._persist_command(decision.id, decision.not_after, now)
        log.info("remote command %s (%s, key %s)", decision.name, decision.id, decision.key_id)
        try:
            result = await self._execute(decision)
        except (TimeoutError, AgentError, OSError) as exc:
            self._publish_result({"id": decision.id, "command": decision.name, "ok": False,
                                  "reason": "failed", "detail": f"{exc.__class__.__name__}: {exc}"})
            return
        self._publish_result({"id": decision.id, "command": decision.name, "ok": True,
                              "result": result})

    async def _execute(self, cmd: CommandAccepted) -> dict[str, Any]:
        action = cmd.action
        if isinstance(action, PollNow):
            return {"devices": sorted(self.agent.poll_now(action.device))}
        topics = self._topics()
        if isinstance(action, Diagnostics):
            snapshot = (await self.agent.status()).to_doc()   # includes summary() as "remote"
            payload = json.dumps(snapshot, default=str, separators=(",", ":")).encode()
            sent = self.agent.publish(topics.diagnostics, payload)
            if sent is None:
                raise AgentError("not connected to the broker")
            await asyncio.wait_for(sent, PUBLISH_TIMEOUT_S)
            return {"topic": topics.diagnostics, "bytes": len(payload)}
        assert isinstance(action, Resend)
        # Through the forwarder: on the backlog lane, within buffer.backlog_kbps.
        result = await self.agent.request_resend(action.first_seq, action.last_seq)
        return {"first_seq": result.first_seq, "last_seq": result.last_seq,
                "resent": result.resent, "not_in_buffer": result.not_in_buffer}

    # -- publishing ----------------------------------------------------------------------------

    def _topics(self) -> Topics:
        cfg = self.agent.config
        return Topics(cfg.mqtt.topic_prefix, cfg.site_id)

    def state_doc(self) -> dict[str, Any]:
        """The retained config state: what is in effect, the newest version, the last event."""
        s = self.state
        return {"v": 1, "site": self.agent.config.site_id, "ts": round(time.time(), 3),
                "state": "confirming" if s.confirming else "applied" if s.active else "local",
                "config": _public(self.running), "highest_version": s.highest_version,
                "latest_push": _public(s.latest_push), "set_aside": s.set_aside,
                "event": s.last_event}

    def _publish_state(self, link: MqttLink | None = None) -> None:
        topic = self._topics().config_state
        payload = json.dumps(self.state_doc(), separators=(",", ":"), default=str).encode()
        sent = (link.publish(topic, payload, retain=True) if link is not None
                else self.agent.publish(topic, payload, retain=True))
        if sent is not None:   # else on_connected publishes it when the broker is back
            sent.add_done_callback(_publish_done)

    def _publish_result(self, doc: dict[str, Any]) -> None:
        doc = {"v": 1, "site": self.agent.config.site_id, "at": round(time.time(), 3), **doc}
        payload = json.dumps(doc, separators=(",", ":"), default=str).encode()
        sent = self.agent.publish(self._topics().command_result, payload)
        if sent is None:
            log.warning("command result not published: not connected to the broker")
            return
        sent.add_done_callback(_publish_done)

    # -- helpers -------------------------------------------------------------------------------

    def _read_local(self, local_cfg: AgentConfig) -> LocalBasis:
        path = self.agent.config_path
        if path:
            try:
                return LocalBasis.read(path)
            except ConfigError as exc:
                log.error("cannot read the local config for remote management: %s", exc)
        return LocalBasis.of(local_cfg)

    def _run_local(self, local_cfg: AgentConfig) -> None:
        text = self.local.text if self.local else ""
        self.running = {"source": "local", "sha256": sha256_hex(text.encode()) if text else None,
                        "applied_at": time.time()}
        self.running_text = text

    def _load_active(self) -> tuple[AgentConfig, str] | None:
        """The pushed config in effect, re-validated against today's local file; None if unusable
        (the state then records that the local file took over)."""
        assert self.store is not None and self.state.active is not None and self.local is not None
        active = self.state.active
        text = self.store.read_config(active.get("file"))
        try:
            if text is None:
                raise ConfigError([f"{active.get('file')}: missing from the state directory"])
            if active.get("sha256") and sha256_hex(text.encode()) != active["sha256"]:
                raise ConfigError(
                    [f"{active.get('file')}: content does not match its recorded hash"])
            return load_effective(text, self.local, source=f"pushed v{active.get('version')}"), text
        except ConfigError as exc:
            log.error("pushed config v%s cannot be used (%s); using the local file instead",
                      active.get("version"), "; ".join(exc.problems))
            event = {"type": "local_fallback", "version": active.get("version"),
                     "detail": "the pushed config no longer validates with this site's local file",
                     "problems": exc.problems, "at": time.time()}

            def record(s: RemoteState) -> None:
                s.active = s.confirming = None
                s.last_event = event
            self.state = self.store.update(record)
            return None

    def _trusted_keys(self, cfg: AgentConfig) -> dict[str, PublicKey]:
        keys, problems = load_trusted_keys(cfg.remote.trusted_keys_dir)
        for p in problems:
            self._log_once(f"key:{p}", "trusted key ignored: %s", p)
        return keys

    async def _persist_command(self, command_id: str, not_after: float, now: float) -> None:
        """Written before the command runs: a restart must not reopen it to a replay."""
        if self.store is None:
            return
        try:
            await self._update(lambda s: s.remember_command(command_id, not_after, now))
        except OSError as exc:
            # The command still runs; only a replay after a restart would get through.
            self._log_once("cmd:persist", "cannot record remote command %s in %s (%s); it is "
                           "remembered until the agent restarts", command_id, self.store.path, exc)

    async def _update(self, change: Callable[[RemoteState], None]) -> None:
        assert self.store is not None
        self.state = await asyncio.to_thread(self.store.update, change)

    def _log_once(self, key: str, msg: str, *args: Any) -> None:
        now = time.monotonic()
        last = self._logged.get(key)
        level = logging.WARNING if last is None or now - last > LOG_REPEAT_S else logging.DEBUG
        if level == logging.WARNING:
            self._logged[key] = now
        log.log(level, msg, *args)

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s failed", task.get_name(), exc_info=task.exception())


def _public(meta: dict[str, Any] | None) -> dict[str, Any] | None:
    """A config's meta without local file names."""
    if meta is None:
        return None
    return {k: v for k, v in meta.items() if k != "file"}


def _publish_done(fut: asyncio.Future[None]) -> None:
    if not fut.cancelled() and fut.exception() is not None:
        log.debug("remote management publish not acknowledged: %s", fut.exception())
