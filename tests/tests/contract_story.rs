//! The API's contract as an integrator meets it, over HTTP against the real binary: bodies
//! checked against the spec at the edge (types, lengths, null), the body limit, content types,
//! methods, logging out, "who am I", the releases list (pages, filters, counts, names, only
//! what the caller may see) and the event stream and log.
use hippo_e2e::hippo::{Hippo, client_builder};
use hippo_e2e::lab::Lab;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const PASSWORD: &str = "correct horse battery";

fn field(r: &(u16, Value)) -> (u16, Option<&str>) {
    (r.0, r.1["field"].as_str())
}

#[test]
fn a_text_field_given_a_number_a_boolean_or_null_is_refused_naming_the_field() {
    let h = Hippo::start(&[]).expect("hippo");
    let r = h.post("/api/apps", &json!({"name": true, "tag": "cart"}));
    assert_eq!(field(&r), (422, Some("name")), "{}", r.1);
    assert!(
        r.1["message"]
            .as_str()
            .unwrap_or_default()
            .contains("string")
    );
    let r = h.post("/api/apps", &json!({"name": "Cart", "tag": 7}));
    assert_eq!(field(&r), (422, Some("tag")), "{}", r.1);
    let r = h.post(
        "/api/apps",
        &json!({"name": "Cart", "tag": "cart", "description": null}),
    );
    assert_eq!(field(&r), (422, Some("description")), "{}", r.1);
    let r = h.post("/api/apps", &json!({"tag": "cart"}));
    assert_eq!(field(&r), (422, Some("name")), "{}", r.1);
    let r = h.post(
        "/api/users",
        &json!({"username": "u", "password": PASSWORD, "roles": [{"role_id": "1"}]}),
    );
    assert_eq!(field(&r), (422, Some("roles[0].role_id")), "{}", r.1);
    // Nothing was created.
    let (_, apps) = h.get("/api/apps");
    assert_eq!(apps, json!([]));
    let r = h.post_raw("/api/apps", "{not json");
    assert_eq!(r.0, 400, "{}", r.1);
}

#[test]
fn every_text_field_of_a_request_states_its_maximum_and_a_longer_value_is_refused_naming_it() {
    let h = Hippo::start(&[]).expect("hippo");
    // The spec: every string property of every request body has a maxLength.
    let (_, spec) = h.get("/openapi.json");
    let schemas = spec["components"]["schemas"].as_object().expect("schemas");
    let mut unbounded = Vec::new();
    for (name, schema) in schemas {
        if !(name.ends_with("In") || name.ends_with("Patch") || name.ends_with("Channel")) {
            continue;
        }
        for (prop, s) in schema["properties"].as_object().into_iter().flatten() {
            let s = if s["type"] == "array" { &s["items"] } else { s };
            if s["type"] == "string" && s.get("enum").is_none() && s.get("maxLength").is_none() {
                unbounded.push(format!("{name}.{prop}"));
            }
        }
    }
    assert!(unbounded.is_empty(), "no maxLength: {unbounded:?}");

    let long = |n: usize| "x".repeat(n);
    let r = h.post(
        "/api/environments",
        &json!({"name": "Prod", "tag": "prod", "description": long(1001)}),
    );
    assert_eq!(field(&r), (422, Some("description")), "{}", r.1);
    let r = h.post(
        "/api/environments",
        &json!({"name": long(101), "tag": "prod"}),
    );
    assert_eq!(field(&r), (422, Some("name")), "{}", r.1);
    // Checked before anything else: the ids need not exist for the limit to answer.
    let config = |extra: Value| {
        let mut body = json!({"app_id": 1, "environment_id": 1, "repo_url": "/srv/repo.git",
            "host_ids": [1], "deploy_path": "/srv/www", "versions_path": "/srv/versions"});
        for (k, v) in extra.as_object().expect("object") {
            body[k] = v.clone();
        }
        h.post("/api/release-configs", &body)
    };
    let r = config(json!({"hooks": {"after_checkout": long(65537)}}));
    assert_eq!(field(&r), (422, Some("hooks.after_checkout")), "{}", r.1);
    let r = config(json!({"variables": format!("A={}", long(999_999))}));
    assert_eq!(field(&r), (422, Some("variables")), "{}", r.1);
    let r = config(json!({"filter": long(65537)}));
    assert_eq!(field(&r), (422, Some("filter")), "{}", r.1);
    let r = config(json!({"keep_versions": 101}));
    assert_eq!(field(&r), (422, Some("keep_versions")), "{}", r.1);
    let r =
        config(json!({"notice_channels": [{"type": "webhook", "url": long(2049), "secret": "s"}]}));
    assert_eq!(field(&r), (422, Some("notice_channels[0].url")), "{}", r.1);
    let r = config(json!({"notice_channels": [{"type": "pigeon"}]}));
    assert_eq!(field(&r), (422, Some("notice_channels[0].type")), "{}", r.1);
}

#[test]
fn a_body_over_the_limit_gets_413_and_a_body_that_is_not_json_415() {
    let h = Hippo::start(&[("HIPPO_MAX_BODY_BYTES", "4096")]).expect("hippo");
    let big = json!({"name": "Prod", "tag": "prod", "description": "x".repeat(5000)});
    let r = h.post("/api/environments", &big);
    assert_eq!(
        (r.0, r.1["error"].as_str()),
        (413, Some("payload_too_large")),
        "{}",
        r.1
    );
    // Without a Content-Length (chunked), the body is cut off at the limit while read.
    let http = client_builder().build().expect("client");
    let resp = http
        .post(format!("{}/api/environments", h.base))
        .bearer_auth(&h.token)
        .header("content-type", "application/json")
        .body(reqwest::blocking::Body::new(std::io::Cursor::new(
            big.to_string().into_bytes(),
        )))
        .send()
        .expect("send");
    assert_eq!(resp.status().as_u16(), 413);
    let resp = http
        .post(format!("{}/api/environments", h.base))
        .bearer_auth(&h.token)
        .header("content-type", "text/plain")
        .body(r#"{"name": "Prod", "tag": "prod"}"#)
        .send()
        .expect("send");
    assert_eq!(resp.status().as_u16(), 415);
    let body: Value = resp.json().expect("problem");
    assert_eq!(body["error"], "unsupported_media_type");
    let (_, envs) = h.get("/api/environments");
    assert_eq!(envs, json!([]));
}

#[test]
fn a_method_a_path_does_not_take_gets_405_with_the_methods_it_does() {
    let h = Hippo::start(&[]).expect("hippo");
    let http = client_builder().build().expect("client");
    let resp = http
        .patch(format!("{}/api/environments", h.base))
        .bearer_auth(&h.token)
        .send()
        .expect("send");
    assert_eq!(resp.status().as_u16(), 405);
    let allow = resp
        .headers()
        .get("allow")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(allow, "GET, POST");
    let resp = http
        .post(format!("{}/api/releases/1/events", h.base))
        .bearer_auth(&h.token)
        .send()
        .expect("send");
    assert_eq!(resp.status().as_u16(), 405);
    assert_eq!(
        resp.headers().get("allow").and_then(|v| v.to_str().ok()),
        Some("GET")
    );
}

#[test]
fn logging_out_ends_the_token_at_once() {
    let h = Hippo::start(&[]).expect("hippo");
    let token = h.login("admin", hippo_e2e::hippo::ADMIN_PASSWORD);
    assert_eq!(h.call(&token, "GET", "/api/me", &Value::Null).0, 200);
    let (s, _) = h.call(&token, "POST", "/api/auth/logout", &Value::Null);
    assert_eq!(s, 204);
    assert_eq!(h.call(&token, "GET", "/api/me", &Value::Null).0, 401);
    // Other sessions go on.
    assert_eq!(h.get("/api/me").0, 200);
}

#[test]
fn me_tells_a_scoped_user_what_they_may_do_in_each_environment_and_for_each_app() {
    let h = Hippo::start(&[]).expect("hippo");
    let id = |v: Value| v["id"].as_i64().expect("id");
    let prod = id(h.ok(
        "/api/environments",
        &json!({"name": "Production", "tag": "prod"}),
        201,
    ));
    let test = id(h.ok(
        "/api/environments",
        &json!({"name": "Test", "tag": "test"}),
        201,
    ));
    let cart = id(h.ok("/api/apps", &json!({"name": "Cart", "tag": "cart"}), 201));
    let shop = id(h.ok("/api/apps", &json!({"name": "Shop", "tag": "shop"}), 201));
    let dev = id(h.ok(
        "/api/roles",
        &json!({"name": "developer", "permissions": ["request"]}),
        201,
    ));
    let ops = id(h.ok(
        "/api/roles",
        &json!({"name": "ops", "permissions": ["manage_hosts", "release"]}),
        201,
    ));
    h.ok(
        "/api/users",
        &json!({"username": "dana", "password": PASSWORD, "roles": [
            {"role_id": dev, "environment_id": test},
            {"role_id": ops, "environment_id": prod, "app_id": cart},
        ]}),
        201,
    );
    let token = h.login("dana", PASSWORD);
    let (s, me) = h.call(&token, "GET", "/api/me", &Value::Null);
    assert_eq!(s, 200, "{me}");
    assert_eq!(me["username"], "dana");
    assert_eq!(me["is_admin"], false);
    assert_eq!(me["everywhere"], json!([]));
    assert_eq!(me["roles"][0]["role_name"], "developer");
    assert_eq!(me["roles"][0]["environment_name"], "Test");
    assert!(me["roles"][0].get("app_id").is_none(), "{me}");
    assert_eq!(me["roles"][1]["app_name"], "Cart");
    let envs = me["environments"].as_array().expect("environments");
    assert_eq!(envs.len(), 2, "{me}");
    let of = |env: i64| {
        envs.iter()
            .find(|e| e["environment_id"] == env)
            .unwrap_or_else(|| panic!("{env} in {me}"))
    };
    // In prod: only for cart (hosts are per environment: an app-scoped role does not cover them).
    assert_eq!(of(prod)["permissions"], json!([]));
    assert_eq!(
        of(prod)["apps"],
        json!([{"app_id": cart, "app_name": "Cart", "permissions": ["release"]}])
    );
    // In test: request, for every app.
    assert_eq!(of(test)["permissions"], json!(["request"]));
    let apps: Vec<i64> = of(test)["apps"]
        .as_array()
        .expect("apps")
        .iter()
        .map(|a| a["app_id"].as_i64().unwrap_or(0))
        .collect();
    assert_eq!(apps, vec![cart, shop]);
    let (_, admin) = h.get("/api/me");
    assert_eq!(admin["is_admin"], true);
    assert!(
        admin["everywhere"]
            .as_array()
            .is_some_and(|p| p.contains(&json!("admin")))
    );
}

#[test]
fn the_releases_list_pages_filters_and_counts_only_what_the_caller_may_see_with_names() {
    let lab = Lab::new(1, &[]);
    let h = &lab.hippo;
    let id = |v: Value| v["id"].as_i64().expect("id");
    let test = id(h.ok(
        "/api/environments",
        &json!({"name": "Test", "tag": "test"}),
        201,
    ));
    let test_host = id(h.ok(
        "/api/hosts",
        &json!({"environment_id": test, "name": "t-1", "addr": "127.0.0.1", "port": 22}),
        201,
    ));
    let prod_config = lab.config(json!({"review_enabled": true}));
    let test_config = lab.config(json!({"environment_id": test, "host_ids": [test_host]}));
    let started = chrono_now(h);
    let request = |config: i64, name: &str| -> i64 {
        id(h.ok(
            "/api/releases",
            &json!({"config_id": config, "name": name, "branch": "main"}),
            201,
        ))
    };
    for i in 0..5 {
        request(prod_config, &format!("prod fix {i}"));
    }
    let rejected = request(prod_config, "risky change");
    h.ok(
        "/api/users",
        &json!({"username": "rita", "password": PASSWORD, "is_admin": true}),
        201,
    );
    let rita = h.login("rita", PASSWORD);
    let (s, out) = h.call(
        &rita,
        "POST",
        &format!("/api/releases/{rejected}/reject"),
        &json!({"comment": "not today"}),
    );
    assert_eq!(s, 200, "{out}");
    request(test_config, "test fix 1");
    request(test_config, "test fix 2");

    let (s, page) = h.get("/api/releases?per_page=3&page=2");
    assert_eq!(s, 200, "{page}");
    assert_eq!(page["total"], 8);
    assert_eq!(page["page"], 2);
    assert_eq!(page["items"].as_array().map(Vec::len), Some(3));
    assert_eq!(page["counts"]["all"], 8);
    assert_eq!(page["counts"]["pending_review"], 5);
    assert_eq!(page["counts"]["rejected"], 1);
    assert_eq!(page["counts"]["approved"], 2);
    let first = &page["items"][0];
    assert_eq!(first["requested_by_name"], "admin");
    assert_eq!(first["app_name"], "Cart");
    assert_eq!(first["environment_name"], "Production");
    assert!(first.get("reviewed_by").is_none(), "{first}");

    // Filters: status (the counts stay those of every status), environment, text, requester.
    let (_, p) = h.get("/api/releases?status=rejected");
    assert_eq!(
        (p["total"].clone(), p["counts"]["all"].clone()),
        (json!(1), json!(8))
    );
    assert_eq!(p["items"][0]["reviewed_by_name"], "rita");
    assert_eq!(p["items"][0]["review_comment"], "not today");
    // Several statuses at once (the console's tabs: "rejected / cancelled", "running" = queued
    // or running).
    let (s, p) = h.get("/api/releases?status=rejected&status=approved&status=cancelled");
    assert_eq!(s, 200, "{p}");
    assert_eq!(
        (p["total"].clone(), p["counts"]["all"].clone()),
        (json!(3), json!(8))
    );
    let (s, p) = h.get("/api/releases?status=bogus");
    assert_eq!(s, 400, "{p}");
    // A list shows no config snapshot; one release shows the config it was requested with
    // (no secrets).
    assert!(p.get("snapshot").is_none());
    let (s, one) = h.get(&format!("/api/releases/{rejected}"));
    assert_eq!(s, 200, "{one}");
    assert_eq!(one["snapshot"]["hooks"]["before_release"], "", "{one}");
    assert_eq!(one["snapshot"]["keep_versions"], 2, "{one}");
    assert!(one["snapshot"].get("repo_token").is_none(), "{one}");
    // The config changes afterwards: the release still shows what it was requested with.
    let changed = lab.config_body(json!({"review_enabled": true, "keep_versions": 4,
        "hooks": {"before_release": "echo changed"}}));
    let (s, out) = h.call(
        &h.token,
        "PUT",
        &format!("/api/release-configs/{prod_config}"),
        &changed,
    );
    assert_eq!(s, 200, "{out}");
    let (_, one) = h.get(&format!("/api/releases/{rejected}"));
    assert_eq!(one["snapshot"]["keep_versions"], 2, "{one}");
    assert_eq!(one["snapshot"]["hooks"]["before_release"], "", "{one}");
    let (_, p) = h.get(&format!("/api/releases?environment_id={test}"));
    assert_eq!(p["total"], 2);
    assert_eq!(p["items"][0]["environment_name"], "Test");
    let (_, p) = h.get("/api/releases?q=FIX%202");
    let names: Vec<&str> = p["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(names, ["test fix 2", "prod fix 2"]);
    let (_, p) = h.get("/api/releases?q=%25");
    assert_eq!(
        p["total"], 0,
        "a % in the text is a character, not a wildcard"
    );
    let (_, p) = h.get("/api/releases?requested_by=1&since=2000-01-01T00:00:00Z");
    assert_eq!(p["total"], 8);
    let (_, p) = h.get("/api/releases?requested_by=2");
    assert_eq!(p["total"], 0);
    let (_, p) = h.get(&format!("/api/releases?until={started}"));
    assert_eq!(p["total"], 0);
    assert_eq!(h.get("/api/releases?since=yesterday").0, 400);
    assert_eq!(h.get("/api/releases?per_page=201").0, 400);

    // A user who holds a role in test only: pages and totals count what they may see.
    let dev = id(h.ok(
        "/api/roles",
        &json!({"name": "developer", "permissions": ["request"]}),
        201,
    ));
    h.ok(
        "/api/users",
        &json!({"username": "dana", "password": PASSWORD, "roles": [{"role_id": dev, "environment_id": test}]}),
        201,
    );
    let token = h.login("dana", PASSWORD);
    let (_, p) = h.call(&token, "GET", "/api/releases?per_page=1", &Value::Null);
    assert_eq!(p["total"], 2, "{p}");
    assert_eq!(p["counts"]["all"], 2);
    assert_eq!(p["items"][0]["environment_id"], test);
    let (s, _) = h.call(
        &token,
        "GET",
        &format!("/api/releases/{rejected}"),
        &Value::Null,
    );
    assert_eq!(
        s, 404,
        "a release of another environment is not there for them"
    );
}

/// The server's clock, as it stamps records (RFC 3339, UTC).
fn chrono_now(h: &Hippo) -> String {
    let (_, env) = h.post(
        "/api/environments",
        &json!({"name": "Clock", "tag": format!("clock-{}", std::process::id())}),
    );
    let at = env["created_at"].as_str().expect("created_at").to_owned();
    h.delete(&format!("/api/environments/{}", env["id"]));
    at
}

#[test]
fn an_event_stream_resumed_at_its_final_event_ends_at_once_and_the_event_log_has_the_same_events() {
    let lab = Lab::new(1, &[]);
    let h = &lab.hippo;
    let config = lab.config(json!({}));
    let r = lab.request(config, "ship", json!({"branch": "main"}));
    let (release, events) = h.run_release(r);
    assert_eq!(release["status"], "succeeded", "{release}");
    let last = events.last().expect("events")["id"].as_i64().expect("id");
    let t = Instant::now();
    let resumed = h
        .events(r, Some(last), Duration::from_secs(20))
        .expect("stream");
    assert!(resumed.is_empty(), "{resumed:?}");
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "the resumed stream stayed open {:?}",
        t.elapsed()
    );
    // Resumed one event earlier: just the final one.
    let before = events[events.len() - 2]["id"].as_i64().expect("id");
    let tail = h
        .events(r, Some(before), Duration::from_secs(20))
        .expect("stream");
    assert_eq!(tail.len(), 1);
    assert_eq!(tail[0]["id"], last);

    let (s, log) = h.get(&format!("/api/releases/{r}/event-log"));
    assert_eq!(s, 200, "{log}");
    assert_eq!(log["finished"], true);
    assert_eq!(log["events"].as_array().map(Vec::len), Some(events.len()));
    assert_eq!(log["events"][0], events[0]);
    let (_, after) = h.get(&format!("/api/releases/{r}/event-log?after={before}"));
    assert_eq!(after["events"].as_array().map(Vec::len), Some(1));

    // A rejected release with no events: its stream ends at once too.
    let pending = h.ok(
        "/api/releases",
        &json!({"config_id": lab.config(json!({"review_enabled": true, "app_id": new_app(h)})), "name": "no", "branch": "main"}),
        201,
    );
    let pid = pending["id"].as_i64().expect("id");
    h.ok(
        "/api/users",
        &json!({"username": "rita", "password": PASSWORD, "is_admin": true}),
        201,
    );
    let rita = h.login("rita", PASSWORD);
    let (s, out) = h.call(
        &rita,
        "POST",
        &format!("/api/releases/{pid}/reject"),
        &json!({"comment": "no"}),
    );
    assert_eq!(s, 200, "{out}");
    let t = Instant::now();
    assert!(
        h.events(pid, None, Duration::from_secs(20))
            .expect("stream")
            .is_empty()
    );
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
}

fn new_app(h: &Hippo) -> i64 {
    h.ok("/api/apps", &json!({"name": "Other", "tag": "other"}), 201)["id"]
        .as_i64()
        .expect("id")
}

#[test]
fn one_changes_ones_own_password_only_with_the_current_one_and_then_logs_in_again() {
    let h = Hippo::start(&[]).expect("hippo");
    let me = h.get("/api/me").1["id"].clone();
    // Not through the admin's reset: that needs no current password.
    let (s, body) = h.call(
        &h.token,
        "PATCH",
        &format!("/api/users/{me}"),
        &json!({"password": "a brand new password"}),
    );
    assert_eq!(
        (s, body["error"].as_str()),
        (409, Some("own_password")),
        "{body}"
    );
    let wrong = h.post(
        "/api/me/password",
        &json!({"current_password": "not it at all", "new_password": "a brand new password"}),
    );
    assert_eq!(
        field(&wrong),
        (422, Some("current_password")),
        "{}",
        wrong.1
    );
    let short = h.post(
        "/api/me/password",
        &json!({"current_password": hippo_e2e::hippo::ADMIN_PASSWORD, "new_password": "short"}),
    );
    assert_eq!(field(&short), (422, Some("new_password")), "{}", short.1);
    let (s, _) = h.post(
        "/api/me/password",
        &json!({"current_password": hippo_e2e::hippo::ADMIN_PASSWORD, "new_password": "a brand new password"}),
    );
    assert_eq!(s, 204);
    assert_eq!(
        h.get("/api/me").0,
        401,
        "the session ended with the old password"
    );
    let token = h.login("admin", "a brand new password");
    assert_eq!(h.call(&token, "GET", "/api/me", &Value::Null).0, 200);
}
