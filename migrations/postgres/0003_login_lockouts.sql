-- Login lockouts (issue 9): a user name or client address that kept failing to log in is
-- refused until `locked_until` or until an admin clears it. Shared by every API replica; the
-- failure counts that lead here are kept in each replica's memory.
CREATE TABLE login_lockouts (
    id            BIGSERIAL PRIMARY KEY,
    -- 'user' (subject: the user name as typed) or 'address' (subject: an IP address, or an
    -- IPv6 /64 network)
    kind          TEXT NOT NULL,
    subject       TEXT NOT NULL,
    failures      BIGINT NOT NULL,
    locked_at     TEXT NOT NULL,
    locked_until  TEXT NOT NULL,
    UNIQUE (kind, subject)
);
