//! Cancel (issue 12): a release that waits is cancelled at once and never runs; a running one
//! stops at the next safe point — hooks on the hosts are stopped with their processes, no host
//! switches, the new version's folders are removed — unless its switch had begun, which then
//! completes and says so. The raw log tells the whole story as text.
use hippo_e2e::lab::{Lab, NOTICES_TO_LOOPBACK, VERSIONS, host_path, wait_for_message};
use hippo_e2e::listeners::{Received, WebhookListener};
use hippo_e2e::proc::{processes, wait_until};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Every entry of the host's versions folder, dot-entries included, but not the spares the
/// host makes after a release for the next delta (`.next-…`, used up by a release that
/// starts from one) nor old versions it is still deleting (`.hippo-gone-…`).
fn version_entries(lab: &Lab, i: usize) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(host_path(&lab.hosts[i], VERSIONS))
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| !n.starts_with(".next-") && !n.starts_with(".hippo-gone-"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// A sleep length no other process on the machine uses.
fn nap() -> String {
    format!("{}.{}", 600 + std::process::id() % 100, std::process::id())
}

fn set_hooks(lab: &Lab, config_id: i64, hooks: Value) {
    let mut body = lab.config_body(json!({}));
    body["hooks"] = hooks;
    let (s, b) = lab
        .hippo
        .put(&format!("/api/release-configs/{config_id}"), &body);
    assert_eq!(s, 200, "{b}");
}

fn status_of(lab: &Lab, id: i64) -> Value {
    lab.hippo.get(&format!("/api/releases/{id}")).1
}

fn webhook(hook: &WebhookListener) -> Value {
    json!({"notice_channels": [{"type": "webhook", "url": hook.url, "secret": "cancel-secret-1"}]})
}

/// The notice about release `id` of `kind`, once the receiver has it.
fn notice_of(lab: &Lab, hook: &WebhookListener, id: i64, kind: &str) -> Received {
    wait_until(
        &format!("the '{kind}' notice of release {id} at the receiver"),
        Duration::from_secs(30),
        || format!("received: {:#?}\n{}", hook.received(), lab.hippo.log()),
        || {
            hook.received()
                .into_iter()
                .find(|r| r.body["release_id"] == id && r.body["kind"] == kind)
        },
    )
}

/// The kinds of the notices about release `id` the receiver got, sorted, each once (a slow
/// answer on a loaded machine may make a notice be sent again).
fn kinds_of(hook: &WebhookListener, id: i64) -> Vec<String> {
    let mut k: Vec<String> = hook
        .received()
        .iter()
        .filter(|r| r.body["release_id"] == id)
        .filter_map(|r| r.body["kind"].as_str().map(str::to_owned))
        .collect();
    k.sort();
    k.dedup();
    k
}

#[test]
fn a_release_cancelled_while_a_before_release_hook_sleeps_stops_within_seconds_and_leaves_nothing_behind()
 {
    let lab = Lab::new(2, NOTICES_TO_LOOPBACK);
    let hook = WebhookListener::start("cancel-secret-1").expect("listener");
    let config_id = lab.config(webhook(&hook));
    let first = lab.request(config_id, "v1", json!({"branch": "main"}));
    let (done, _) = lab.hippo.run_release(first);
    assert_eq!(done["status"], "succeeded", "{done}\n{}", lab.hippo.log());
    let v1 = done["version"].as_str().expect("version").to_owned();
    let before: Vec<Vec<String>> = (0..2).map(|i| version_entries(&lab, i)).collect();

    // Release 2: before-release sleeps on web-1 only (web-2 is prepared and waits).
    let nap = nap();
    set_hooks(
        &lab,
        config_id,
        json!({"before_release": format!(
            "if [ \"$HIPPO_HOST_NAME\" = web-1 ]; then echo napping; sleep {nap}; fi\n"
        )}),
    );
    let r = lab.request(config_id, "v2", json!({"branch": "main"}));
    lab.hippo
        .ok(&format!("/api/releases/{r}/run"), &Value::Null, 200);
    wait_until(
        "before-release sleeping on web-1",
        Duration::from_secs(90),
        || lab.hippo.log(),
        || (processes(&format!("sleep {nap}")).len() == 1).then_some(()),
    );
    let v2 = status_of(&lab, r)["version"]
        .as_str()
        .expect("version")
        .to_owned();

    let asked = Instant::now();
    let answer = lab
        .hippo
        .ok(&format!("/api/releases/{r}/cancel"), &Value::Null, 200);
    assert_eq!(answer["status"], "running", "{answer}");
    assert_eq!(answer["cancelled_by_name"], "admin", "{answer}");
    // Asking again while it stops is harmless.
    lab.hippo
        .ok(&format!("/api/releases/{r}/cancel"), &Value::Null, 200);

    let events = lab
        .hippo
        .events(r, None, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e:#}"));
    let took = asked.elapsed();
    let end = events.last().expect("final event");
    assert_eq!(end["status"], "cancelled", "{events:#?}");
    assert!(
        took < Duration::from_secs(10),
        "cancelled after {took:?}\n{events:#?}"
    );
    let release = status_of(&lab, r);
    assert_eq!(release["status"], "cancelled", "{release}");
    assert_eq!(release["cancelled_by_name"], "admin", "{release}");
    let error = release["error"].as_str().expect("the reason");
    assert!(
        error.starts_with("cancelled by admin: stopped before the switch, no host switched"),
        "{error}"
    );
    assert!(
        error.ends_with("the new version's folders were removed"),
        "{error}"
    );
    for h in release["hosts"].as_array().expect("hosts") {
        assert_ne!(h["status"], "switched", "{release}");
    }

    // The hook's sleep is gone from web-1; every host still serves version 1 and has no trace
    // of version 2 (no folder, no `.partial-`, no manifest).
    wait_until(
        "the hook's sleep to end",
        Duration::from_secs(10),
        || format!("{:?}", processes(&format!("sleep {nap}"))),
        || processes(&format!("sleep {nap}")).is_empty().then_some(()),
    );
    for (i, host) in lab.hosts.iter().enumerate() {
        assert_eq!(
            lab.live(host).expect("link"),
            host_path(host, &format!("{VERSIONS}/{v1}"))
        );
        let now = version_entries(&lab, i);
        assert!(
            !now.iter().any(|e| e.contains(&v2)),
            "{}: {now:?} (version {v2})",
            host.name
        );
        assert_eq!(now, before[i], "{}", host.name);
    }
    let (_, kept) = lab
        .hippo
        .get(&format!("/api/release-configs/{config_id}/versions"));
    assert!(!kept.to_string().contains(&v2), "{kept}");

    // The raw log: every event, host-prefixed, as text.
    let (status, kind, log) = lab.hippo.get_text(&format!("/api/releases/{r}/log"));
    assert_eq!(status, 200, "{log}");
    assert!(kind.starts_with("text/plain"), "{kind}");
    assert!(log.lines().count() >= events.len(), "{log}");
    assert!(
        log.lines()
            .any(|l| l.contains(" web-1 prepare output: napping")),
        "{log}"
    );
    assert!(
        log.lines()
            .last()
            .is_some_and(|l| l.contains(" server release cancelled: cancelled by admin")),
        "{log}"
    );
    // An ended release cannot be cancelled.
    let (s, body) = lab
        .hippo
        .post(&format!("/api/releases/{r}/cancel"), &Value::Null);
    assert_eq!(s, 409, "{body}");
    assert_eq!(body["error"], "invalid_status", "{body}");

    // The notice says cancelled, by whom and how far it got — not "failed".
    let notice = notice_of(&lab, &hook, r, "cancelled");
    assert!(notice.signature_ok, "{notice:#?}");
    assert_eq!(notice.body["actor"], "admin", "{:#}", notice.body);
    assert!(
        notice.body["comment"]
            .as_str()
            .is_some_and(|c| c.starts_with("cancelled by admin: stopped before the switch")),
        "{:#}",
        notice.body
    );
    assert_eq!(notice.body["failed_hosts"], json!([]), "{:#}", notice.body);
    let (_, attempts) = lab.hippo.get(&format!("/api/releases/{r}/notices"));
    assert!(
        attempts
            .as_array()
            .expect("attempts")
            .iter()
            .any(|a| a["notice"] == "cancelled" && a["ok"] == true),
        "{attempts:#}"
    );
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(kinds_of(&hook, r), ["cancelled", "started"]);
    eprintln!("cancelled {took:?} after the request");
}

#[test]
fn a_release_cancelled_while_it_waits_never_runs() {
    let lab = Lab::new(1, NOTICES_TO_LOOPBACK);
    let hook = WebhookListener::start("cancel-secret-1").expect("listener");
    let config_id = lab.config(webhook(&hook));
    // An approved one: cancelled at once.
    let approved = lab.request(config_id, "not today", json!({"branch": "main"}));
    let out = lab.hippo.ok(
        &format!("/api/releases/{approved}/cancel"),
        &Value::Null,
        200,
    );
    assert_eq!(out["status"], "cancelled", "{out}");
    let (s, body) = lab
        .hippo
        .post(&format!("/api/releases/{approved}/run"), &Value::Null);
    assert_eq!(s, 409, "{body}");

    // A queued one (waiting for the running release of the same app and environment).
    set_hooks(&lab, config_id, json!({"before_release": "sleep 3\n"}));
    let running = lab.request(config_id, "first", json!({"branch": "main"}));
    lab.hippo
        .ok(&format!("/api/releases/{running}/run"), &Value::Null, 200);
    // Running (holding the lease) before the second is queued: with two workers the second's
    // job could otherwise take the lease first.
    wait_until(
        "the first release to run",
        Duration::from_secs(60),
        || lab.hippo.log(),
        || (status_of(&lab, running)["status"] == "running").then_some(()),
    );
    let queued = lab.request(config_id, "second", json!({"branch": "main"}));
    let q = lab
        .hippo
        .ok(&format!("/api/releases/{queued}/run"), &Value::Null, 200);
    assert_eq!(q["status"], "queued", "{q}");
    // A worker holds its job and waits for the lease: the cancel lands while it waits, and its
    // note must stay before the release's final event (it is stored only while queued).
    wait_for_message(&lab.hippo, queued, "waiting: another release");
    let out = lab
        .hippo
        .ok(&format!("/api/releases/{queued}/cancel"), &Value::Null, 200);
    assert_eq!(out["status"], "cancelled", "{out}");
    assert_eq!(out["cancelled_by_name"], "admin", "{out}");

    let first = lab
        .hippo
        .events(running, None, Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(first.last().expect("end")["status"], "succeeded");
    // Give the worker that held the second job time to take the lease and look.
    std::thread::sleep(Duration::from_secs(2));
    let second = status_of(&lab, queued);
    assert_eq!(second["status"], "cancelled", "{second}");
    assert!(second["version"].is_null(), "{second}");
    assert!(second["started_at"].is_null(), "{second}");
    let events = lab
        .hippo
        .events(queued, None, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert!(
        !events.iter().any(|e| e["status"] == "started"),
        "{events:#?}"
    );
    assert_eq!(events.last().expect("end")["status"], "cancelled");
    assert_eq!(lab.versions(&lab.hosts[0]).len(), 1);

    // Each told the receiver it was cancelled, by whom, and nothing else about its end.
    for id in [approved, queued] {
        let notice = notice_of(&lab, &hook, id, "cancelled");
        assert!(notice.signature_ok, "{notice:#?}");
        assert_eq!(notice.body["actor"], "admin", "{:#}", notice.body);
        assert_eq!(
            notice.body["comment"], "cancelled before it ran",
            "{:#}",
            notice.body
        );
        assert_eq!(kinds_of(&hook, id), ["cancelled"]);
    }
}

#[test]
fn a_cancel_during_the_switch_lets_the_switch_finish_and_says_so() {
    let lab = Lab::new(2, &[]);
    let config_id = lab.config(json!({}));
    let nap = format!("3.{}", std::process::id());
    set_hooks(
        &lab,
        config_id,
        json!({"after_release": format!("echo reloading\nsleep {nap}\n")}),
    );
    let r = lab.request(config_id, "v1", json!({"branch": "main"}));
    lab.hippo
        .ok(&format!("/api/releases/{r}/run"), &Value::Null, 200);
    wait_until(
        "after-release running",
        Duration::from_secs(90),
        || lab.hippo.log(),
        || (!processes(&format!("sleep {nap}")).is_empty()).then_some(()),
    );
    lab.hippo
        .ok(&format!("/api/releases/{r}/cancel"), &Value::Null, 200);
    let events = lab
        .hippo
        .events(r, None, Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(
        events.last().expect("end")["status"],
        "succeeded",
        "{events:#?}"
    );
    assert!(
        events.iter().any(|e| e["message"]
            .as_str()
            .is_some_and(|m| m.contains("asked to cancel after the switch had begun"))),
        "{events:#?}"
    );
    let release = status_of(&lab, r);
    let v = release["version"].as_str().expect("version");
    for host in &lab.hosts {
        assert_eq!(
            lab.live(host).expect("link"),
            host_path(host, &format!("{VERSIONS}/{v}"))
        );
    }
    for h in release["hosts"].as_array().expect("hosts") {
        assert_eq!(h["status"], "switched", "{release}");
    }
}

#[test]
fn a_release_cancelled_while_its_after_checkout_hook_runs_stops_the_hook_on_the_release_server() {
    let lab = Lab::new(1, &[]);
    let config_id = lab.config(json!({}));
    let nap = nap();
    set_hooks(
        &lab,
        config_id,
        json!({"after_checkout": format!("echo building\nsleep {nap}\n")}),
    );
    let r = lab.request(config_id, "slow build", json!({"branch": "main"}));
    lab.hippo
        .ok(&format!("/api/releases/{r}/run"), &Value::Null, 200);
    wait_until(
        "the after-checkout hook sleeping on the release server",
        Duration::from_secs(60),
        || lab.hippo.log(),
        || (!processes(&format!("sleep {nap}")).is_empty()).then_some(()),
    );
    let asked = Instant::now();
    lab.hippo
        .ok(&format!("/api/releases/{r}/cancel"), &Value::Null, 200);
    let events = lab
        .hippo
        .events(r, None, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(
        events.last().expect("end")["status"],
        "cancelled",
        "{events:#?}"
    );
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "{:?}",
        asked.elapsed()
    );
    let release = status_of(&lab, r);
    assert_eq!(
        release["error"],
        "cancelled by admin: after_checkout hook stopped: the release was cancelled",
        "{release}"
    );
    assert!(
        processes(&format!("sleep {nap}")).is_empty(),
        "the hook's sleep still runs"
    );
    // Nothing reached the host.
    assert!(lab.versions(&lab.hosts[0]).is_empty());
    assert!(
        !events.iter().any(|e| e["stage"] == "prepare"),
        "{events:#?}"
    );
}
