-- clinic-central web's tables (docs/central.md, "The fleet page"). Idempotent, like schema.sql,
-- and applied after it by `clinic-central web`, `users`, `sites import` and `fleet`.

-- What the inventory knows of a clinic besides its id (`clinic-central sites import FILE.csv`).
CREATE TABLE IF NOT EXISTS site_inventory (
    site         text PRIMARY KEY,
    name         text,
    state        text,                   -- the Mexican state (entidad federativa)
    municipality text,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Operators of the web page. pw_hash is argon2id (argon2-cffi); session_version rises on every
-- password change or disable, so the signed cookies issued before stop working.
CREATE TABLE IF NOT EXISTS web_users (
    name            text PRIMARY KEY,
    pw_hash         text NOT NULL,
    role            text NOT NULL CHECK (role IN ('read-only', 'operator')),
    disabled        boolean NOT NULL DEFAULT false,
    session_version integer NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL DEFAULT now(),
    changed_at      timestamptz NOT NULL DEFAULT now()
);

-- An operator took charge of an active problem (site, dev, cond, start: the raise it came from).
CREATE TABLE IF NOT EXISTS problem_acks (
    site     text NOT NULL,
    dev      text NOT NULL,
    cond     text NOT NULL,
    start_at timestamptz NOT NULL,
    by_user  text NOT NULL,
    at       timestamptz NOT NULL DEFAULT now(),
    note     text NOT NULL DEFAULT '',
    PRIMARY KEY (site, dev, cond, start_at)
);
