"""``clinic-central ingest``: the session, the batch loop and the housekeeping loop, wired.

    broker ──(shared subscription, manual PUBACK)──> inbox ──> batch loop: prepare
                                                            ──(one batch ahead)──> store loop:
                                                  VictoriaMetrics ─> PostgreSQL ─> PUBACK
    housekeeping, every ack_interval_s:
        confirm VictoriaMetrics flushed ─> record "flushed_at" for this process
        if this process holds the acker lock: final gaps, then the retained ack of each site whose
        stored seqs moved, once every live ingest's flushed_at is past the snapshot.

Threads rather than asyncio: paho, psycopg and httpx are all used in their blocking form, each from
one thread with its own connection, and the batch loop is CPU-bound anyway. The batch loop decodes
and formats the next batch while the store loop waits for VictoriaMetrics and PostgreSQL with the
previous one (VictoriaMetrics parses it on the other core): at most one prepared batch waits, and a
message is acknowledged only after its batch is in both stores, as before.
"""

from __future__ import annotations

import functools
import logging
import queue
import signal
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from agent.publish.topics import Topics
from agent.publish.wire import encode_ack
from central import pg, seqranges
from central.config import CentralConfig
from central.mqtt_in import IngestSession
from central.pipeline import Inbound, Pipeline, Prepared
from central.vm import StoreUnavailable, VictoriaMetrics

log = logging.getLogger(__name__)
T = TypeVar("T")
STALE_FACTOR = 5     # an ingest whose stats are older than this many ack intervals is gone


class Ingest:
    def __init__(self, cfg: CentralConfig) -> None:
        self.cfg = cfg
        self.stop_event = threading.Event()
        self.started = time.time()
        self.session = IngestSession(cfg.mqtt)
        self.vm = VictoriaMetrics(cfg.vm_url)
        self.conn = self._connect_pg()          # the store loop's: commits
        pg.migrate(self.conn)
        self.lookup = self._connect_pg()        # the batch loop's: de-dup ranges, series
        self.pipeline = Pipeline(cfg, self.vm, self.conn, lookup=self.lookup)
        self._prepared: queue.Queue[tuple[list[tuple[int, Inbound]], Prepared]] = \
            queue.Queue(maxsize=1)
        self._hole_seen: dict[tuple[str, int, int], float] = {}
        self._pending_acks: tuple[Any, dict[str, int]] | None = None
        self.acks_published = 0

    def _connect_pg(self) -> Any:
        delay = 0.5
        while True:
            try:
                return pg.connect(self.cfg.pg_dsn)
            except StoreUnavailable as exc:
                if self.stop_event.is_set():
                    raise
                log.warning("%s; retrying in %.1fs", exc, delay)
                time.sleep(delay)
                delay = min(delay * 2, 10)

    # -- lifecycle ---------------------------------------------------------------------------------

    def run(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                signal.signal(sig, lambda *_: self.stop_event.set())
            except ValueError:
                pass   # not the main thread (tests): the caller sets stop_event
        log.info("ingest %s: broker %s:%d, VictoriaMetrics %s", self.cfg.ingest_id,
                 self.cfg.mqtt.host, self.cfg.mqtt.port, self.cfg.vm_url)
        house = threading.Thread(target=self._housekeeping, name="housekeeping", daemon=True)
        store = threading.Thread(target=self._store_loop, name="store", daemon=True)
        self.session.start()
        house.start()
        store.start()
        try:
            self._batch_loop()
        finally:
            self.stop_event.set()
            store.join(30)
            house.join(10)
            self.session.stop()
            self.vm.close()
            self.conn.close()
            self.lookup.close()
            log.info("ingest stopped")

    def _batch_loop(self) -> None:
        ing = self.cfg.ingest
        inbox = self.session.inbox
        while not self.stop_event.is_set():
            try:
                first = inbox.get(timeout=0.2)
            except queue.Empty:
                continue
            items = [first]
            deadline = time.monotonic() + ing.batch_max_wait_s
            budget = ing.batch_max_readings * 40      # payload bytes as a proxy for readings
            size = len(first[1].payload)
            while size < budget:
                left = deadline - time.monotonic()
                try:
                    item = inbox.get(timeout=left) if left > 0 else inbox.get_nowait()
                except queue.Empty:
                    break
                items.append(item)
                size += len(item[1].payload)
            messages = [m for _, m in items]
            prepared = self._retrying(len(items), "preparing", "lookup",
                                      functools.partial(self.pipeline.prepare, messages))
            while prepared is not None and not self.stop_event.is_set():
                try:
                    self._prepared.put((items, prepared), timeout=0.2)
                    break
                except queue.Full:
                    continue

    def _store_loop(self) -> None:
        try:
            while not self.stop_event.is_set():
                try:
                    items, prepared = self._prepared.get(timeout=0.2)
                except queue.Empty:
                    continue
                if not self._retrying(len(items), "storing", "conn",
                                      functools.partial(self._commit, prepared)):
                    continue
                try:
                    self.session.ack(items)
                except Exception:   # stored: the broker delivers it again, de-duplicated
                    log.exception("cannot acknowledge a stored batch of %d message(s)",
                                  len(items))
        except BaseException:
            # Never a silent stall (the batch loop would wait on this one for ever): stop, and
            # let systemd start the ingest again.
            log.exception("the store loop died; stopping the ingest")
            self.stop_event.set()
            raise

    def _commit(self, prepared: Prepared) -> bool:
        self.pipeline.commit(prepared)
        return True

    def _retrying(self, n: int, doing: str, conn: str, step: Callable[[], T]) -> T | None:
        """``step`` until it works; None when the ingest stops first (the batch is not
        acknowledged: the broker delivers it again after a restart). Each loop reconnects only
        its own PostgreSQL connection (``conn`` names it)."""
        delay = 0.2
        while True:
            try:
                return step()
            except StoreUnavailable as exc:
                log.warning("%s; batch of %d message(s) kept, retrying in %.1fs", exc, n, delay)
            except Exception:   # a bug must not kill the ingest silently; the batch is retried
                log.exception("unexpected error %s a batch of %d message(s)", doing, n)
            if self.stop_event.wait(delay):
                return None
            delay = min(delay * 2, 10)
            old = getattr(self, conn)
            if old.closed or old.broken:
                try:
                    new = pg.connect(self.cfg.pg_dsn)
                except StoreUnavailable as exc:
                    log.warning("%s", exc)
                    continue
                setattr(self, conn, new)
                setattr(self.pipeline, conn, new)

    # -- housekeeping ------------------------------------------------------------------------------

    def _housekeeping(self) -> None:
        conn = None
        acker = False       # this connection holds the acker lock (released when it closes)
        interval = self.cfg.ingest.ack_interval_s
        while not self.stop_event.wait(interval):
            try:
                if conn is None or conn.closed or conn.broken:
                    conn, acker = pg.connect(self.cfg.pg_dsn), False
                row = conn.execute("SELECT clock_timestamp()").fetchone()
                assert row is not None   # a SELECT without FROM has one row
                flushed = row[0]
                try:
                    self.vm.confirm_flushed()
                except StoreUnavailable as exc:
                    log.warning("%s", exc)
                    flushed = None
                pg.write_stats(conn, self.cfg.ingest_id, self.started, self._stats(), flushed)
                if not acker:
                    row = conn.execute("SELECT pg_try_advisory_lock(%s)",
                                       (pg.ACKER_LOCK,)).fetchone()
                    assert row is not None   # a SELECT without FROM has one row
                    acker = row[0]
                if acker:
                    self._acknowledge(conn)
            except Exception as exc:   # keep the loop alive; the next round retries
                log.warning("housekeeping: %s", pg._brief(exc))
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()

    def _stats(self) -> dict[str, Any]:
        s = self.pipeline.counters.snapshot()
        now, stored = time.monotonic(), s["readings_stored"]
        last = getattr(self, "_rate_mark", None)
        s["readings_per_s"] = (stored - last[1]) / (now - last[0]) \
            if last and now > last[0] else 0.0
        self._rate_mark = (now, stored)
        s["inbox"] = self.session.inbox.qsize()
        s["connected"] = self.session.connected.is_set()
        s["acks_published"] = self.acks_published
        s["at"] = time.time()
        return s

    def _acknowledge(self, conn: Any) -> None:
        """Publish the acks computed last round if every live ingest flushed since; compute new
        ones."""
        stale = self.cfg.ingest.ack_interval_s * STALE_FACTOR + 5
        if self._pending_acks is not None:
            snap, acks = self._pending_acks
            flushed = pg.flushed_before(conn, stale)
            if flushed is not None and flushed >= snap:
                done = {}
                for site, seq in acks.items():
                    topic = Topics(self.cfg.mqtt.topic_prefix, site).ack
                    if self.session.publish_retained(topic, encode_ack(seq)):
                        done[site] = seq
                pg.set_acked(conn, done)
                self.acks_published += len(done)
                self._pending_acks = None
        if self._pending_acks is None:
            snap, candidates = pg.ack_candidates(conn)
            acks = {}
            now = time.monotonic()
            for c in candidates:
                covered = c.covered
                holes = seqranges.holes(covered, c.drained_seq)
                final = []
                for lo, hi in holes:
                    first = self._hole_seen.setdefault((c.site, lo, hi), now)
                    if now - first >= self.cfg.ingest.gap_settle_s:
                        final.append((lo, hi))
                if final:
                    with conn.transaction():
                        for (lo, hi), why in pg.record_gaps(conn, c.site, final):
                            log.warning("site %s: readings %d..%d lost (%s)", c.site, lo, hi, why)
                    covered = seqranges.merge(covered + final)
                wm = seqranges.watermark(covered)
                if wm > c.acked_seq or (c.ack_due and wm > 0):
                    acks[c.site] = wm   # again when the site resends: it missed the retained ack
            if len(self._hole_seen) > 100_000:
                self._hole_seen.clear()
            if acks:
                self._pending_acks = (snap, acks)
