-- Hippo schema (PostgreSQL; keep in step with ../sqlite). Timestamps are RFC 3339 UTC text; ids are integers.

CREATE TABLE users (
    id            BIGSERIAL PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    is_admin      BIGINT NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL
);

CREATE TABLE tokens (
    id          BIGSERIAL PRIMARY KEY,
    user_id     BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token_hash  TEXT NOT NULL UNIQUE,
    kind        TEXT NOT NULL,            -- session | api
    expires_at  TEXT,
    created_at  TEXT NOT NULL
);

-- Platform-wide values: the sealed SSH private key, its public half.
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);

CREATE TABLE environments (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT NOT NULL,
    tag         TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

CREATE TABLE hosts (
    id              BIGSERIAL PRIMARY KEY,
    environment_id  BIGINT NOT NULL REFERENCES environments(id),
    name            TEXT NOT NULL,
    addr            TEXT NOT NULL,
    port            BIGINT NOT NULL,
    username        TEXT NOT NULL,
    category        TEXT NOT NULL DEFAULT '',
    description     TEXT NOT NULL DEFAULT '',
    host_key_type   TEXT,                  -- pinned on first contact
    host_key        TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    UNIQUE (environment_id, name)
);

CREATE TABLE apps (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT NOT NULL,
    tag         TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

CREATE TABLE release_configs (
    id              BIGSERIAL PRIMARY KEY,
    app_id          BIGINT NOT NULL REFERENCES apps(id),
    environment_id  BIGINT NOT NULL REFERENCES environments(id),
    spec            TEXT NOT NULL,         -- JSON ConfigSpec (no secrets)
    repo_secret     BYTEA,                  -- sealed repository credential
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    UNIQUE (app_id, environment_id)
);

CREATE TABLE releases (
    id              BIGSERIAL PRIMARY KEY,
    config_id       BIGINT NOT NULL REFERENCES release_configs(id),
    app_id          BIGINT NOT NULL,
    environment_id  BIGINT NOT NULL,
    name            TEXT NOT NULL,
    kind            TEXT NOT NULL,         -- release | rollback
    ref_kind        TEXT NOT NULL,
    ref_name        TEXT NOT NULL,
    commit_id       TEXT NOT NULL,
    commit_message  TEXT NOT NULL DEFAULT '',
    version         TEXT,                  -- folder on the hosts (new one, or the rollback target)
    status          TEXT NOT NULL,
    error           TEXT,
    snapshot        TEXT NOT NULL,         -- JSON ConfigSpec as requested
    requested_by    BIGINT NOT NULL REFERENCES users(id),
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    started_at      TEXT,
    finished_at     TEXT
);
CREATE INDEX releases_by_status ON releases(status);

CREATE TABLE release_hosts (
    release_id   BIGINT NOT NULL REFERENCES releases(id),
    host_id      BIGINT NOT NULL,
    host_name    TEXT NOT NULL,
    addr         TEXT NOT NULL,
    status       TEXT NOT NULL,            -- pending | preparing | prepared | switched | failed | skipped
    stage        TEXT NOT NULL DEFAULT '',
    message      TEXT NOT NULL DEFAULT '',
    bytes_sent   BIGINT NOT NULL DEFAULT 0,
    previous_version TEXT,
    updated_at   TEXT NOT NULL,
    PRIMARY KEY (release_id, host_id)
);

CREATE TABLE release_events (
    id          BIGSERIAL PRIMARY KEY,
    release_id  BIGINT NOT NULL REFERENCES releases(id),
    at          TEXT NOT NULL,
    body        TEXT NOT NULL              -- JSON ReleaseEvent
);
CREATE INDEX release_events_by_release ON release_events(release_id, id);

-- What each host keeps for a config, as Hippo last saw it.
CREATE TABLE host_versions (
    config_id   BIGINT NOT NULL,
    host_id     BIGINT NOT NULL,
    version     TEXT NOT NULL,
    release_id  BIGINT NOT NULL,
    commit_id   TEXT NOT NULL,
    live        BIGINT NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (config_id, host_id, version)
);

-- Leases: one running release per app x environment. A holder renews before expiry; a
-- crashed holder's lease simply runs out. `token` increases on every acquisition (fencing).
CREATE TABLE leases (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    token       BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL           -- unix milliseconds
);
