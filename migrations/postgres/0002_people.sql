-- People and review (issue 4): roles scoped to environments and apps, API tokens with names,
-- the review of a release, the audit trail.

ALTER TABLE users ADD COLUMN disabled BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tokens ADD COLUMN name TEXT NOT NULL DEFAULT '';

-- A role is a named set of permissions (JSON array of names).
CREATE TABLE roles (
    id           BIGSERIAL PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    permissions  TEXT NOT NULL,
    created_at   TEXT NOT NULL
);

-- A user holds a role, for one environment and/or one app (NULL: all of them).
CREATE TABLE role_bindings (
    id              BIGSERIAL PRIMARY KEY,
    user_id         BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role_id         BIGINT NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
    environment_id  BIGINT,
    app_id          BIGINT
);
CREATE INDEX role_bindings_by_user ON role_bindings(user_id);

ALTER TABLE releases ADD COLUMN reviewed_by BIGINT;
ALTER TABLE releases ADD COLUMN review_comment TEXT;
ALTER TABLE releases ADD COLUMN reviewed_at TEXT;

-- Who changed what, when. `changes` is JSON without secrets.
CREATE TABLE audit (
    id          BIGSERIAL PRIMARY KEY,
    at          TEXT NOT NULL,
    actor_id    BIGINT,
    actor       TEXT NOT NULL,
    entity      TEXT NOT NULL,
    entity_id   BIGINT,
    action      TEXT NOT NULL,
    changes     TEXT NOT NULL DEFAULT '{}',
    comment     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_by_at ON audit(at);

-- Notices: the channels of a config (JSON list with their secrets, sealed with the master key),
-- and every delivery attempt of every notice.
ALTER TABLE release_configs ADD COLUMN notice_secret BYTEA;
CREATE TABLE notice_attempts (
    id           BIGSERIAL PRIMARY KEY,
    release_id   BIGINT NOT NULL,
    notice       TEXT NOT NULL,            -- requested | approved | rejected | started | succeeded | failed | rollback
    channel      TEXT NOT NULL,            -- dingtalk | wecom | feishu | webhook | email | sms
    channel_index BIGINT NOT NULL,        -- position in the config's list
    attempt      BIGINT NOT NULL,
    at           TEXT NOT NULL,
    duration_ms  BIGINT NOT NULL,
    ok           BIGINT NOT NULL,
    error        TEXT,
    http_status  BIGINT
);
CREATE INDEX notice_attempts_by_release ON notice_attempts(release_id, id);
