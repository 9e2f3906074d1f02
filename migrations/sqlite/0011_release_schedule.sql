-- Scheduled releases (issue 12): an approved release with `run_at` is queued at that time by
-- whichever API process claims it first (a conditional UPDATE: exactly once with several
-- replicas); the index finds the due ones without reading the rest.
ALTER TABLE releases ADD COLUMN run_at TEXT;
CREATE INDEX releases_due ON releases(status, run_at);
