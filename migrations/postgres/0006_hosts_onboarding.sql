-- Hosts (issue 14): the last connectivity check of each host, and the web terminal's sessions.

-- When the host was last checked and what was found (JSON: ok, reason, latency, fingerprint,
-- remote user, writable paths); absent until the first check.
ALTER TABLE hosts ADD COLUMN checked_at TEXT;
ALTER TABLE hosts ADD COLUMN check_result TEXT;

-- One row per terminal session: who opened a shell on which host, when, and everything typed
-- and shown (JSON lines). No foreign keys: the record outlives the host and the user.
CREATE TABLE terminal_sessions (
    id                 BIGSERIAL PRIMARY KEY,
    host_id            BIGINT NOT NULL,
    host_name          TEXT NOT NULL,
    environment_id     BIGINT NOT NULL,
    user_id            BIGINT NOT NULL,
    username           TEXT NOT NULL,
    created_at         TEXT NOT NULL,
    -- The one-time ticket that opens the WebSocket (SHA-256, cleared when used) and its expiry.
    ticket_hash        TEXT UNIQUE,
    ticket_expires_at  TEXT NOT NULL,
    started_at         TEXT,
    ended_at           TEXT,
    end_reason         TEXT NOT NULL DEFAULT '',
    transcript         TEXT NOT NULL DEFAULT '',
    transcript_bytes   BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX terminal_sessions_by_host ON terminal_sessions(host_id, id);
