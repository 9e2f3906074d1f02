//! Notices: a release with review on tells a real webhook receiver (which checks Hippo's
//! signature) about every step; a receiver that hangs does not delay the release, and every
//! attempt, failed ones included, is on the release.
use hippo_e2e::lab::Lab;
use hippo_e2e::listeners::{HangingListener, WebhookListener};
use hippo_e2e::proc::wait_until;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

#[test]
fn notices_reach_a_signed_webhook_and_a_hanging_one_neither_delays_the_release_nor_goes_unrecorded()
{
    // The receivers are on loopback: notices reach them only because the allow-list says so.
    let lab = Lab::new(
        1,
        &[
            ("HIPPO_NOTICE_TIMEOUT_SECS", "1"),
            ("HIPPO_INTERNAL_ALLOWLIST", "127.0.0.1"),
        ],
    );
    let h = &lab.hippo;
    let hook = WebhookListener::start("hook-secret-123").expect("listener");
    let slow = HangingListener::start().expect("listener");
    let config = lab.config(json!({"review_enabled": true, "notice_channels": [
        {"type": "webhook", "url": hook.url, "secret": "hook-secret-123"},
        {"type": "webhook", "url": slow.url, "secret": "other-secret-456"},
    ]}));
    // Read back without secrets.
    let (s, channels) = h.get(&format!("/api/release-configs/{config}/notice-channels"));
    assert_eq!(s, 200, "{channels}");
    assert!(
        !channels.to_string().contains("hook-secret-123"),
        "{channels}"
    );
    assert_eq!(channels[0]["secret"], "***", "{channels}");
    // A bad channel is refused with the field named.
    let mut bad =
        lab.config_body(json!({"notice_channels": [{"type": "webhook", "url": "ftp://x"}]}));
    bad["app_id"] = json!(lab.app_id);
    let (s, body) = h.put(&format!("/api/release-configs/{config}"), &bad);
    assert_eq!(
        (s, body["field"].as_str()),
        (422, Some("notice_channels")),
        "{body}"
    );

    let role = h.ok(
        "/api/roles",
        &json!({"name": "reviewer", "permissions": ["review"]}),
        201,
    )["id"]
        .clone();
    h.ok("/api/users", &json!({"username": "rev", "password": "long enough password", "roles": [{"role_id": role}]}), 201);
    let rev = h.login("rev", "long enough password");
    let r = h.ok(
        "/api/releases",
        &json!({"config_id": config, "name": "with notices", "branch": "main"}),
        201,
    );
    let id = r["id"].as_i64().expect("id");
    let (s, _) = h.call(
        &rev,
        "POST",
        &format!("/api/releases/{id}/approve"),
        &json!({"comment": "ship it"}),
    );
    assert_eq!(s, 200);

    let started = Instant::now();
    let (release, _) = h.run_release(id);
    let took = started.elapsed();
    assert_eq!(release["status"], "succeeded", "{release}");
    // The hanging receiver costs 3 attempts x 1 s + 1 s + 4 s per notice; the release did not wait.
    assert!(took < Duration::from_secs(7), "the release took {took:?}");

    // Every notice arrives at the good receiver, signed; every attempt is on the release.
    let attempts = wait_until(
        "three failed attempts of every notice to the hanging receiver",
        Duration::from_secs(60),
        || {
            let (_, attempts) = h.get(&format!("/api/releases/{id}/notices"));
            format!("attempts so far: {attempts:#}\n{}", h.log())
        },
        || {
            let (_, attempts) = h.get(&format!("/api/releases/{id}/notices"));
            let list = attempts.as_array().cloned().unwrap_or_default();
            let failed_slow = |n: &str| {
                list.iter()
                    .filter(|a| a["channel_index"] == 1 && a["notice"] == n && a["ok"] == false)
                    .count()
            };
            ["requested", "approved", "started", "succeeded"]
                .iter()
                .all(|n| failed_slow(n) == 3)
                .then_some(list)
        },
    );
    for n in ["requested", "approved", "started", "succeeded"] {
        let ok: Vec<&Value> = attempts
            .iter()
            .filter(|a| a["channel_index"] == 0 && a["notice"] == n && a["ok"] == true)
            .collect();
        assert_eq!(ok.len(), 1, "{n}: {attempts:#?}");
    }
    let timeouts = attempts.iter().filter(|a| a["channel_index"] == 1);
    for a in timeouts {
        assert!(a["duration_ms"].as_i64().is_some_and(|d| d < 3000), "{a}");
        assert!(a["error"].as_str().is_some_and(|e| !e.is_empty()), "{a}");
    }
    assert!(
        !serde_json::to_string(&attempts)
            .expect("json")
            .contains("other-secret-456")
    );
    let got = hook.received();
    assert!(got.iter().all(|r| r.signature_ok), "{got:#?}");
    // Each exactly once (workers send them, so the order of arrival is not guaranteed).
    let mut kinds: Vec<&str> = got.iter().filter_map(|r| r.body["kind"].as_str()).collect();
    kinds.sort();
    assert_eq!(
        kinds,
        ["approved", "requested", "started", "succeeded"],
        "{got:#?}"
    );
    let approved = got
        .iter()
        .find(|r| r.body["kind"] == "approved")
        .expect("approved");
    assert_eq!(approved.body["actor"], "rev");
    assert_eq!(approved.body["comment"], "ship it");
    assert_eq!(approved.body["release_name"], "with notices");

    // A failing release: the notice names the failed host and why.
    let mut body =
        lab.config_body(json!({"review_enabled": false, "hooks": {"before_release": "exit 3\n",
            // Hippo's own settings never reach a user's script on the release server.
            "after_checkout": "if env | grep -Eq '^HIPPO_(ADMIN_PASSWORD|MASTER_KEY|DATABASE_URL|REDIS_URL|DATA_DIR)='; then echo LEAKED; fi\necho env checked\n"}}));
    body["app_id"] = json!(lab.app_id);
    let (s, out) = h.put(&format!("/api/release-configs/{config}"), &body);
    assert_eq!(s, 200, "{out}");
    let failing = lab.request(config, "doomed", json!({"branch": "main"}));
    let (release, events) = h.run_release(failing);
    assert_eq!(release["status"], "failed", "{release}");
    assert!(
        events.iter().any(|e| e["message"] == "env checked"),
        "{events:#?}"
    );
    assert!(
        !events.iter().any(|e| e["message"] == "LEAKED"),
        "{events:#?}"
    );
    let failed = wait_until(
        "the failed notice at the receiver",
        Duration::from_secs(30),
        || format!("received: {:#?}\n{}", hook.received(), lab.hippo.log()),
        || {
            hook.received()
                .into_iter()
                .find(|r| r.body["kind"] == "failed")
        },
    );
    assert!(failed.signature_ok);
    let hosts = failed.body["failed_hosts"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(hosts.len(), 1, "{:#}", failed.body);
    assert_eq!(hosts[0]["host"], "web-1", "{:#}", failed.body);
    assert!(
        hosts[0]["reason"].as_str().is_some_and(|r| r.contains('3')),
        "{:#}",
        failed.body
    );
}
