"""One batch of MQTT messages into both stores: decode, de-duplicate, check, write, record.

    prepare: messages ─> classify (decode strictly; set aside what is not ours, with why)
                      ─> readings not yet accounted for (seq ranges from PostgreSQL)
                      ─> checks: names, timestamps, text length, per-site series cap
                      ─> one body of Prometheus text
    commit:  body ─> VictoriaMetrics (one POST)
                  ─> PostgreSQL (one transaction: seq ranges, counters, events, status, set-aside)

The ingest prepares the next batch (on its own PostgreSQL connection, ``lookup``) while the
previous one is being committed: VictoriaMetrics parses on the other core meanwhile. A reading in
both batches is then written to VictoriaMetrics twice (its de-duplication keeps one) and counted
once: ``pg.commit_batch`` decides what is new under the sites' row locks, as it does for several
ingest processes.

The caller acknowledges the messages to the broker only after ``process`` returned, so a crash at
any point gets the batch delivered again: PostgreSQL's ranges skip what was recorded, and
VictoriaMetrics' de-duplication absorbs samples written twice in the crash window between its
write and PostgreSQL's commit. Nothing here raises for bad input; StoreUnavailable means "retry".

Series (docs/central.md): ``clinic_value{site,device,metric}`` for numbers and booleans (1/0),
``clinic_text{site,device,metric,value}`` = 1 for strings, ``clinic_null{site,device,metric}`` = 1
for a value read but not a number; each sample at the edge's poll time.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from agent.publish.topics import split_topic
from agent.publish.wire import ReadingsBatch, WireError, decode_batch, parse_document
from central import documents, pg, seqranges
from central.commands import COMMAND_LEAVES, read_output
from central.config import SITE_PATTERN, CentralConfig
from central.pg import BatchWork, SetAside
from central.vm import StoreUnavailable, VictoriaMetrics, escape_label

log = logging.getLogger(__name__)
SET_ASIDE_SAMPLE = 500        # readings kept per set-aside row (all are counted)


@dataclass(frozen=True)
class Inbound:
    topic: str
    payload: bytes
    mid: int = 0
    qos: int = 0
    retain: bool = False


@dataclass
class Counters:
    """The ingest's own figures; ``clinic-central status`` shows them from PostgreSQL."""

    messages: int = 0
    batches: int = 0
    readings_received: int = 0
    readings_stored: int = 0
    readings_duplicate: int = 0
    readings_set_aside: int = 0
    events_stored: int = 0
    events_duplicate: int = 0
    set_aside: Counter[str] = field(default_factory=Counter)   # by reason (messages and readings)
    last_batch_at: float = 0.0
    lag_s: list[float] = field(default_factory=list)   # edge poll -> stored, live lane, recent

    def snapshot(self) -> dict[str, Any]:
        lags = sorted(self.lag_s)
        return {"messages": self.messages, "batches": self.batches,
                "readings_received": self.readings_received,
                "readings_stored": self.readings_stored,
                "readings_duplicate": self.readings_duplicate,
                "readings_set_aside": self.readings_set_aside, "events_stored": self.events_stored,
                "events_duplicate": self.events_duplicate, "set_aside": dict(self.set_aside),
                "last_batch_at": self.last_batch_at,
                "lag_p50_s": lags[len(lags) // 2] if lags else None,
                "lag_max_s": lags[-1] if lags else None}


def _fmt(v: Any) -> str:
    if v is True:
        return "1"
    if v is False:
        return "0"
    return repr(v) if type(v) is float else str(v)


@dataclass(frozen=True)
class Prepared:
    """One batch decoded and checked, its VictoriaMetrics body formatted: what ``commit``
    stores."""

    messages: int
    work: BatchWork
    body: bytes


class Pipeline:
    def __init__(self, cfg: CentralConfig, vm: VictoriaMetrics, conn: psycopg.Connection[Any], *,
                 clock: Callable[[], float] = time.time,
                 lookup: psycopg.Connection[Any] | None = None) -> None:
        self.cfg = cfg
        self.vm = vm
        self.conn = conn                                     # commits
        self.lookup = conn if lookup is None else lookup     # reads while preparing
        self.clock = clock
        self.counters = Counters()
        self._name_ok = re.compile(cfg.ingest.name_pattern).fullmatch
        self._site_ok = re.compile(SITE_PATTERN).fullmatch
        self._prefix: dict[tuple[str, str, str, str], str] = {}   # known series -> line prefix
        self._state_leaves = {"status", "meta", "config/state", "events/active", "events",
                              "summary"}

    # -- entry point -------------------------------------------------------------------------------

    def process(self, messages: list[Inbound]) -> None:
        """Store one batch in both stores (StoreUnavailable: nothing acknowledged, try again)."""
        self.commit(self.prepare(messages))

    def prepare(self, messages: list[Inbound]) -> Prepared:
        """Decode, leave out what PostgreSQL already records, check, format (StoreUnavailable:
        try again)."""
        work = BatchWork()
        batches: list[tuple[str, str, ReadingsBatch]] = []
        for m in messages:
            self._classify(m, work, batches)
        try:
            body = self._readings(work, batches) if batches else b""
        except psycopg.Error as exc:
            raise StoreUnavailable(f"PostgreSQL: {pg._brief(exc)}") from exc
        return Prepared(len(messages), work, body)

    def commit(self, batch: Prepared) -> None:
        """Write a prepared batch to both stores (StoreUnavailable: try again, the same batch)."""
        work = batch.work
        try:
            self.vm.write(batch.body)
            res = pg.commit_batch(self.conn, work)
        except psycopg.Error as exc:
            raise StoreUnavailable(f"PostgreSQL: {pg._brief(exc)}") from exc
        c = self.counters
        c.messages += batch.messages
        c.batches += 1
        c.readings_stored += res.stored
        c.readings_duplicate += res.duplicates
        c.events_stored += res.events_new
        c.events_duplicate += res.events_dup
        c.last_batch_at = self.clock()
        for a in work.set_aside:
            c.set_aside[a.reason] += 1

    # -- decoding ----------------------------------------------------------------------------------

    def _aside(self, work: BatchWork, m: Inbound, site: str | None, reason: str, detail: str,
               readings: int = 0, payload: bytes | None = None, key: str | None = None) -> None:
        if key is None:
            key = hashlib.sha256(m.topic.encode() + b"\0" + m.payload).hexdigest()[:40] \
                + ":" + reason
        work.set_aside.append(SetAside(key, site, m.topic, reason, detail, readings,
                                       m.payload if payload is None else payload))
        log.debug("set aside %s from %s: %s", reason, m.topic, detail)

    def _classify(self, m: Inbound, work: BatchWork,
                  batches: list[tuple[str, str, ReadingsBatch]]) -> None:
        parts = split_topic(m.topic, self.cfg.mqtt.topic_prefix)
        if parts is None:
            return self._aside(work, m, None, "foreign_topic", "not under the topic prefix")
        site, leaf = parts
        if not self._site_ok(site) or (self.cfg.sites is not None and site not in self.cfg.sites):
            return self._aside(work, m, None, "unknown_site",
                               f"site {site[:80]!r} is not in the inventory")
        if leaf in ("readings", "backlog"):
            try:
                b = decode_batch(m.payload, max_payload=self.cfg.ingest.max_payload_bytes,
                                 max_inflated=self.cfg.ingest.max_inflated_bytes)
            except WireError as exc:
                return self._aside(work, m, site, exc.code, exc.detail)
            if b.site != site:
                return self._aside(work, m, site, "site_mismatch",
                                   f"payload says site {b.site[:80]!r}")
            work.seen.add(site)
            batches.append((site, leaf, b))
            return None
        if leaf in COMMAND_LEAVES:
            try:
                doc = parse_document(m.payload, max_payload=self.cfg.ingest.max_payload_bytes,
                                     max_inflated=self.cfg.ingest.max_inflated_bytes)
            except WireError as exc:
                return self._aside(work, m, site, exc.code, exc.detail)
            work.command_outputs.append(read_output(site, leaf, m.payload, doc))
            work.seen.add(site)
            return None
        if leaf not in self._state_leaves:
            return None     # a topic we do not read (commands to the sites)
        if m.retain is False and not m.payload \
                and leaf in ("status", "meta", "config/state", "events/active"):
            return None     # a retained message being cleared
        try:
            doc = parse_document(m.payload, max_payload=self.cfg.ingest.max_payload_bytes,
                                 max_inflated=self.cfg.ingest.max_inflated_bytes)
            self._document(site, leaf, doc, work, m)
        except WireError as exc:
            return self._aside(work, m, site, exc.code, exc.detail)
        work.seen.add(site)
        return None

    def _document(self, site: str, leaf: str, doc: dict[str, Any], work: BatchWork,
                  m: Inbound) -> None:
        if leaf == "status":
            work.statuses[site] = documents.read_status(doc)
        elif leaf == "meta":
            work.metas[site] = documents.read_meta(doc)
        elif leaf == "config/state":
            work.configs[site] = documents.read_config_state(doc)
        elif leaf == "events/active":
            work.active[site] = documents.read_events_active(doc)
        elif leaf == "summary":
            work.summaries[(site, documents.read_summary(doc))] = doc
        elif leaf == "events":
            eb = documents.read_events(doc)
            work.events.extend((site, eb.boot, e) for e in eb.events)
            for i, why in eb.refused:
                entry = json.dumps(doc["e"][i], default=str)[:65536].encode()
                self._aside(work, m, site, "bad_event", why, payload=entry,
                            key=hashlib.sha256(m.payload).hexdigest()[:40] + f":event:{i}")

    # -- readings ----------------------------------------------------------------------------------

    def _readings(self, work: BatchWork, batches: list[tuple[str, str, ReadingsBatch]]) -> bytes:
        ing = self.cfg.ingest
        now = self.clock()
        oldest_ok = now - ing.retention_days * 86400 + 86400   # a day inside the retention
        newest_ok = now + ing.future_s
        name_ok, text_max = self._name_ok, ing.text_max_chars
        cover = pg.ranges_of(self.lookup, sorted({s for s, _, _ in batches}))
        lines: list[str] = []
        pending: list[tuple[str, tuple[str, str, str, str], Any, int, int]] = []   # new series
        aside: dict[tuple[str, str], list[tuple[int, str, str, Any, float]]] = {}
        known = self._prefix
        lags = self.counters.lag_s
        if len(lags) > 2000:
            del lags[:1000]
        for site, lane, b in batches:
            w = work.site(site)
            have = cover[site]
            got: list[tuple[int, int]] = []
            for g in b.groups:
                n = len(g.metrics)
                w.received += n
                self.counters.readings_received += n
                last = g.last_seq
                if last > w.max_seq:
                    w.max_seq = last
                    if w.boot_seq < g.seq:
                        w.boot, w.boot_seq = b.boot, g.seq
                if w.newest_ts is None or g.ts > w.newest_ts:
                    w.newest_ts = g.ts
                todo = seqranges.uncovered(g.seq, last, have)
                if not todo:
                    continue
                got.extend(todo)
                ts_ok = oldest_ok <= g.ts <= newest_ok
                ms = f" {int(round(g.ts * 1000))}\n"
                dev = g.device
                if lane == "readings":
                    lags.append(now - g.ts)
                for lo, hi in todo:
                    for k in range(lo - g.seq, hi - g.seq + 1):
                        metric, value = g.metrics[k]
                        seq = g.seq + k
                        if dev == "agent":
                            self._agent_health(w, b.boot, seq, metric, value)
                        if not ts_ok:
                            aside.setdefault((site, "timestamp_out_of_range"), []).append(
                                (seq, dev, metric, value, g.ts))
                            continue
                        if value is None:
                            key = (site, dev, metric, "n")
                        elif type(value) is str:
                            if len(value) > text_max:
                                aside.setdefault((site, "text_too_long"), []).append(
                                    (seq, dev, metric, value, g.ts))
                                continue
                            key = (site, dev, metric, "t" + value)
                        else:
                            key = (site, dev, metric, "v")
                        prefix = known.get(key)
                        if prefix is not None:
                            lines.append(prefix + ("1" if key[3][0] in "tn" else _fmt(value)) + ms)
                        elif not (name_ok(dev) and name_ok(metric)):
                            aside.setdefault((site, "bad_name"), []).append(
                                (seq, dev, metric, value, g.ts))
                        else:
                            pending.append((site, key, value, seq, int(round(g.ts * 1000))))
            if got:
                w.ranges.extend(got)
                cover[site] = seqranges.merge(have + got)   # a seq twice in one batch counts once
        if pending:
            lines.extend(self._new_series(pending, aside))
        for (site, reason), rows in aside.items():
            w = work.sites[site]
            w.set_aside += len(rows)
            self.counters.readings_set_aside += len(rows)
            sample = json.dumps([list(r) for r in rows[:SET_ASIDE_SAMPLE]], default=str).encode()
            seqs = [r[0] for r in rows]
            work.set_aside.append(SetAside(f"{site}:{reason}:{min(seqs)}:{max(seqs)}:{len(seqs)}",
                                           site, f"{self.cfg.mqtt.topic_prefix}/{site}/readings",
                                           reason,
                                           f"{len(rows)} reading(s), seq {min(seqs)}..{max(seqs)}",
                                           len(rows), sample))
        return "".join(lines).encode()

    def _agent_health(self, w: pg.SiteWork, boot: str, seq: int, metric: str, value: Any) -> None:
        """The agent's reports that say whether a gap is final, and why (docs/mqtt.md)."""
        if metric == "buffer.depth" and value == 0 and seq > w.drained_seq:
            w.drained_seq = seq
        elif metric == "buffer.dropped_total" and type(value) in (int, float) and value > 0:
            w.markers.append(("dropped_by_cap", str(int(value)), seq))
        elif metric == "alarm.buffer_replaced" and value is True:
            w.markers.append(("buffer_replaced", boot, seq))

    def _new_series(self, pending: list[tuple[str, tuple[str, str, str, str], Any, int, int]],
                    aside: dict[tuple[str, str], list[tuple[int, str, str, Any, float]]],
                    ) -> list[str]:
        wanted: dict[str, list[str]] = {}
        for site, key, _, _, _ in pending:
            k = "\x1f".join(key[1:])
            if k not in wanted.setdefault(site, []):
                wanted[site].append(k)
        try:
            allowed, _ = pg.register_series(self.lookup, wanted,
                                            self.cfg.ingest.max_series_per_site)
        except psycopg.Error as exc:
            raise StoreUnavailable(f"PostgreSQL: {pg._brief(exc)}") from exc
        out: list[str] = []
        for site, key, value, seq, ms in pending:
            if (site, "\x1f".join(key[1:])) not in allowed:
                aside.setdefault((site, "series_cap"), []).append(
                    (seq, key[1], key[2], value, ms / 1000))
                continue
            prefix = self._prefix.get(key)
            if prefix is None:
                prefix = self._prefix[key] = self._line_prefix(key)
            out.append(f"{prefix}{'1' if key[3][0] in 'tn' else _fmt(value)} {ms}\n")
        return out

    @staticmethod
    def _line_prefix(key: tuple[str, str, str, str]) -> str:
        site, dev, metric, kind = key
        labels = (f'site="{escape_label(site)}",device="{escape_label(dev)}",'
                  f'metric="{escape_label(metric)}"')
        if kind == "v":
            return f"clinic_value{{{labels}}} "
        if kind == "n":
            return f"clinic_null{{{labels}}} "
        return f'clinic_text{{{labels},value="{escape_label(kind[1:])}"}} '
