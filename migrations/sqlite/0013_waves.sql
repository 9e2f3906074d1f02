-- Waves (issue 12): the wave each host of a run switches in (NULL: no waves), and a release
-- paused after a wave until someone continues it: the wave it waits after and until when
-- (both NULL when not paused).
ALTER TABLE release_hosts ADD COLUMN wave BIGINT;
ALTER TABLE releases ADD COLUMN paused_wave BIGINT;
ALTER TABLE releases ADD COLUMN paused_until TEXT;
