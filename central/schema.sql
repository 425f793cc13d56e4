-- clinic-central's PostgreSQL schema (docs/central.md). Idempotent: the ingest applies it at start.
-- Times from the clinics (edge times) are timestamptz converted from the agent's epoch seconds.

CREATE TABLE IF NOT EXISTS sites (
    site            text PRIMARY KEY,
    first_seen      timestamptz NOT NULL DEFAULT now(),
    last_seen       timestamptz,             -- last message of any kind from the site (central time)
    last_reading_at timestamptz,             -- edge time of the newest reading stored
    boot            text,                    -- the agent process's boot id (changes at each start)
    boot_seen       timestamptz,
    status          text,                    -- online / offline (retained status topic)
    status_at       timestamptz,
    agent_version   text,
    config_state    jsonb,                   -- the retained config/state document, as published
    config_version  text,
    units           jsonb,                   -- {"device": {"metric": "unit"}} from the retained meta topic
    max_seq         bigint NOT NULL DEFAULT 0,
    stored_total    bigint NOT NULL DEFAULT 0,   -- readings written to VictoriaMetrics
    duplicates_total bigint NOT NULL DEFAULT 0,  -- readings received again and ignored
    set_aside_total bigint NOT NULL DEFAULT 0,   -- readings refused (see set_aside)
    acked_seq       bigint NOT NULL DEFAULT 0,   -- last end-to-end ack published
    acked_at        timestamptz,
    ack_due         boolean NOT NULL DEFAULT false, -- readings came again: the site missed the ack
    drained_seq     bigint NOT NULL DEFAULT 0    -- seq of the newest buffer.depth = 0 reading
);

-- Which seqs of each site are accounted for (stored, or set aside with a reason): the
-- de-duplication state, shared by every ingest process. Few rows per site: adjacent ranges merge.
CREATE TABLE IF NOT EXISTS seq_ranges (
    site text NOT NULL,
    lo   bigint NOT NULL,
    hi   bigint NOT NULL,
    PRIMARY KEY (site, lo)
);

-- Seqs that never arrived although the site's backlog drained after them: loss, with the
-- agent's reason when it gave one (dropped_by_cap, buffer_replaced), else "unknown".
CREATE TABLE IF NOT EXISTS gaps (
    site     text NOT NULL,
    lo       bigint NOT NULL,
    hi       bigint NOT NULL,
    reason   text NOT NULL,
    found_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (site, lo)
);

-- The agent's own loss reports (device "agent"): buffer.dropped_total rising, alarm.buffer_replaced.
-- One row per distinct report (a dropped_total value, a boot that replaced its buffer), with the
-- lowest seq that carried it: the first reading after the loss.
CREATE TABLE IF NOT EXISTS loss_markers (
    site text NOT NULL,
    kind text NOT NULL,             -- dropped_by_cap | buffer_replaced
    key  text NOT NULL,             -- the dropped_total value, or the boot id
    seq  bigint NOT NULL,
    PRIMARY KEY (site, kind, key)
);

CREATE TABLE IF NOT EXISTS events (
    site        text NOT NULL,
    id          bigint NOT NULL,
    kind        text NOT NULL,      -- raise | clear | flapping
    cond        text NOT NULL,
    dev         text NOT NULL,
    start_at    timestamptz NOT NULL,
    end_at      timestamptz,
    dur_s       double precision,
    est         boolean NOT NULL DEFAULT false,   -- duration estimated (agent restarted meanwhile)
    vals        jsonb NOT NULL DEFAULT '{}',
    flags       integer NOT NULL DEFAULT 0,       -- clock flags, as on readings
    boot        text,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (site, id)
);
CREATE INDEX IF NOT EXISTS events_by_start ON events (start_at);

CREATE TABLE IF NOT EXISTS events_active (
    site        text PRIMARY KEY,
    at          timestamptz,
    active      jsonb NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS daily_summaries (
    site        text NOT NULL,
    day         date NOT NULL,
    doc         jsonb NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (site, day)
);

-- Every series written per site, for the per-site series cap.
CREATE TABLE IF NOT EXISTS series (
    site text NOT NULL,
    key  text NOT NULL,
    PRIMARY KEY (site, key)
);

-- What the ingest refused, with why: never silently dropped.
CREATE TABLE IF NOT EXISTS set_aside (
    id        bigserial PRIMARY KEY,
    dedup_key text UNIQUE,          -- a redelivered message is set aside once
    at        timestamptz NOT NULL DEFAULT now(),
    site      text,
    topic     text NOT NULL,
    reason    text NOT NULL,        -- too_large, truncated, not_json, foreign, unknown_site, series_cap, ...
    detail    text,
    readings  bigint NOT NULL DEFAULT 0,
    payload   bytea                 -- the message (or the readings refused), at most 64 KiB
);
CREATE INDEX IF NOT EXISTS set_aside_by_time ON set_aside (at);

-- Each ingest process's own counters, refreshed every few seconds (clinic-central status).
CREATE TABLE IF NOT EXISTS ingest_stats (
    ingest_id  text PRIMARY KEY,
    started_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    flushed_at timestamptz,         -- its VictoriaMetrics writes committed before this are on disk
    stats      jsonb NOT NULL
);

-- Staged rollouts of one signed push (central/rollout.py, docs/rollouts.md).
CREATE TABLE IF NOT EXISTS rollouts (
    id                bigserial PRIMARY KEY,
    created_at        timestamptz NOT NULL DEFAULT now(),
    created_by        text NOT NULL,
    kind              text NOT NULL,             -- config | overlay
    version           bigint NOT NULL,           -- the push's version
    key_id            text NOT NULL,
    envelope          bytea NOT NULL,            -- the signed bundle: one envelope a line, each
                                                 -- exactly the bytes published to its sites
    envelope_sha256   text NOT NULL,
    not_after         timestamptz NOT NULL,
    note              text,
    canary_share      double precision NOT NULL,
    max_failure_share double precision NOT NULL,
    stage_timeout_s   double precision NOT NULL,
    state             text NOT NULL DEFAULT 'created',  -- created | canary | rest | done | stopped
    stage             integer NOT NULL DEFAULT 0,        -- the stage sent last (0: none yet)
    stopped_reason    text,
    revert_version    bigint,
    updated_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS rollout_sites (
    rollout_id  bigint NOT NULL REFERENCES rollouts (id),
    site        text NOT NULL,
    stage       integer NOT NULL,              -- 1: canary, 2: the rest
    state       text NOT NULL DEFAULT 'pending',
        -- pending | sent | applied | rejected | rolled_back | no_answer | withdrawn
        -- | reverting | reverted | revert_refused | revert_no_answer
    reason      text,
    detail      text,
    sent_at     timestamptz,
    outcome_at  timestamptz,
    envelope_index integer,                    -- which line of rollouts.envelope lists the site
    PRIMARY KEY (rollout_id, site)
);
-- Databases made before signed bundles (NULL: the rollout's only envelope).
ALTER TABLE rollout_sites ADD COLUMN IF NOT EXISTS envelope_index integer;

-- Who did what: every push, revert and command sent from clinic-central.
CREATE TABLE IF NOT EXISTS operator_actions (
    id         bigserial PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    actor      text NOT NULL,
    action     text NOT NULL,       -- rollout_create | rollout_stage | rollout_stop | rollout_revert | command
    rollout_id bigint,
    sites      integer NOT NULL DEFAULT 0,
    detail     jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS operator_actions_by_time ON operator_actions (at);

CREATE TABLE IF NOT EXISTS commands_sent (
    command_id text PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    actor      text NOT NULL,
    command    text NOT NULL,
    args       jsonb NOT NULL DEFAULT '{}',
    sites      text[] NOT NULL
);

-- What sites answered on cmd/result and diagnostics, kept by the ingest (not only seen by
-- whoever was listening).
CREATE TABLE IF NOT EXISTS command_results (
    id          bigserial PRIMARY KEY,
    dedup_key   text UNIQUE,
    received_at timestamptz NOT NULL DEFAULT now(),
    site        text NOT NULL,
    leaf        text NOT NULL,      -- cmd/result | diagnostics
    command_id  text,
    command     text,
    ok          boolean,
    at          timestamptz,        -- the site's time
    doc         jsonb NOT NULL
);
CREATE INDEX IF NOT EXISTS command_results_by_site ON command_results (site, received_at);

-- Alerts (docs/alerts.md). Once clinic-central alerts has run (alerts_enabled has its row),
-- every event stored is queued here by a trigger, in the ingest's own transaction: the alerts
-- process takes each exactly once, whenever it runs. Before that nothing is queued: a
-- deployment without alerts keeps no queue, and enabling them does not replay history.
CREATE TABLE IF NOT EXISTS alerts_enabled (
    one         boolean PRIMARY KEY DEFAULT true CHECK (one),
    since       timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS alert_queue (
    n           bigserial PRIMARY KEY,
    site        text NOT NULL,
    event_id    bigint NOT NULL
);
CREATE OR REPLACE FUNCTION alert_queue_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM alerts_enabled) THEN
        INSERT INTO alert_queue (site, event_id) VALUES (NEW.site, NEW.id);
    END IF;
    RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER events_to_alert_queue AFTER INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION alert_queue_event();

-- One row per alert: a condition of a device from its start (edge time) to its clear. ``state``:
-- firing (posted until its clear is posted), resolved (the resolution posted again for a while),
-- done, not_reported (ended before the centre heard of it, with report_ended off), refused
-- (Alertmanager refused it: see ``error``).
CREATE TABLE IF NOT EXISTS alerts (
    aid         bigserial UNIQUE,
    site        text NOT NULL,
    dev         text NOT NULL,
    cond        text NOT NULL,
    start_at    timestamptz NOT NULL,         -- edge time: first poll that showed it
    raise_id    bigint,                       -- the raise (or flapping) event
    clear_id    bigint,
    flapping    boolean NOT NULL DEFAULT false,
    severity    text NOT NULL,
    vals        jsonb NOT NULL DEFAULT '{}',  -- the raise's values
    end_at      timestamptz,                  -- edge time of the clear
    dur_s       double precision,
    est         boolean NOT NULL DEFAULT false,
    end_vals    jsonb,
    late        boolean NOT NULL DEFAULT false,   -- over before the centre heard of it
    state       text NOT NULL DEFAULT 'firing',
    error       text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    hold_from   timestamptz,   -- firing accepted by Alertmanager (again after it restarted)
    resolved_at timestamptz,   -- resolution accepted by Alertmanager
    posted_at   timestamptz,   -- last post of either
    PRIMARY KEY (site, dev, cond, start_at)
);
CREATE INDEX IF NOT EXISTS alerts_open ON alerts (state) WHERE state IN ('firing', 'resolved');
