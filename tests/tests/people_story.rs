//! People and review: users with roles scoped to environments and apps, the review step, API
//! tokens, and the audit trail — over HTTP against the real binary, releasing to a real host.
use hippo_e2e::lab::{Lab, PASSWORD};
use serde_json::{Value, json};
use std::time::Duration;

fn request(lab: &Lab, token: &str, config: i64, name: &str) -> Value {
    let (s, r) = lab.hippo.call(
        token,
        "POST",
        "/api/releases",
        &json!({"config_id": config, "name": name, "branch": "main"}),
    );
    assert_eq!(s, 201, "{r}");
    r
}

#[test]
fn a_developer_requests_a_reviewer_decides_a_releaser_ships_and_the_audit_trail_tells_it() {
    let lab = Lab::new(1, &[]);
    let config = lab.config(json!({"review_enabled": true}));
    let (env, app) = (lab.env_id, lab.app_id);
    let developer = lab.role("developer", &["request"]);
    let reviewer = lab.role("reviewer", &["review"]);
    let releaser = lab.role("releaser", &["release"]);
    let dev = lab.user(
        "dev",
        json!([{"role_id": developer, "environment_id": env, "app_id": app}]),
    );
    let rev = lab.user("rev", json!([{"role_id": reviewer, "environment_id": env}]));
    let rel = lab.user("rel", json!([{"role_id": releaser, "environment_id": env}]));
    let lead = lab.user(
        "lead",
        json!([{"role_id": developer}, {"role_id": reviewer}]),
    );
    let h = &lab.hippo;

    // The developer requests; the release waits for review.
    let first = request(&lab, &dev, config, "first try");
    assert_eq!(first["status"], "pending_review", "{first}");
    let id1 = first["id"].as_i64().expect("id");
    // The developer may not approve (no review permission) nor run it.
    let (s, body) = h.call(
        &dev,
        "POST",
        &format!("/api/releases/{id1}/approve"),
        &json!({}),
    );
    assert_eq!(
        (s, body["permission"].as_str()),
        (403, Some("review")),
        "{body}"
    );
    let (s, body) = h.call(
        &dev,
        "POST",
        &format!("/api/releases/{id1}/run"),
        &Value::Null,
    );
    assert_eq!(
        (s, body["permission"].as_str()),
        (403, Some("release")),
        "{body}"
    );
    // Nobody runs a release that waits for review.
    let (s, body) = h.call(
        &rel,
        "POST",
        &format!("/api/releases/{id1}/run"),
        &Value::Null,
    );
    assert_eq!(s, 409, "{body}");
    // The reviewer must say why they reject it.
    let (s, body) = h.call(
        &rev,
        "POST",
        &format!("/api/releases/{id1}/reject"),
        &json!({}),
    );
    assert_eq!(
        (s, body["field"].as_str()),
        (422, Some("comment")),
        "{body}"
    );
    let (s, body) = h.call(
        &rev,
        "POST",
        &format!("/api/releases/{id1}/reject"),
        &json!({"comment": "  "}),
    );
    assert_eq!(
        (s, body["field"].as_str()),
        (422, Some("comment")),
        "{body}"
    );
    let (s, rejected) = h.call(
        &rev,
        "POST",
        &format!("/api/releases/{id1}/reject"),
        &json!({"comment": "not during the sale"}),
    );
    assert_eq!(s, 200, "{rejected}");
    assert_eq!(rejected["status"], "rejected");
    assert_eq!(rejected["review_comment"], "not during the sale");
    let (s, body) = h.call(
        &rel,
        "POST",
        &format!("/api/releases/{id1}/run"),
        &Value::Null,
    );
    assert_eq!(s, 409, "a rejected release cannot run: {body}");

    // A lead who may request and review still cannot approve their own request.
    let own = request(&lab, &lead, config, "lead's own");
    let own_id = own["id"].as_i64().expect("id");
    let (s, body) = h.call(
        &lead,
        "POST",
        &format!("/api/releases/{own_id}/approve"),
        &json!({}),
    );
    assert_eq!(
        (s, body["permission"].as_str()),
        (403, Some("review")),
        "{body}"
    );
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("requested")),
        "{body}"
    );
    // Whoever edits what a release ships becomes its requester: the lead cannot edit the
    // developer's request to another commit and then approve it.
    let third = request(&lab, &dev, config, "third");
    let (_, commits) = h.get(&format!(
        "/api/release-configs/{config}/git/commits?branch=main"
    ));
    let older = commits[1]["id"]
        .as_str()
        .expect("an older commit")
        .to_owned();
    let id3 = third["id"].as_i64().expect("id");
    let (s, body) = h.call(
        &lead,
        "PUT",
        &format!("/api/releases/{id3}"),
        &json!({"commit": older}),
    );
    assert_eq!(s, 200, "{body}");
    let (s, body) = h.call(
        &lead,
        "POST",
        &format!("/api/releases/{id3}/approve"),
        &json!({}),
    );
    assert_eq!(
        (s, body["permission"].as_str()),
        (403, Some("review")),
        "{body}"
    );
    // A reviewer who looked at the old commit is told it changed.
    let (s, body) = h.call(
        &rev,
        "POST",
        &format!("/api/releases/{id3}/approve"),
        &json!({"commit_id": third["commit_id"]}),
    );
    assert_eq!(
        (s, body["error"].as_str()),
        (409, Some("changed")),
        "{body}"
    );

    // Second request: approved, then edited (back to review), approved again, released.
    let second = request(&lab, &dev, config, "second try");
    let id2 = second["id"].as_i64().expect("id");
    let (s, approved) = h.call(
        &rev,
        "POST",
        &format!("/api/releases/{id2}/approve"),
        &json!({"comment": "go"}),
    );
    assert_eq!(
        (s, approved["status"].as_str()),
        (200, Some("approved")),
        "{approved}"
    );
    let (s, edited) = h.call(
        &dev,
        "PUT",
        &format!("/api/releases/{id2}"),
        &json!({"name": "second try, renamed"}),
    );
    assert_eq!(s, 200, "{edited}");
    assert_eq!(
        edited["status"], "pending_review",
        "an edit needs a new review: {edited}"
    );
    assert!(edited["reviewed_by"].is_null(), "{edited}");
    let (s, approved) = h.call(
        &rev,
        "POST",
        &format!("/api/releases/{id2}/approve"),
        &json!({}),
    );
    assert_eq!(
        (s, approved["status"].as_str()),
        (200, Some("approved")),
        "{approved}"
    );
    // The releaser runs it with an API token made for automation.
    let (s, tok) = h.call(
        &rel,
        "POST",
        "/api/tokens",
        &json!({"name": "ci", "expires_in_days": 30}),
    );
    assert_eq!(s, 201, "{tok}");
    let api_token = tok["token"].as_str().expect("token").to_owned();
    let (_, listed) = h.call(&rel, "GET", "/api/tokens", &Value::Null);
    assert!(
        !listed.to_string().contains(&api_token),
        "tokens are shown once: {listed}"
    );
    let (s, queued) = h.call(
        &api_token,
        "POST",
        &format!("/api/releases/{id2}/run"),
        &Value::Null,
    );
    assert_eq!(s, 200, "{queued}");
    assert!(hippo_e2e::hippo::queued_or_past(&queued), "{queued}");
    h.events(id2, None, Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("{e:#}"));
    let (_, done) = h.get(&format!("/api/releases/{id2}"));
    assert_eq!(done["status"], "succeeded", "{done}");
    // Revoked: the token stops working at once.
    let tok_id = tok["id"].as_i64().expect("id");
    let (s, _) = h.call(
        &rel,
        "DELETE",
        &format!("/api/tokens/{tok_id}"),
        &Value::Null,
    );
    assert_eq!(s, 204);
    let (s, _) = h.call(&api_token, "GET", "/api/releases", &Value::Null);
    assert_eq!(s, 401);
    // A password reset ends every session of that user.
    let (_, users) = h.get("/api/users");
    let rel_id = users
        .as_array()
        .expect("array")
        .iter()
        .find(|u| u["username"] == "rel")
        .expect("rel")["id"]
        .clone();
    let (s, _) = h.call(
        &h.token,
        "PATCH",
        &format!("/api/users/{rel_id}"),
        &json!({"password": "a brand new password"}),
    );
    assert_eq!(s, 200);
    let (s, _) = h.call(&rel, "GET", "/api/releases", &Value::Null);
    assert_eq!(s, 401, "the old session still works after a password reset");

    // The audit trail, as the admin reads it: each step with its actor.
    let (s, trail) = h.get("/api/audit?entity=release");
    assert_eq!(s, 200, "{trail}");
    let steps: Vec<(i64, String, String, String, String)> = trail
        .as_array()
        .expect("array")
        .iter()
        .map(|e| {
            let to = e["changes"]
                .as_array()
                .and_then(|c| c.iter().find(|c| c["field"] == "status"))
                .and_then(|c| c["to"].as_str())
                .unwrap_or("")
                .to_owned();
            (
                e["entity_id"].as_i64().unwrap_or(0),
                e["actor"].as_str().unwrap_or("").to_owned(),
                e["action"].as_str().unwrap_or("").to_owned(),
                to,
                e["comment"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let has = |id: i64, actor: &str, action: &str, to: &str| {
        steps
            .iter()
            .any(|(i, a, ac, t, _)| *i == id && a == actor && ac == action && t == to)
    };
    assert!(has(id1, "dev", "request", "pending_review"), "{steps:#?}");
    assert!(
        steps.iter().any(|(i, a, _, t, c)| *i == id1
            && a == "rev"
            && t == "rejected"
            && c == "not during the sale"),
        "{steps:#?}"
    );
    assert!(has(id2, "dev", "request", "pending_review"), "{steps:#?}");
    assert!(has(id2, "rev", "status", "approved"), "{steps:#?}");
    assert!(has(id2, "dev", "edit", "pending_review"), "{steps:#?}");
    assert!(has(id2, "rel", "status", "queued"), "{steps:#?}");
    assert!(has(id2, "hippo", "status", "running"), "{steps:#?}");
    assert!(has(id2, "hippo", "status", "succeeded"), "{steps:#?}");
    // Filters.
    let (_, by_rev) = h.get("/api/audit?actor=rev");
    assert!(
        by_rev
            .as_array()
            .expect("array")
            .iter()
            .all(|e| e["actor"] == "rev"),
        "{by_rev}"
    );
    // `since` is a date-time parameter: anything else is a bad request.
    let (s, _) = h.get("/api/audit?since=yesterday");
    assert_eq!(s, 400);
    // Not for everyone.
    let (s, body) = h.call(&dev, "GET", "/api/audit", &Value::Null);
    assert_eq!(
        (s, body["permission"].as_str()),
        (403, Some("admin")),
        "{body}"
    );
}

#[test]
fn config_changes_are_audited_without_their_secrets() {
    let lab = Lab::new(1, &[]);
    let mut body = lab.config_body(json!({"repo_auth": "token", "repo_username": "ci",
        "repo_url": "https://git.example.com/acme/cart.git", "repo_token": "s3cret-token-value"}));
    let created = lab.hippo.ok("/api/release-configs", &body, 201);
    let id = created["id"].as_i64().expect("id");
    body["keep_versions"] = json!(7);
    body["repo_token"] = json!("n3w-secret-token");
    let (s, _) = lab.hippo.put(&format!("/api/release-configs/{id}"), &body);
    assert_eq!(s, 200);
    let (_, trail) = lab
        .hippo
        .get(&format!("/api/audit?entity=config&entity_id={id}"));
    let text = trail.to_string();
    assert!(
        !text.contains("s3cret") && !text.contains("n3w-secret"),
        "{text}"
    );
    let entries = trail.as_array().expect("array");
    assert_eq!(entries.len(), 2, "{trail}");
    assert_eq!(entries[0]["action"], "create");
    let change = |entry: &Value, field: &str| {
        entry["changes"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["field"] == field))
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(
        change(&entries[0], "repo_token"),
        json!({"field": "repo_token", "to": "set"})
    );
    assert_eq!(
        change(&entries[1], "keep_versions"),
        json!({"field": "keep_versions", "from": "2", "to": "7"})
    );
    assert_eq!(change(&entries[1], "repo_token")["to"], "changed");
    assert_eq!(entries[1]["actor"], "admin");
}

/// Roles × routes × environments: a role bound to `test` may do its one thing there, and
/// nothing in `prod` — not even see it.
#[test]
fn each_role_may_do_its_own_things_in_its_own_environment_only() {
    let lab = Lab::new(1, &[]);
    let h = &lab.hippo;
    let prod = lab.env_id;
    let test = h.ok(
        "/api/environments",
        &json!({"name": "Test", "tag": "test"}),
        201,
    )["id"]
        .as_i64()
        .expect("id");
    let test_host = h.ok(
        "/api/hosts",
        &json!({"environment_id": test, "name": "t-1", "addr": "127.0.0.1", "port": 22, "username": "root"}),
        201,
    )["id"]
        .as_i64()
        .expect("id");
    let cfg = |env: i64, hosts: Value| -> i64 {
        let body = lab
            .config_body(json!({"environment_id": env, "host_ids": hosts, "review_enabled": true}));
        h.ok("/api/release-configs", &body, 201)["id"]
            .as_i64()
            .expect("id")
    };
    let configs = [
        (prod, cfg(prod, json!(lab.host_ids))),
        (test, cfg(test, json!([test_host]))),
    ];

    let roles = [
        ("developer", vec!["request"]),
        ("reviewer", vec!["review"]),
        ("releaser", vec!["release"]),
        ("ops", vec!["manage_hosts", "edit_configs"]),
    ];
    for (name, perms) in &roles {
        let rid = lab.role(name, perms);
        let token = lab.user(
            &format!("{name}-test"),
            json!([{"role_id": rid, "environment_id": test}]),
        );
        for (env, config) in configs {
            let in_scope = env == test;
            let may = |p: &str| in_scope && perms.contains(&p);
            // A release waiting for review, requested by the admin (so anyone else may review it).
            let pending = h.ok(
                "/api/releases",
                &json!({"config_id": config, "name": "x", "branch": "main"}),
                201,
            );
            let pid = pending["id"].as_i64().expect("id");
            let config_body = lab.config_body(json!({"environment_id": env,
                "host_ids": if env == test { json!([test_host]) } else { json!(lab.host_ids) },
                "review_enabled": true, "keep_versions": 3}));
            // Outside its scope a user cannot even see the config or the release: 404 (422 for
            // a request naming the config), as if they did not exist; no id leaks in a 403.
            // (method, permission, path, body, permission named in a 403, status when unseen)
            type Case<'a> = (&'a str, &'a str, String, Value, Option<&'a str>, u16);
            let cases: Vec<Case> = vec![
                (
                    "POST",
                    "manage_hosts",
                    "/api/hosts".into(),
                    json!({"environment_id": env, "name": format!("{name}-h"), "addr": "127.0.0.2", "port": 22, "username": "root"}),
                    Some("manage_hosts"),
                    403,
                ),
                (
                    "PUT",
                    "edit_configs",
                    format!("/api/release-configs/{config}"),
                    config_body,
                    Some("edit_configs"),
                    404,
                ),
                (
                    "POST",
                    "request",
                    "/api/releases".into(),
                    json!({"config_id": config, "name": "mine", "branch": "main"}),
                    Some("request"),
                    422,
                ),
                (
                    "POST",
                    "review",
                    format!("/api/releases/{pid}/approve"),
                    json!({}),
                    Some("review"),
                    404,
                ),
                // Approved by now if the reviewer could; otherwise the 409 says it is not approved.
                (
                    "POST",
                    "release",
                    format!("/api/releases/{pid}/run"),
                    Value::Null,
                    Some("release"),
                    404,
                ),
            ];
            for (method, perm, path, body, named, unseen) in cases {
                let (s, out) = h.call(&token, method, &path, &body);
                if may(perm) {
                    assert!(
                        s < 400 || s == 409,
                        "{name} in env {env}: {method} {path} -> {s} {out}"
                    );
                } else if in_scope {
                    assert_eq!(s, 403, "{name} in env {env}: {method} {path} -> {s} {out}");
                    assert_eq!(out["permission"].as_str(), named, "{out}");
                } else {
                    assert_eq!(
                        s, unseen,
                        "{name} in env {env}: {method} {path} -> {s} {out}"
                    );
                }
                let message = out["message"].as_str().unwrap_or_default();
                assert!(
                    !message.contains(&format!("environment {env}"))
                        && !message.contains(&format!("environment {prod}")),
                    "a refusal names an environment id: {out}"
                );
            }
            // Seeing: configs, hosts and releases of test only.
            let (s, _) = h.call(
                &token,
                "GET",
                &format!("/api/release-configs/{config}"),
                &Value::Null,
            );
            assert_eq!(
                s == 200,
                in_scope,
                "{name} reading config of env {env}: {s}"
            );
            let (s, _) = h.call(&token, "GET", &format!("/api/releases/{pid}"), &Value::Null);
            assert_eq!(
                s == 200,
                in_scope,
                "{name} reading a release of env {env}: {s}"
            );
        }
        let (_, listed) = h.call(&token, "GET", "/api/release-configs", &Value::Null);
        let envs: Vec<i64> = listed
            .as_array()
            .expect("array")
            .iter()
            .map(|c| c["environment_id"].as_i64().unwrap_or(0))
            .collect();
        assert_eq!(envs, vec![test], "{name} lists only test configs");
        let (_, hosts) = h.call(&token, "GET", "/api/hosts", &Value::Null);
        assert!(
            hosts
                .as_array()
                .expect("array")
                .iter()
                .all(|x| x["environment_id"] == test),
            "{hosts}"
        );
        let (_, releases) = h.call(&token, "GET", "/api/releases", &Value::Null);
        assert!(
            releases["items"]
                .as_array()
                .expect("array")
                .iter()
                .all(|x| x["environment_id"] == test),
            "{releases}"
        );
        // Admin-only routes.
        for (method, path) in [
            ("GET", "/api/users"),
            ("POST", "/api/environments"),
            ("GET", "/api/audit"),
        ] {
            let (s, out) = h.call(&token, method, path, &json!({"name": "X", "tag": "x"}));
            assert_eq!(
                (s, out["permission"].as_str()),
                (403, Some("admin")),
                "{name}: {method} {path}"
            );
        }
    }
    // `admin` is platform-wide: a role holding it cannot be bound to one environment.
    let boss = lab.role("boss", &["admin"]);
    let (s, body) = h.post(
        "/api/users",
        &json!({"username": "boss", "password": PASSWORD, "roles": [{"role_id": boss, "environment_id": test}]}),
    );
    assert_eq!((s, body["field"].as_str()), (422, Some("roles")), "{body}");
    // Hosts belong to an environment, not an app: manage_hosts scoped to an app is not enough.
    let hosts_role = lab.role("host-keeper", &["manage_hosts"]);
    let keeper = lab.user(
        "keeper",
        json!([{"role_id": hosts_role, "environment_id": test, "app_id": lab.app_id}]),
    );
    let (s, body) = h.call(&keeper, "POST", "/api/hosts",
        &json!({"environment_id": test, "name": "k-1", "addr": "127.0.0.3", "port": 22, "username": "root"}));
    assert_eq!(
        (s, body["permission"].as_str()),
        (403, Some("manage_hosts")),
        "{body}"
    );
    // A host that configs of its environment target cannot be moved to another one.
    let (s, body) = h.put(
        &format!("/api/hosts/{test_host}"),
        &json!({"environment_id": prod, "name": "t-1", "addr": "127.0.0.1", "port": 22, "username": "root"}),
    );
    assert_eq!((s, body["error"].as_str()), (409, Some("in_use")), "{body}");

    // A disabled user is locked out at once.
    let (_, users) = h.get("/api/users");
    let dev = users
        .as_array()
        .expect("array")
        .iter()
        .find(|u| u["username"] == "developer-test")
        .expect("user")
        .clone();
    let token = h.login("developer-test", PASSWORD);
    let (s, _) = h.call(
        &lab.hippo.token,
        "PATCH",
        &format!("/api/users/{}", dev["id"]),
        &json!({"disabled": true}),
    );
    assert_eq!(s, 200);
    let (s, _) = h.call(&token, "GET", "/api/releases", &Value::Null);
    assert_eq!(s, 401);
    let (s, _) = h.post(
        "/api/auth/login",
        &json!({"username": "developer-test", "password": PASSWORD}),
    );
    assert_eq!(s, 401);
}
