-- Git servers' SSH host keys, pinned on first use (issue 13): `host` or `host:port`, the key
-- (base64, as in known_hosts) and its SHA256 fingerprint. A fetch that is offered another key
-- fails until an admin forgets the pinned one.
CREATE TABLE git_host_keys (
    host         TEXT PRIMARY KEY,
    host_key     TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    pinned_at    TEXT NOT NULL
);
