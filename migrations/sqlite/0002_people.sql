-- People and review (issue 4): roles scoped to environments and apps, API tokens with names,
-- the review of a release, the audit trail.

ALTER TABLE users ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tokens ADD COLUMN name TEXT NOT NULL DEFAULT '';

-- A role is a named set of permissions (JSON array of names).
CREATE TABLE roles (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT NOT NULL UNIQUE,
    permissions  TEXT NOT NULL,
    created_at   TEXT NOT NULL
);

-- A user holds a role, for one environment and/or one app (NULL: all of them).
CREATE TABLE role_bindings (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id         INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role_id         INTEGER NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
    environment_id  INTEGER,
    app_id          INTEGER
);
CREATE INDEX role_bindings_by_user ON role_bindings(user_id);

ALTER TABLE releases ADD COLUMN reviewed_by INTEGER;
ALTER TABLE releases ADD COLUMN review_comment TEXT;
ALTER TABLE releases ADD COLUMN reviewed_at TEXT;

-- Who changed what, when. `changes` is JSON without secrets.
CREATE TABLE audit (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          TEXT NOT NULL,
    actor_id    INTEGER,
    actor       TEXT NOT NULL,
    entity      TEXT NOT NULL,
    entity_id   INTEGER,
    action      TEXT NOT NULL,
    changes     TEXT NOT NULL DEFAULT '{}',
    comment     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_by_at ON audit(at);

-- Notices: the channels of a config (JSON list with their secrets, sealed with the master key),
-- and every delivery attempt of every notice.
ALTER TABLE release_configs ADD COLUMN notice_secret BLOB;
CREATE TABLE notice_attempts (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    release_id   INTEGER NOT NULL,
    notice       TEXT NOT NULL,            -- requested | approved | rejected | started | succeeded | failed | rollback
    channel      TEXT NOT NULL,            -- dingtalk | wecom | feishu | webhook | email | sms
    channel_index INTEGER NOT NULL,        -- position in the config's list
    attempt      INTEGER NOT NULL,
    at           TEXT NOT NULL,
    duration_ms  INTEGER NOT NULL,
    ok           INTEGER NOT NULL,
    error        TEXT,
    http_status  INTEGER
);
CREATE INDEX notice_attempts_by_release ON notice_attempts(release_id, id);
