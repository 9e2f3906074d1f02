-- The releases list (issue 10): newest first (`id DESC`) under any one filter, and counts per
-- status (the list's tabs) for an environment or app (the permission scopes) without reading
-- the rows.
CREATE INDEX releases_by_env_id ON releases(environment_id, id);
CREATE INDEX releases_by_app_id ON releases(app_id, id);
CREATE INDEX releases_by_env_status ON releases(environment_id, status);
CREATE INDEX releases_by_app_status ON releases(app_id, status);
CREATE INDEX releases_by_status_id ON releases(status, id);
CREATE INDEX releases_by_requester ON releases(requested_by, id);
CREATE INDEX releases_by_created ON releases(created_at);
