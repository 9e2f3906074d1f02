-- Host subsets and retries (issue 12): the hosts a release is for, when not all of its
-- config's (a JSON array of host ids; NULL: all of them), and the failed release a retry
-- sends again (same commit, same config snapshot, the hosts that did not switch).
ALTER TABLE releases ADD COLUMN host_ids TEXT;
ALTER TABLE releases ADD COLUMN retry_of INTEGER REFERENCES releases(id);
