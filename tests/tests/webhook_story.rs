//! Git webhooks: a push on GitHub, GitLab or Gitee (payloads in the providers' documented
//! formats, built here) becomes a release request by `webhook`; duplicates, other branches and
//! bad signatures do not; with review off and auto-run on, the pushed commit ends live.
use base64::Engine;
use hippo_e2e::lab::Lab;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use std::time::Duration;

fn hmac_hex(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// A GitHub `push` event body (https://docs.github.com/webhooks/webhook-events-and-payloads#push).
fn github_push(git_ref: &str, before: &str, after: &str) -> String {
    json!({
        "ref": git_ref, "before": before, "after": after, "created": false, "deleted": false,
        "forced": false, "base_ref": null, "compare": "https://github.com/shop/cart/compare/x...y",
        "commits": [{"id": after, "message": "change", "timestamp": "2026-12-01T02:00:00Z",
                     "author": {"name": "Test Author", "email": "a@example.com"}}],
        "head_commit": {"id": after, "message": "change"},
        "repository": {"id": 1, "name": "cart", "full_name": "shop/cart"},
        "pusher": {"name": "alice", "email": "a@example.com"},
        "sender": {"login": "alice", "id": 7},
    })
    .to_string()
}

/// A GitLab push hook body (object_kind `push`, `checkout_sha`).
fn gitlab_push(git_ref: &str, before: &str, after: &str) -> String {
    json!({
        "object_kind": "push", "event_name": "push", "before": before, "after": after,
        "ref": git_ref, "checkout_sha": after, "user_name": "Alice", "project_id": 15,
        "project": {"name": "cart", "path_with_namespace": "shop/cart"},
        "commits": [{"id": after, "message": "change", "title": "change"}],
        "total_commits_count": 1,
    })
    .to_string()
}

/// A Gitee WebHook push body (`hook_name: push_hooks`).
fn gitee_push(git_ref: &str, before: &str, after: &str) -> String {
    json!({
        "hook_name": "push_hooks", "ref": git_ref, "before": before, "after": after,
        "created": false, "deleted": false, "total_commits_count": 1,
        "commits": [{"id": after, "message": "change"}],
        "repository": {"full_name": "shop/cart"}, "pusher": {"name": "alice"},
    })
    .to_string()
}

struct Sender {
    http: reqwest::blocking::Client,
    base: String,
}

impl Sender {
    fn post(&self, path: &str, headers: &[(&str, String)], body: &str) -> (u16, Value) {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body.to_owned());
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let r = req.send().expect("send");
        let status = r.status().as_u16();
        let text = r.text().unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

fn releases_of(lab: &Lab, config: i64) -> Vec<Value> {
    let (_, page) = lab.hippo.get("/api/releases?per_page=200");
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|r| r["config_id"] == config)
        .cloned()
        .collect()
}

#[test]
fn a_signed_push_to_main_requests_one_release_and_other_deliveries_are_ignored_or_refused() {
    let lab = Lab::new(1, &[]);
    let h = &lab.hippo;
    let config = lab.config(json!({"review_enabled": true}));
    // Nobody can take the webhook requester's name before the first delivery makes it.
    let (s, refused) = h.post(
        "/api/users",
        &json!({"username": "Webhook", "password": "a-long-password-1", "roles": []}),
    );
    assert_eq!(
        (s, refused["field"].as_str()),
        (422, Some("username")),
        "{refused}"
    );
    let send = Sender {
        http: hippo_e2e::hippo::client_builder().build().expect("client"),
        base: h.base.clone(),
    };
    let (s, hook) = h.put(
        &format!("/api/release-configs/{config}/webhook"),
        &json!({"provider": "github", "rule_kind": "branch", "pattern": "main"}),
    );
    assert_eq!(s, 200, "{hook}");
    let path = hook["path"].as_str().expect("path shown once").to_owned();
    let secret = hook["secret"]
        .as_str()
        .expect("secret shown once")
        .to_owned();
    let (_, again) = h.get(&format!("/api/release-configs/{config}/webhook"));
    assert!(
        again.get("path").is_none() && again.get("secret").is_none(),
        "{again}"
    );
    assert!(!again.to_string().contains(&secret));

    let main = lab.repo.head("main").expect("main");
    let feature = lab.repo.head("feature").expect("feature");
    let zero = "0".repeat(40);

    // GitHub: signed push to main → one request of that commit by `webhook`, pending review.
    let body = github_push("refs/heads/main", &zero, &main);
    let signed = |body: &str, delivery: &str| {
        vec![
            ("x-github-event", "push".to_owned()),
            ("x-github-delivery", delivery.to_owned()),
            (
                "x-hub-signature-256",
                format!("sha256={}", hmac_hex(&secret, body.as_bytes())),
            ),
        ]
    };
    let (s, answer) = send.post(&path, &signed(&body, "d-1"), &body);
    assert_eq!(s, 200, "{answer}");
    assert_eq!(answer["outcome"], "accepted", "{answer}");
    let rid = answer["release_id"].as_i64().expect("release id");
    let (_, release) = h.get(&format!("/api/releases/{rid}"));
    assert_eq!(release["commit_id"], main.as_str(), "{release}");
    assert_eq!(release["requested_by_name"], "webhook", "{release}");
    assert_eq!(release["status"], "pending_review", "{release}");
    assert_eq!(release["ref_name"], "main", "{release}");

    // The same delivery again creates none.
    let (s, answer) = send.post(&path, &signed(&body, "d-1"), &body);
    assert_eq!(
        (s, &answer["outcome"]),
        (200, &json!("ignored")),
        "{answer}"
    );
    assert_eq!(releases_of(&lab, config).len(), 1);

    // A wrong signature is 401 (and recorded).
    let mut bad = signed(&body, "d-2");
    bad[2].1 = format!("sha256={}", hmac_hex("not-the-secret", body.as_bytes()));
    let (s, answer) = send.post(&path, &bad, &body);
    assert_eq!(s, 401, "{answer}");
    let (s, _) = send.post(&path, &signed(&body, "d-3")[..2], &body);
    assert_eq!(s, 401);

    // A push to another branch is ignored, and a ping too.
    let other = github_push("refs/heads/feature", &zero, &feature);
    let (s, answer) = send.post(&path, &signed(&other, "d-4"), &other);
    assert_eq!(
        (s, &answer["outcome"]),
        (200, &json!("ignored")),
        "{answer}"
    );
    assert!(
        answer["reason"]
            .as_str()
            .expect("reason")
            .contains("feature"),
        "{answer}"
    );
    let ping = json!({"zen": "Keep it logically awesome.", "hook_id": 1}).to_string();
    let mut ping_headers = signed(&ping, "d-5");
    ping_headers[0].1 = "ping".into();
    let (s, answer) = send.post(&path, &ping_headers, &ping);
    assert_eq!(
        (s, &answer["outcome"]),
        (200, &json!("ignored")),
        "{answer}"
    );
    // An unknown URL is 404; a huge body is 413.
    let (s, _) = send.post("/api/hooks/git/hpo_nothing", &signed(&body, "d-6"), &body);
    assert_eq!(s, 404);
    let huge = format!("{{\"x\": \"{}\"}}", "a".repeat(2 * 1024 * 1024));
    let (s, _) = send.post(&path, &signed(&huge, "d-7"), &huge);
    assert_eq!(s, 413);
    assert_eq!(releases_of(&lab, config).len(), 1);

    // GitLab: the secret token in X-Gitlab-Token. Changing the provider keeps URL and secret.
    let (s, hook) = h.put(
        &format!("/api/release-configs/{config}/webhook"),
        &json!({"provider": "gitlab", "rule_kind": "branch", "pattern": "ma*"}),
    );
    assert_eq!(s, 200, "{hook}");
    assert!(hook.get("secret").is_none(), "{hook}");
    let body = gitlab_push("refs/heads/main", &zero, &main);
    let gitlab = |token: &str, uuid: &str| {
        vec![
            ("x-gitlab-event", "Push Hook".to_owned()),
            ("x-gitlab-token", token.to_owned()),
            ("x-gitlab-event-uuid", uuid.to_owned()),
        ]
    };
    let (s, answer) = send.post(&path, &gitlab(&secret, "g-1"), &body);
    assert_eq!(
        (s, &answer["outcome"]),
        (200, &json!("accepted")),
        "{answer}"
    );
    let (s, answer) = send.post(&path, &gitlab(&secret, "g-1"), &body);
    assert_eq!(
        (s, &answer["outcome"]),
        (200, &json!("ignored")),
        "{answer}"
    );
    let (s, _) = send.post(&path, &gitlab("wrong", "g-2"), &body);
    assert_eq!(s, 401);
    let other = gitlab_push("refs/heads/feature", &zero, &feature);
    let (s, answer) = send.post(&path, &gitlab(&secret, "g-3"), &other);
    assert_eq!(
        (s, &answer["outcome"]),
        (200, &json!("ignored")),
        "{answer}"
    );
    assert_eq!(releases_of(&lab, config).len(), 2);

    // Gitee: the signature mode (timestamp + "\n" + secret) and the password mode.
    h.put(
        &format!("/api/release-configs/{config}/webhook"),
        &json!({"provider": "gitee", "rule_kind": "branch", "pattern": "main"}),
    );
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_millis()
        .to_string();
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(format!("{ts}\n{secret}").as_bytes());
    let sign = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let body = gitee_push("refs/heads/main", &zero, &main);
    let gitee = |token: &str, ts: Option<&str>| {
        let mut v = vec![
            ("x-gitee-event", "Push Hook".to_owned()),
            ("x-gitee-token", token.to_owned()),
        ];
        if let Some(ts) = ts {
            v.push(("x-gitee-timestamp", ts.to_owned()));
        }
        v
    };
    let (s, answer) = send.post(&path, &gitee(&sign, Some(&ts)), &body);
    assert_eq!(
        (s, &answer["outcome"]),
        (200, &json!("accepted")),
        "{answer}"
    );
    // No delivery id from Gitee: the same body again is the same delivery.
    let (s, answer) = send.post(&path, &gitee(&sign, Some(&ts)), &body);
    assert_eq!(
        (s, &answer["outcome"]),
        (200, &json!("ignored")),
        "{answer}"
    );
    let body2 = gitee_push("refs/heads/main", &main, &main);
    let (s, answer) = send.post(&path, &gitee(&secret, None), &body2);
    assert_eq!(
        (s, &answer["outcome"]),
        (200, &json!("accepted")),
        "{answer}"
    );
    let (s, _) = send.post(&path, &gitee("wrong", Some(&ts)), &body2);
    assert_eq!(s, 401);
    assert_eq!(releases_of(&lab, config).len(), 4);

    // Every delivery is listed: accepted, ignored and why, refused.
    let (s, list) = h.get(&format!("/api/release-configs/{config}/webhook/deliveries"));
    assert_eq!(s, 200, "{list}");
    let list = list.as_array().expect("deliveries");
    let count = |o: &str| list.iter().filter(|d| d["outcome"] == o).count();
    assert_eq!(count("accepted"), 4, "{list:#?}");
    assert_eq!(count("refused"), 4, "{list:#?}");
    assert!(count("ignored") >= 6, "{list:#?}");
    assert!(
        list.iter()
            .any(|d| d["reason"].as_str().unwrap_or("").contains("signature")),
        "{list:#?}"
    );

    // Rotating: the old URL stops working.
    let (s, rotated) = h.post(
        &format!("/api/release-configs/{config}/webhook/rotate"),
        &Value::Null,
    );
    assert_eq!(s, 200, "{rotated}");
    let (s, _) = send.post(&path, &gitee(&secret, None), &body2);
    assert_eq!(s, 404);
    assert_ne!(rotated["path"].as_str(), Some(path.as_str()));
}

#[test]
fn with_review_off_and_auto_run_on_the_pushed_commit_ends_live_on_the_hosts() {
    let lab = Lab::new(2, &[]);
    let h = &lab.hippo;
    let config = lab.config(json!({"review_enabled": false}));
    let (s, hook) = h.put(
        &format!("/api/release-configs/{config}/webhook"),
        &json!({"provider": "generic", "rule_kind": "branch", "pattern": "main", "auto_run": true}),
    );
    assert_eq!(s, 200, "{hook}");
    let path = hook["path"].as_str().expect("path").to_owned();
    let secret = hook["secret"].as_str().expect("secret").to_owned();
    let main = lab.repo.head("main").expect("main");
    let body = json!({"branch": "main", "commit": main}).to_string();
    let send = Sender {
        http: hippo_e2e::hippo::client_builder().build().expect("client"),
        base: h.base.clone(),
    };
    let (s, answer) = send.post(
        &path,
        &[
            ("x-hippo-delivery", "push-1".to_owned()),
            (
                "x-hippo-signature-256",
                format!("sha256={}", hmac_hex(&secret, body.as_bytes())),
            ),
        ],
        &body,
    );
    assert_eq!(
        (s, &answer["outcome"]),
        (200, &json!("accepted")),
        "{answer}"
    );
    assert!(
        answer["reason"]
            .as_str()
            .expect("reason")
            .contains("queued"),
        "{answer}"
    );
    let rid = answer["release_id"].as_i64().expect("id");
    h.events(rid, None, Duration::from_secs(180))
        .expect("events to the end");
    let (_, release) = h.get(&format!("/api/releases/{rid}"));
    assert_eq!(release["status"], "succeeded", "{release}\n{}", h.log());
    assert_eq!(release["commit_id"], main.as_str());
    for host in &lab.hosts {
        let live = lab.live(host).expect("live version");
        assert!(
            live.to_string_lossy().contains(&main[..7]),
            "{}",
            live.display()
        );
    }
}
