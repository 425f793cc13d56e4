"""Moves readings from the durable store to the broker: live first, backlog behind, nothing lost.

Per connection:

* readings committed before the connection came up are the *backlog* (``seq <= live_floor``;
  on the agent's first connection, its polls of the last ``FRESH_S`` are live, as
  agent.publish.freshness explains): they go out oldest first on the ``backlog`` topic, in
  large batches, within the backlog bandwidth budget and a small in-flight window, so they
  never starve live data or the clinic's link;
* readings committed since are *live*: sent as soon as they are committed, ahead of the backlog;
* a batch is deleted from the store only on PUBACK. When the connection drops, whatever was in
  flight is still in the store and becomes backlog of the next connection.
* with ``buffer.release = "central"`` a PUBACK only marks a batch sent: it stays in the store
  until the central ingest's retained ack (``PREFIX/SITE/ack``, subscribed on each connection)
  covers it, and what stays unacknowledged past ``buffer.central_ack_timeout_s`` goes out again
  on the backlog lane, within its budget (agent.publish.central_ack).
* a batch the broker refuses (MQTT 5 reason code) is split in halves until the culprit is a single
  reading, which is set aside (deleted, counted in ``rejected_total``, logged): it never blocks the
  queue or loops.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agent.config import AgentConfig
from agent.errors import PublishError
from agent.publish.budget import Budget, DrainBudget
from agent.publish.central_ack import CentralRelease
from agent.publish.freshness import Freshness
from agent.publish.mqtt_link import ConnectFailed, LinkLost, MqttLink, PublishRefused, Will
from agent.publish.reconnect import PROBE_TIMEOUT_S, ReconnectPolicy
from agent.readings import StoredReading
from agent.runtime.supervisor import Heartbeat
from agent.status import LinkStatus
from agent.store.outbox import AsyncStore

if TYPE_CHECKING:
    from agent.runtime.writer import StoreWriter
from agent.publish.topics import Topics
from agent.publish.wire import Encoded, WireError, decode_ack, encode_batch

log = logging.getLogger(__name__)

LIVE_WINDOW = 8          # live messages in flight at once
BACKLOG_WINDOW = 4       # backlog messages in flight at once: keeps the socket queue short
BACKLOG_BATCH_FACTOR = 4  # backlog batches are this many times larger than live ones
NOT_AUTHORIZED = 0x87     # MQTT 5 reason code: the broker's ACL refuses the topic
INCOMING_OVERHEAD = 4096   # topic, properties and envelope around the largest push accepted
# The backlog waits this long at most for the SUBACKs of the budget topics, after which the
# broker has sent their retained budgets: a clinic never drains unpaced before it knows them.
BUDGET_WAIT_S = 2.0
EVENTS_BATCH = 50         # events per message (a message per event would do; they are rare)


class TokenBucket:
    """Bytes per second with a one-second burst; rate 0 means unlimited."""

    def __init__(self, bytes_per_s: float) -> None:
        self.rate = bytes_per_s
        self.tokens = bytes_per_s
        self.stamp = time.monotonic()

    def delay(self, size: int) -> float:
        """Seconds until ``size`` bytes may go (0: now)."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic()
        self.tokens = min(self.rate, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        # A batch larger than the burst may go once the bucket is full, then leaves it in debt.
        need = min(size, self.rate)
        return 0.0 if self.tokens >= need else (need - self.tokens) / self.rate

    def take(self, size: int) -> None:
        if self.rate > 0:
            self.tokens -= size

    def set_rate(self, bytes_per_s: float) -> None:
        """A new rate from now on (the centre's budget changed); the burst shrinks with it."""
        if bytes_per_s == self.rate:
            return
        self.delay(0)                      # account the time at the old rate
        self.rate = bytes_per_s
        self.tokens = min(self.tokens, bytes_per_s)


@dataclass
class _Flight:
    encoded: Encoded | None   # None for a heartbeat
    lane: str                 # "live", "backlog" or "ping"
    future: asyncio.Future[None]
    sent_at: float
    resend: _ResendRequest | None = None
    event_ids: tuple[int, ...] = ()     # lane "events"
    summary_day: str = ""               # lane "summary"


@dataclass
class _Resend:
    """A refused batch to send again in smaller pieces."""

    lo: int
    hi: int
    limit: int


@dataclass(frozen=True)
class ResendResult:
    first_seq: int
    last_seq: int
    resent: int          # readings found in the buffer and acknowledged by the broker
    not_in_buffer: int   # already acknowledged (deleted) or dropped before the request


@dataclass
class _ResendRequest:
    """A remote ``resend``: buffered readings sent again on the backlog lane, within its budget."""

    first: int
    last: int
    cursor: int                      # last seq handed to the broker
    future: asyncio.Future[ResendResult]
    in_flight: int = 0
    resent: int = 0
    done_fetching: bool = False


class Forwarder:
    """Runs forever: connect (with backoff, failing over between brokers), drain, repeat."""

    def __init__(self, cfg: AgentConfig, store: AsyncStore, writer: StoreWriter, *,
                 boot_id: str,
                 on_connected: Callable[[MqttLink], Awaitable[None]] | None = None,
                 reconnect: ReconnectPolicy | None = None) -> None:
        self.cfg = cfg
        self.store = store          # read only: every change goes through the writer
        self.writer = writer
        self.boot_id = boot_id
        self.topics = Topics(cfg.mqtt.topic_prefix, cfg.site_id)
        self.state = LinkStatus()   # mutated here; others get a copy (link_status)
        self.new_data = asyncio.Event()
        self.on_connected = on_connected
        self.link: MqttLink | None = None
        self._units: dict[str, dict[str, str]] = {}
        self._units_dirty = False
        self._broker_index = 0
        self._resends: list[_ResendRequest] = []
        self._events_dirty = True
        self._refused_topics: set[str] = set()
        # When to try the broker again (agent.publish.reconnect); a fleet simulator may pass
        # one with a seeded random generator.
        self.reconnect = reconnect or ReconnectPolicy(cap_s=cfg.mqtt.reconnect_max_s)
        self._attempted = False
        self._heartbeat = Heartbeat()
        self._fresh: Freshness | None = Freshness(store.last_seq)   # until the first connection
        # Release on the central ack: what was sent and awaits it (None: release on PUBACK).
        self.central: CentralRelease | None = None
        if cfg.buffer.release == "central":
            self.central = CentralRelease(timeout_s=cfg.buffer.central_ack_timeout_s)
        self._released_to_writer = 0
        self._bad_acks = 0
        self.budget = DrainBudget()     # the centre's backlog budget (agent.publish.budget)

    def notify(self) -> None:
        """The writer calls this after a commit: live data is waiting."""
        if self._fresh is not None:
            self._fresh.committed(self.store.last_seq)
        self.new_data.set()

    def notify_events(self) -> None:
        """The writer decided events: they go out first, and the active set changed."""
        self._events_dirty = True
        self.new_data.set()

    def request_resend(self, first_seq: int, last_seq: int) -> asyncio.Future[ResendResult]:
        """Send buffered readings ``first_seq..last_seq`` again, on the backlog lane and within
        its bandwidth budget (a remote resend must not starve telemedicine either)."""
        fut: asyncio.Future[ResendResult] = asyncio.get_running_loop().create_future()
        self._resends.append(_ResendRequest(first_seq, last_seq, first_seq - 1, fut))
        self.new_data.set()
        return fut

    def held_for_central(self) -> list[tuple[int, int]] | None:
        """Seq ranges sent and awaiting (or released by) the central ack; None in broker mode.
        ``buffer.depth`` leaves them out: it counts readings not yet sent (docs/mqtt.md)."""
        return self.central.held_ranges() if self.central is not None else None

    def stall_limit_s(self) -> float:
        """Longest the forwarder may go without a heartbeat before it counts as hung."""
        mqtt_cfg = self.cfg.mqtt
        return 2 * (mqtt_cfg.connect_timeout_s + 2) + mqtt_cfg.keepalive_s + 30

    # -- connection loop -----------------------------------------------------------------------

    async def run(self, heartbeat: Heartbeat | None = None) -> None:
        """Connect, drain, repeat, until cancelled. Under the supervisor, ``heartbeat`` proves
        progress; an exception ends this run (the supervisor starts a new one)."""
        self._heartbeat = heartbeat or Heartbeat()
        while True:
            link = await self._connect_with_backoff()
            try:
                await self._session(link)
            except asyncio.CancelledError:
                await link.close(final=(self.topics.status, self._status_payload("offline")))
                raise
            except BaseException:
                await link.close()   # never leave paho running under a dead forwarder
                self._fail_resends("the forwarder failed")
                raise
            finally:
                self.state.connected = False
                self.link = None
            self._fail_resends("the connection to the broker was lost")
            self.reconnect.lost(time.monotonic(), link.connected_at)
            log.warning("broker %s: %s; readings stay in the buffer until it is back",
                        self.state.broker, link.lost_reason or "connection closed")
            await link.close()

    # Reconnection is a plain loop around MqttLink (as aiomqtt advises) over a pure schedule
    # (agent.publish.reconnect) rather than tenacity: tenacity's waits can neither be ended
    # early by the reachability probe nor count attempts over a sliding window; and not importing
    # it saves 0.7 MiB of RSS on the clinic PC (measured: RSS before and after `import tenacity`).
    async def _connect_with_backoff(self) -> MqttLink:
        failures = 0
        while True:
            if self._attempted:       # the very first attempt of the agent goes at once
                await self._wait_before_attempt()
            self._attempted = True
            try:
                link = await self._connect_once()
            except PublishError as exc:
                where = exc.where if isinstance(exc, ConnectFailed) else "broker"
                self.reconnect.failed(time.monotonic(), where)
                failures += 1
                # Logged at warning once, then at debug, so a long outage does not flood the
                # journal.
                level = logging.WARNING if failures == 1 else logging.DEBUG
                log.log(level, "cannot reach the broker (%s); retrying with backoff (attempt %d)",
                        exc, failures)
                continue
            self.reconnect.connected(time.monotonic())
            return link

    async def _wait_before_attempt(self) -> None:
        """The jittered backoff, ended early by a probe that sees the broker's port come back,
        then however long the rate floor asks."""
        policy = self.reconnect
        deadline = time.monotonic() + policy.backoff_s()
        while (left := deadline - time.monotonic()) > 0:
            await self._heartbeat.sleep(min(left, policy.probe_interval_s()))
            if time.monotonic() >= deadline:
                break
            if policy.probed(await self._probe_brokers()):
                log.debug("broker port reachable again; connecting")
                await self._heartbeat.sleep(policy.connect_jitter_s())
                break
        wait = policy.rate_wait_s(time.monotonic())
        if wait > 0:
            log.info("%d connections to the broker in the last minute; waiting %.0f s before "
                     "the next", policy.reached_in_window(time.monotonic()), wait)
            await self._heartbeat.sleep(wait)

    async def _probe_brokers(self) -> bool:
        """A plain TCP connect to each configured broker (no TLS, no MQTT): True if one
        accepted; the next attempt then goes to the first that did."""
        brokers = self.cfg.mqtt.brokers
        order = [(self._broker_index + i) % len(brokers) for i in range(len(brokers))]
        results = await asyncio.gather(*(_tcp_probe(brokers[i].host, brokers[i].port)
                                         for i in order))
        for i, ok in zip(order, results, strict=True):
            if ok:
                self._broker_index = i
                return True
        return False

    async def _connect_once(self) -> MqttLink:
        brokers = self.cfg.mqtt.brokers
        broker = brokers[self._broker_index % len(brokers)]
        will = Will(self.topics.status, self._status_payload("offline", lost=True))
        self.state.broker = f"{broker.host}:{broker.port}"
        self.state.attempts += 1
        try:
            link = MqttLink(self.cfg.mqtt, broker, will=will,
                            max_inflight=LIVE_WINDOW + BACKLOG_WINDOW + 4,
                            max_incoming=self.cfg.remote.max_push_bytes + INCOMING_OVERHEAD)
            await link.connect()
        except PublishError as exc:
            self._record_error(exc)
            self._broker_index += 1   # fail over to the next broker in the list
            raise
        except OSError as exc:   # TLS files unreadable etc.
            failed = ConnectFailed.from_os_error(exc)
            self._record_error(failed)
            self._broker_index += 1
            raise failed from exc
        self.state.connected = True
        self.state.since = time.time()
        self.state.connects += 1
        self.state.last_error = ""
        self.state.last_error_code = None
        log.info("connected to broker %s", self.state.broker)
        return link

    def _record_error(self, exc: PublishError) -> None:
        self.state.last_error = str(exc)
        code = getattr(exc, "code_text", None)
        self.state.last_error_code = code.to_doc() if code is not None else None

    def _status_payload(self, state: str, *, lost: bool = False) -> bytes:
        from agent import __version__
        doc: dict[str, Any] = {"state": state, "boot": self.boot_id, "version": __version__}
        if not lost:
            doc["ts"] = round(time.time(), 3)
        return json.dumps(doc, separators=(",", ":")).encode()

    # -- one connection ------------------------------------------------------------------------

    async def _session(self, link: MqttLink) -> None:
        self.link = link
        link.publish(self.topics.status, self._status_payload("online"), retain=True)
        if self.central is not None:
            # Retained: the latest ack arrives at once, then each new one.
            link.subscribe(self.topics.ack, self._on_central_ack)
        if self.on_connected is not None:
            await self.on_connected(link)
        self._units_dirty = bool(self._units)
        # Acknowledged rows still waiting in the writer would otherwise be sent again as backlog.
        await self.writer.flush()
        # What waited for the broker is backlog; the agent's first polls, made while it was
        # connecting for the first time, are live.
        live_floor = self.store.last_seq
        if self._fresh is not None:
            live_floor, self._fresh = self._fresh.live_floor(live_floor), None
        live_cursor = live_floor
        backlog_cursor = 0
        self.state.live_floor = live_floor
        bucket = TokenBucket(self.cfg.buffer.backlog_kbps * 1000 / 8)
        compress = self.cfg.buffer.compression == "zlib"
        live_batch = self.cfg.mqtt.batch_max_readings
        backlog_batch = live_batch * BACKLOG_BATCH_FACTOR
        flights: list[_Flight] = []
        resends: list[_Resend] = []
        held_backlog: list[StoredReading] | None = None   # fetched, waiting for the budget
        held_encoded: Encoded | None = None
        ack_event = asyncio.Event()
        # The broker sends the retained budgets again on each subscription: none now means none.
        self.budget = DrainBudget(rejected=self.budget.rejected)
        budget_subs = [link.subscribe(self.topics.budget, self._on_budget),
                       link.subscribe(self.topics.fleet_budget, self._on_budget)]
        for sub in budget_subs:
            sub.add_done_callback(lambda _f: ack_event.set())
        budget_deadline = time.monotonic() + BUDGET_WAIT_S
        budget_known = False
        live_more = True     # look once at the start; afterwards only when polls stored more
        # raised when readings sent live are overdue for the central ack
        backlog_limit = live_floor
        overdue_check_at = 0.0

        self._events_dirty = True           # whatever waits, and the active set, at once
        events_sent: set[int] = set()       # this connection's, until the writer records acks
        while not link.lost.is_set():
            self._heartbeat.beat()
            await self._settle(flights, resends, ack_event)
            if link.lost.is_set() or self._link_silent(link, flights):
                break
            progressed = False
            if self._events_dirty and self.store.events_enabled:
                self._events_dirty = False
                await self._send_events(link, flights, events_sent, ack_event)
            live_n = sum(1 for f in flights if f.lane == "live")
            back_n = sum(1 for f in flights if f.lane == "backlog")

            if resends and live_n < LIVE_WINDOW:
                r = resends.pop(0)
                rows = await self.store.fetch(r.lo - 1, r.limit, r.hi)
                if rows:
                    if rows[-1].seq < r.hi:
                        resends.insert(0, _Resend(rows[-1].seq + 1, r.hi, r.limit))
                    flights.extend(await self._send(link, rows, "backlog", compress, ack_event))
                    progressed = True
            elif live_n < LIVE_WINDOW and (live_more or self.new_data.is_set()):
                self.new_data.clear()
                rows = await self.store.fetch(live_cursor, live_batch)
                live_more = len(rows) == live_batch     # a full batch: there may be more
                if rows:
                    live_cursor = rows[-1].seq
                    flights.extend(await self._send(link, rows, "live", compress, ack_event))
                    progressed = True

            if not budget_known:
                budget_known = (all(f.done() for f in budget_subs)
                                or time.monotonic() >= budget_deadline)
            bucket.set_rate(self._backlog_bytes_per_s())
            # Until the budgets are known, live readings and events only.
            if budget_known and not progressed and back_n < BACKLOG_WINDOW and self._resends:
                wait = await self._send_resend(link, bucket, compress, backlog_batch, ack_event,
                                               flights)
                if wait > 0:
                    await self._idle(link, ack_event, min(wait, 1.0))
                    continue
                progressed = wait == 0
            if self.central is not None and time.monotonic() >= overdue_check_at:
                overdue_check_at = time.monotonic() + 1.0
                for lo, hi in self.central.overdue(time.monotonic()):
                    backlog_cursor = min(backlog_cursor, lo - 1)
                    backlog_limit = max(backlog_limit, hi)
                    held_backlog = held_encoded = None   # fetched again from the new cursor
            if self.central is not None and held_backlog is None:
                backlog_cursor = self.central.skip(backlog_cursor)
            if (budget_known and not progressed and back_n < BACKLOG_WINDOW
                    and backlog_cursor < backlog_limit):
                if held_backlog is None:
                    upto = backlog_limit
                    if self.central is not None:
                        # Stop below readings sent and awaiting the central ack.
                        nxt = self.central.next_held_lo(backlog_cursor)
                        upto = min(upto, nxt - 1) if nxt is not None else upto
                    rows = await self.store.fetch(backlog_cursor, backlog_batch, upto)
                    if rows:
                        held_backlog, held_encoded = rows, self._encode(rows, compress)
                    else:
                        backlog_cursor = upto
                if held_backlog is not None and held_encoded is not None:
                    size = len(held_encoded.payload) + len(self.topics.backlog)
                    wait = bucket.delay(size)
                    if wait == 0:
                        bucket.take(size)
                        backlog_cursor = held_backlog[-1].seq
                        flights.extend(await self._send(link, held_backlog, "backlog", compress,
                                                        ack_event, encoded=held_encoded))
                        held_backlog = held_encoded = None
                        progressed = True
                    else:
                        await self._idle(link, ack_event, min(wait, 1.0))
                        continue
            self.state.backlog_cursor = backlog_cursor
            if self._units_dirty:
                self._publish_units(link)
            if not progressed:
                # Woken at once by new data, an ack or a lost link; the timeout only paces the
                # silent-link check, so it can be long: an idle agent then costs next to no CPU.
                timeout = self._idle_timeout()
                if not budget_known:
                    timeout = min(timeout, max(budget_deadline - time.monotonic(), 0.01))
                await self._idle(link, ack_event, timeout)
        # Connection lost: let failures settle so nothing is counted twice.
        await self._settle(flights, resends, ack_event)

    def _backlog_bytes_per_s(self) -> float:
        kbps = self.budget.kbps(self.cfg.buffer.backlog_kbps)
        self.state.backlog_kbps = kbps
        return kbps * 1000 / 8

    def _on_budget(self, topic: str, payload: bytes) -> None:
        """A retained budget from the centre (called in the event loop by the link)."""
        before = self.budget.kbps(self.cfg.buffer.backlog_kbps)
        problem = self.budget.receive(payload, topic, site_topic=topic == self.topics.budget)
        if problem is not None:
            # Logged at warning once, then at debug: a bad retained budget comes on each connect.
            level = logging.WARNING if self.budget.rejected == 1 else logging.DEBUG
            log.log(level, "%s [%s]", problem, problem.id)
            return
        after = self.budget.kbps(self.cfg.buffer.backlog_kbps)
        if after != before:
            log.info("backlog drain limit now %s (own buffer.backlog_kbps %g, site budget %s, "
                     "fleet budget %s)", f"{after:g} kbit/s" if after else "none",
                     self.cfg.buffer.backlog_kbps, _kbps_text(self.budget.site),
                     _kbps_text(self.budget.fleet))
        self.new_data.set()

    def _idle_timeout(self) -> float:
        timeout = self.cfg.mqtt.keepalive_s / 4
        if self.central is not None and self.central.held_count():
            # Wake in time to send again what the centre has not acknowledged.
            timeout = min(timeout, max(self.central.current_timeout() / 4, 1.0))
        return timeout

    # -- release on the central ack --------------------------------------------------------------

    def _on_central_ack(self, topic: str, payload: bytes) -> None:
        """A retained ack from the central ingest (called in the event loop by the link)."""
        assert self.central is not None
        try:
            seq = decode_ack(payload)
        except WireError as exc:
            self._bad_acks += 1
            level = logging.WARNING if self._bad_acks == 1 else logging.DEBUG
            log.log(level, "ignored a message on %s that is not a central ack (%s)", topic, exc)
            return
        self._release(self.central.on_ack(seq, self.store.last_seq))

    def _release(self, upto: int) -> None:
        """Delete up to ``upto`` with the writer's next transaction (a range the store deletes
        by primary key: everything below was released before, or was never this buffer's)."""
        if upto > self._released_to_writer:
            self.writer.ack([(self._released_to_writer + 1, upto)])
            self._released_to_writer = upto

    def _link_silent(self, link: MqttLink, flights: list[_Flight]) -> bool:
        """Detect a link that silently stopped (no RST: packets just vanish, the usual WAN failure).

        Something is always waiting for an answer: the readings in flight, or a heartbeat sent
        after half a keep-alive period without one. If that answer is a whole keep-alive period
        late, the link is dead: found within about 1.5 keep-alive periods of the last answer,
        sooner than paho's own check (two periods).
        """
        keepalive = self.cfg.mqtt.keepalive_s
        now = time.monotonic()
        waiting = [f for f in flights if not f.future.done()]
        if waiting and now - min(f.sent_at for f in waiting) > keepalive:
            link.declare_lost(f"no answer from the broker for {keepalive}s: the link went silent")
            return True
        if not waiting and now - link.last_ack_monotonic > keepalive / 2:
            fut = link.publish(self.topics.status, self._status_payload("online"), retain=True)
            flights.append(_Flight(None, "ping", fut, now))
            link.last_ack_monotonic = now   # one heartbeat per half period
        return False

    async def _idle(self, link: MqttLink, ack_event: asyncio.Event, timeout: float) -> None:
        waiters = [asyncio.ensure_future(e.wait()) for e in (self.new_data, ack_event, link.lost)]
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()

    def _encode(self, rows: list[StoredReading], compress: bool) -> Encoded:
        return encode_batch(rows, site=self.cfg.site_id, boot=self.boot_id, compress=compress)

    def _max_payload(self, link: MqttLink, topic: str) -> int:
        """Largest payload the broker takes: our own limit, and MQTT 5's Maximum Packet Size."""
        limit = self.cfg.mqtt.max_payload_bytes
        if link.max_packet_size:
            limit = min(limit, link.max_packet_size - len(topic) - 64)   # 64: header, properties
        return max(limit, 256)

    async def _send(self, link: MqttLink, rows: list[StoredReading], lane: str, compress: bool,
                    ack_event: asyncio.Event, *, encoded: Encoded | None = None) -> list[_Flight]:
        """Publish ``rows``, split into as many messages as the broker's size limit needs."""
        self._learn_units(rows)
        topic = self.topics.readings if lane == "live" else self.topics.backlog
        encoded = encoded or self._encode(rows, compress)
        if len(encoded.payload) > self._max_payload(link, topic):
            if len(rows) == 1:
                # One reading larger than the broker accepts (a huge string value): set it
                # aside rather than block the queue behind it forever.
                await self._set_aside(encoded, "larger than the broker's maximum message size")
                return []
            half = len(rows) // 2
            return (await self._send(link, rows[:half], lane, compress, ack_event)
                    + await self._send(link, rows[half:], lane, compress, ack_event))
        fut = link.publish(topic, encoded.payload, content_type=encoded.content_type)
        fut.add_done_callback(lambda _f: ack_event.set())
        self.state.sent_bytes += len(encoded.payload) + len(topic)
        return [_Flight(encoded, lane, fut, time.monotonic())]

    async def _set_aside(self, encoded: Encoded, why: str) -> None:
        self.state.rejected_total += encoded.count
        log.error("reading(s) seq %s set aside: %s (%d set aside in total; kept in the buffer's "
                  "rejected table)", _ranges_text(encoded.ranges), why, self.state.rejected_total)
        await self.writer.set_aside(encoded.ranges, why)

    async def _settle(self, flights: list[_Flight], resends: list[_Resend],
                      ack_event: asyncio.Event) -> None:
        """Apply finished publishes: ack to the store, split refused batches, drop lost ones."""
        ack_event.clear()
        done = [f for f in flights if f.future.done()]
        if not done:
            return
        acked: list[tuple[int, int]] = []
        for f in done:
            flights.remove(f)
            exc = f.future.exception()
            if f.lane in ("events", "summary"):
                if exc is None:
                    self.writer.ack_events(list(f.event_ids),
                                           [f.summary_day] if f.summary_day else [])
                elif not isinstance(exc, LinkLost):
                    log.error("the broker refused events %s: %s", f.event_ids or f.summary_day,
                              exc)
                continue
            if f.encoded is None:
                continue   # heartbeat
            if f.resend is not None:
                f.resend.in_flight -= 1
                if exc is None:
                    f.resend.resent += f.encoded.count
                self._finish_resend(f.resend)
            if exc is None:
                if self.central is not None:
                    self._release(self.central.sent(f.encoded.ranges, time.monotonic()))
                else:
                    acked.extend(f.encoded.ranges)
                self.state.sent_readings += f.encoded.count
                self.state.last_ack = time.time()
            elif isinstance(exc, PublishRefused):
                await self._handle_refused(f, exc, resends)
            elif not isinstance(exc, LinkLost):
                log.error("unexpected publish failure: %r", exc)
        if acked:
            self.writer.ack(acked)

    # -- events: ahead of live readings and the backlog ----------------------------------------

    async def _send_events(self, link: MqttLink, flights: list[_Flight], sent: set[int],
                           ack_event: asyncio.Event) -> None:
        from agent.events.wire import encode_active, encode_events, encode_summary
        site = self.cfg.site_id
        while self.topics.events not in self._refused_topics:
            events = [e for e in await self.store.unsent_events(EVENTS_BATCH) if e.id not in sent]
            if not events:
                break
            fut = link.publish(self.topics.events, encode_events(events, site=site,
                                                                 boot=self.boot_id))
            fut.add_done_callback(lambda _f: ack_event.set())
            fut.add_done_callback(self._refusal_watch(self.topics.events))
            ids = tuple(e.id for e in events)
            sent.update(ids)
            flights.append(_Flight(None, "events", fut, time.monotonic(), event_ids=ids))
        # The active set, retained: a dashboard that connects later sees what is on now.
        active = encode_active(self.store.active_events(), site=site, ts=time.time())
        self._publish_optional(link, self.topics.events_active, active, retain=True)
        if self.topics.summary in self._refused_topics:
            return
        for doc in await self.store.unsent_summaries():
            fut = link.publish(self.topics.summary, encode_summary(doc))
            fut.add_done_callback(self._refusal_watch(self.topics.summary))
            fut.add_done_callback(lambda _f: ack_event.set())
            flights.append(_Flight(None, "summary", fut, time.monotonic(),
                                   summary_day=str(doc.get("day", ""))))

    def _publish_optional(self, link: MqttLink, topic: str, payload: bytes, *,
                          retain: bool = False) -> None:
        """Publish on a topic the central broker's ACL may not allow yet (an older ACL): once
        refused as not authorized, it is left alone until the agent restarts, because
        Mosquitto drops the connection after each refusal and readings would stop too."""
        if topic in self._refused_topics:
            return
        link.publish(topic, payload, retain=retain).add_done_callback(self._refusal_watch(topic))

    def _refusal_watch(self, topic: str) -> Callable[[asyncio.Future[None]], None]:
        def watch(fut: asyncio.Future[None]) -> None:
            exc = None if fut.cancelled() else fut.exception()
            if isinstance(exc, PublishRefused) and exc.code == NOT_AUTHORIZED:
                if topic not in self._refused_topics:
                    log.error("the broker does not let this site publish on %s (not authorized): "
                              "its ACL needs the lines of conf/mosquitto-acl.example; that topic "
                              "is left alone until the agent restarts", topic)
                self._refused_topics.add(topic)
        return watch

    # -- remote resends --------------------------------------------------------------------------

    async def _send_resend(self, link: MqttLink, bucket: TokenBucket, compress: bool, batch: int,
                           ack_event: asyncio.Event, flights: list[_Flight]) -> float:
        """Send the next piece of the oldest resend request. Returns 0 if something was sent,
        the seconds to wait for the budget, or -1 if there was nothing to send."""
        req = self._resends[0]
        if req.done_fetching:
            return -1.0
        rows = await self.store.fetch(req.cursor, batch, req.last)
        if not rows:
            req.done_fetching = True
            self._finish_resend(req)
            return -1.0
        encoded = self._encode(rows, compress)
        size = len(encoded.payload) + len(self.topics.backlog)
        wait = bucket.delay(size)
        if wait > 0:
            return wait
        bucket.take(size)
        req.cursor = rows[-1].seq
        sent = await self._send(link, rows, "backlog", compress, ack_event, encoded=encoded)
        for f in sent:
            f.resend = req
        req.in_flight += len(sent)
        flights.extend(sent)
        return 0.0

    def _finish_resend(self, req: _ResendRequest) -> None:
        if not (req.done_fetching and req.in_flight == 0):
            return
        if req in self._resends:
            self._resends.remove(req)
        if not req.future.done():
            requested = req.last - req.first + 1
            req.future.set_result(ResendResult(req.first, req.last, req.resent,
                                               requested - req.resent))

    def _fail_resends(self, why: str) -> None:
        for req in self._resends:
            if not req.future.done():
                req.future.set_exception(LinkLost(f"{why} during the resend ({req.resent} "
                                                  f"readings resent)"))
        self._resends.clear()

    async def _handle_refused(self, f: _Flight, exc: PublishRefused,
                              resends: list[_Resend]) -> None:
        assert f.encoded is not None   # the caller skips heartbeats
        lo, hi = f.encoded.ranges[0][0], f.encoded.ranges[-1][1]
        if f.encoded.count > 1:
            half = max(f.encoded.count // 2, 1)
            log.warning("broker refused a batch of %d readings (%s); sending it again in smaller "
                        "batches", f.encoded.count, exc)
            resends.append(_Resend(lo, hi, half))
            return
        await self._set_aside(f.encoded, f"refused by the broker: {exc}")

    # -- units (retained meta topic) -----------------------------------------------------------

    def _learn_units(self, rows: list[StoredReading]) -> None:
        for r in rows:
            if r.unit:
                dev = self._units.setdefault(r.device, {})
                if dev.get(r.metric) != r.unit:
                    dev[r.metric] = r.unit
                    self._units_dirty = True

    def _publish_units(self, link: MqttLink) -> None:
        self._units_dirty = False
        payload = json.dumps({"v": 1, "units": self._units}, separators=(",", ":"),
                             sort_keys=True).encode()
        link.publish(self.topics.meta, payload, retain=True)


async def _tcp_probe(host: str, port: int) -> bool:
    """Whether ``host:port`` accepts a TCP connection within ``PROBE_TIMEOUT_S``."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), PROBE_TIMEOUT_S)
    except (OSError, TimeoutError):
        return False
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass
    return True


def _kbps_text(budget: Budget | None) -> str:
    return f"{budget.kbps:g} kbit/s" if budget is not None else "none"


def _ranges_text(ranges: Iterable[tuple[int, int]]) -> str:
    return ", ".join(f"{lo}" if lo == hi else f"{lo}-{hi}" for lo, hi in ranges)
