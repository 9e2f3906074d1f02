"""Drives a whole release with the Python client that openapi-generator made from
openapi/openapi.json, and nothing else: log in, create an app and a release config, release a
branch twice (following the events as JSON and as the SSE stream), roll back to the first
version. Called by tests/tests/generated_client_story.rs with the lab as JSON in argv[1];
prints one JSON line with what the Rust side checks on the hosts."""
import json
import sys
import time

import hippo_client as hc

lab = json.loads(sys.argv[1])
conf = hc.Configuration(host=lab["base"])
client = hc.ApiClient(conf)
session = hc.AuthApi(client).login(hc.LoginIn(username="admin", password=lab["password"]))
conf.access_token = session.token

me = hc.AuthApi(client).get_me()
assert me.is_admin and me.username == "admin", me

app = hc.AppsApi(client).create_app(
    hc.AppIn(name="Shop", tag="shop", description="made by the generated client")
)
configs = hc.ReleaseConfigsApi(client)
config = configs.create_release_config(
    hc.ConfigIn(
        app_id=app.id,
        environment_id=lab["environment_id"],
        repo_url=lab["repo_url"],
        host_ids=lab["host_ids"],
        deploy_path=lab["deploy_path"],
        versions_path=lab["versions_path"],
        keep_versions=3,
        filter_mode=hc.FilterMode.EXCLUDE,
        hooks=hc.Hooks(before_release="echo preparing $HIPPO_VERSION"),
    )
)
assert config.app_name == "Shop", config
branches = [b.name for b in hc.GitApi(client).list_branches(config.id)]
assert "main" in branches, branches
releases = hc.ReleasesApi(client)


def finish(release_id):
    """Runs a release and follows its event log until it has ended."""
    releases.run_release(release_id)
    after, events = 0, []
    deadline = time.time() + 180
    while True:
        log = releases.list_release_events(release_id, after=after)
        events += log.events
        if log.events:
            after = log.events[-1].id
        if log.finished:
            break
        assert time.time() < deadline, f"release {release_id} did not end: {events}"
        time.sleep(0.3)
    return releases.get_release(release_id), events


def ship(name, **what):
    r = releases.create_release(hc.ReleaseIn(config_id=config.id, name=name, **what))
    assert r.status == hc.ReleaseStatus.APPROVED, r
    return finish(r.id)


first, events = ship("first", branch="main")
assert first.status == hc.ReleaseStatus.SUCCEEDED, (first, events)
assert first.requested_by_name == "admin" and first.environment_name, first
assert {h.status for h in first.hosts} == {hc.HostStatus.SWITCHED}, first.hosts
assert any(e.stage == hc.EventStage.SWITCH for e in events), events
assert events[-1].stage == hc.EventStage.RELEASE and events[-1].status == hc.EventStatus.SUCCEEDED
# The same events as Server-Sent Events (the stream ends after the final `end` event).
stream = releases.stream_release_events(first.id)
assert "event: end" in stream and f"id: {events[-1].id}" in stream, stream[-500:]

second, _ = ship("second", branch="main")
assert second.status == hc.ReleaseStatus.SUCCEEDED, second

page = releases.list_releases(app_id=app.id, per_page=1)
assert page.total == 2 and len(page.items) == 1 and page.counts.succeeded == 2, page

kept = configs.list_versions(config.id)
versions = {v.version for host in kept for v in host.versions}
assert first.version in versions and second.version in versions, kept
back = releases.create_release(
    hc.ReleaseIn(
        config_id=config.id, name="back", kind=hc.ReleaseKind.ROLLBACK, version=first.version
    )
)
rolled, events = finish(back.id)
assert rolled.status == hc.ReleaseStatus.SUCCEEDED, (rolled, events)
live = {h.host_id: [v.version for v in h.versions if v.live] for h in configs.list_versions(config.id)}
assert all(v == [first.version] for v in live.values()), live

try:
    releases.run_release(rolled.id)
    raise AssertionError("a finished release ran again")
except hc.ApiException as e:
    assert e.status == 409, e

hc.AuthApi(client).logout()
try:
    hc.AuthApi(client).get_me()
    raise AssertionError("the token still works after logout")
except hc.ApiException as e:
    assert e.status == 401, e

print(json.dumps({"rollback_version": first.version, "second_version": second.version}))
