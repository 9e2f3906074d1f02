-- Git webhooks (issue 13): at most one per release config. The token in the hook's URL is
-- stored hashed (SHA-256, shown once); the secret the provider signs with is sealed (the
-- signature check needs it in the clear).
CREATE TABLE config_webhooks (
    config_id   INTEGER PRIMARY KEY REFERENCES release_configs(id) ON DELETE CASCADE,
    token_hash  TEXT NOT NULL UNIQUE,
    secret      BLOB NOT NULL,
    provider    TEXT NOT NULL,            -- github | gitlab | gitee | generic
    rule_kind   TEXT NOT NULL,            -- branch | tag
    pattern     TEXT NOT NULL,            -- exact name or glob (*, ?)
    auto_run    INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

-- Every delivery: accepted (a release was requested), ignored (and why) or refused (bad
-- signature, bad payload). An accepted delivery id is unique per config: the same delivery
-- again is ignored as a duplicate.
CREATE TABLE webhook_deliveries (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    config_id    INTEGER NOT NULL REFERENCES release_configs(id) ON DELETE CASCADE,
    delivery_id  TEXT NOT NULL,
    provider     TEXT NOT NULL,
    event        TEXT NOT NULL,
    outcome      TEXT NOT NULL,           -- accepted | ignored | refused
    reason       TEXT NOT NULL,
    ref_name     TEXT NOT NULL,
    commit_id    TEXT NOT NULL,
    release_id   INTEGER,
    received_at  TEXT NOT NULL
);
CREATE INDEX webhook_deliveries_by_config ON webhook_deliveries(config_id, id);
CREATE UNIQUE INDEX webhook_deliveries_once ON webhook_deliveries(config_id, delivery_id) WHERE outcome = 'accepted';
