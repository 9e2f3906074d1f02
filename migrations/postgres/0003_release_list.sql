-- The releases list (issue 10): newest first, filtered by environment/app (the permission
-- scopes), status, requester or date; every filter keeps the `id DESC` order in the index.
CREATE INDEX releases_by_env_app ON releases(environment_id, app_id, id);
CREATE INDEX releases_by_app ON releases(app_id, id);
CREATE INDEX releases_by_status_id ON releases(status, id);
CREATE INDEX releases_by_requester ON releases(requested_by, id);
CREATE INDEX releases_by_created ON releases(created_at);
