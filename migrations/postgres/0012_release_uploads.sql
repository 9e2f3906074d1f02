-- Files uploaded with a custom release request (issue 13): one per transfer step that takes an
-- upload, stored in the database so every worker of a cluster reads the same bytes. Kept while a
-- host keeps the version that holds them (`db::uploads::prune_uploads`).
CREATE TABLE release_uploads (
    release_id  BIGINT NOT NULL REFERENCES releases(id),
    step        BIGINT NOT NULL,
    size        BIGINT NOT NULL,
    sha256      TEXT NOT NULL,
    data        BYTEA NOT NULL,
    uploaded_at TEXT NOT NULL,
    PRIMARY KEY (release_id, step)
);
