-- The failure hook runs once per run (issue 12): the run (its `started_at`) whose on_failure hook
-- was claimed, by the worker that ends it or by the recovery that ends it after a cut-off,
-- whichever comes first (NULL: not claimed for any run yet).
ALTER TABLE releases ADD COLUMN on_failure_run TEXT;
