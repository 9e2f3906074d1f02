//! Release control (issue 12): ship to a few hosts first, send a failed release again only
//! where it failed, have a script told when a release fails, and ship at a set time — once,
//! whatever restarts and however many API processes run.
use hippo_e2e::lab::{Lab, VERSIONS, host_path};
use hippo_e2e::proc::wait_until;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// `secs` seconds from now, as RFC 3339 in UTC.
fn in_secs(secs: u64) -> String {
    let out = std::process::Command::new("date")
        .args([
            "-u",
            "-d",
            &format!("+{secs} seconds"),
            "+%Y-%m-%dT%H:%M:%S.%3NZ",
        ])
        .output()
        .expect("date");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn release(lab: &Lab, id: i64) -> Value {
    lab.hippo.get(&format!("/api/releases/{id}")).1
}

fn messages(events: &[Value], needle: &str) -> usize {
    events
        .iter()
        .filter(|e| e["message"].as_str().is_some_and(|m| m.contains(needle)))
        .count()
}

#[test]
fn a_subset_ships_to_its_hosts_and_a_failed_host_is_retried_alone_after_the_failure_hook_ran() {
    let lab = Lab::new(3, &[]);
    // The hook needs a mark on the host; web-2 lacks it at first.
    let mark = |i: usize| host_path(&lab.hosts[i], "/srv/hippo/ready");
    for i in [0, 2] {
        std::fs::create_dir_all(mark(i).parent().expect("parent")).expect("mkdir");
        std::fs::write(mark(i), "").expect("mark");
    }
    let config_id = lab.config(json!({
        "failure_policy": "continue",
        "hooks": {
            "before_release": "[ -e /srv/hippo/ready ] || { echo not ready; exit 3; }\n",
            // It runs in the release's tree (read-only): here the kept tree of a config
            // without an after-checkout hook.
            "on_failure": "echo \"failure-hook status=$HIPPO_RELEASE_STATUS hosts=$HIPPO_FAILED_HOSTS reason=$HIPPO_FAILURE_REASON\"\n[ -f index.html ] && echo 'the hook sees the tree'\n",
        },
    }));

    // A subset: only web-1. A host of no config is refused, naming the field.
    let (s, body) = lab.hippo.post(
        "/api/releases",
        &json!({"config_id": config_id, "name": "canary", "branch": "main", "host_ids": [999]}),
    );
    assert_eq!(
        (s, body["field"].as_str()),
        (422, Some("host_ids")),
        "{body}"
    );
    let canary = lab.hippo.ok(
        "/api/releases",
        &json!({"config_id": config_id, "name": "canary", "branch": "main",
                "host_ids": [lab.host_ids[0]]}),
        201,
    );
    assert_eq!(canary["host_ids"], json!([lab.host_ids[0]]), "{canary}");
    let canary_id = canary["id"].as_i64().expect("id");
    let (done, events) = lab.hippo.run_release(canary_id);
    assert_eq!(done["status"], "succeeded", "{done}\n{}", lab.hippo.log());
    assert_eq!(
        messages(&events, "for 1 of the config's 3 hosts: web-1"),
        1,
        "{events:#?}"
    );
    assert_eq!(done["hosts"].as_array().expect("hosts").len(), 1, "{done}");
    assert!(lab.live(&lab.hosts[0]).is_some());
    assert!(lab.live(&lab.hosts[1]).is_none() && lab.live(&lab.hosts[2]).is_none());

    // The full release fails on web-2 (exit 3); the others switch (policy `continue`).
    let r = lab.request(config_id, "v1", json!({"branch": "main"}));
    let (failed, events) = lab.hippo.run_release(r);
    assert_eq!(failed["status"], "failed", "{failed}");
    let v = failed["version"].as_str().expect("version").to_owned();
    let hooks: Vec<&str> = events
        .iter()
        .filter_map(|e| e["message"].as_str())
        .filter(|m| m.starts_with("failure-hook"))
        .collect();
    assert_eq!(hooks.len(), 1, "{events:#?}");
    assert!(
        hooks[0].starts_with("failure-hook status=failed hosts=web-2 reason="),
        "{}",
        hooks[0]
    );
    assert!(hooks[0].contains("exit"), "{}", hooks[0]);
    assert!(
        events
            .iter()
            .any(|e| e["message"].as_str() == Some("the hook sees the tree")),
        "{events:#?}"
    );

    // Only a failed release can be retried.
    let (s, body) = lab
        .hippo
        .post(&format!("/api/releases/{canary_id}/retry"), &Value::Null);
    assert_eq!(s, 409, "{body}");

    // Fix the host, retry: a new release for web-2 only, same commit and version.
    std::fs::write(mark(1), "").expect("mark");
    let retry = lab
        .hippo
        .ok(&format!("/api/releases/{r}/retry"), &Value::Null, 201);
    assert_eq!(retry["retry_of"], r, "{retry}");
    assert_eq!(retry["host_ids"], json!([lab.host_ids[1]]), "{retry}");
    assert_eq!(retry["commit_id"], failed["commit_id"], "{retry}");
    assert_eq!(retry["status"], "approved", "{retry}");
    let retry_id = retry["id"].as_i64().expect("id");
    let (done, events) = lab.hippo.run_release(retry_id);
    assert_eq!(done["status"], "succeeded", "{done}\n{}", lab.hippo.log());
    let hosts = done["hosts"].as_array().expect("hosts");
    assert_eq!(hosts.len(), 1, "{done}");
    assert_eq!(hosts[0]["host_name"], "web-2");
    assert!(hosts[0]["bytes_sent"].as_i64().unwrap_or(0) > 0, "{done}");
    assert!(
        !events
            .iter()
            .any(|e| matches!(e["host"].as_str(), Some("web-1" | "web-3"))),
        "{events:#?}"
    );
    assert_eq!(messages(&events, "failure-hook"), 0, "{events:#?}");
    assert_eq!(done["version"], v.as_str(), "{done}");
    // All three serve the one new version.
    for host in &lab.hosts {
        assert_eq!(
            lab.live(host).expect("link"),
            host_path(host, &format!("{VERSIONS}/{v}")),
            "{}",
            host.name
        );
    }
}

#[test]
fn a_scheduled_release_runs_once_at_its_time_and_a_cancelled_one_never() {
    let mut lab = Lab::new(1, &[]);
    // Several API processes in a cluster: each polls; exactly one queues the release.
    if lab.hippo.is_cluster() {
        lab.hippo.start_api_replica().expect("replica");
    }

    let config_id = lab.config(json!({"review_enabled": true}));
    let reviewer = {
        let role = lab.role("reviewers", &["review", "release"]);
        lab.user("rita", json!([{"role_id": role}]))
    };
    let approve_at = |id: i64, at: &str| {
        let (s, body) = lab.hippo.call(
            &reviewer,
            "POST",
            &format!("/api/releases/{id}/approve"),
            &json!({"run_at": at}),
        );
        assert_eq!(s, 200, "{body}");
        body
    };
    let request = |name: &str| {
        lab.hippo.ok(
            "/api/releases",
            &json!({"config_id": config_id, "name": name, "branch": "main"}),
            201,
        )["id"]
            .as_i64()
            .expect("id")
    };
    // A time in the past is refused, naming the field.
    let first = request("at three");
    let (s, body) = lab.hippo.call(
        &reviewer,
        "POST",
        &format!("/api/releases/{first}/approve"),
        &json!({"run_at": "2020-01-01T00:00:00Z"}),
    );
    assert_eq!((s, body["field"].as_str()), (422, Some("run_at")), "{body}");

    // Scheduled 3 s ahead: approved and scheduled, then it runs by itself.
    let at = in_secs(3);
    let scheduled_at = Instant::now() + Duration::from_secs(3);
    let out = approve_at(first, &at);
    assert_eq!(out["status"], "approved", "{out}");
    assert!(out["run_at"].is_string(), "{out}");
    // One scheduled and then cancelled never runs.
    let second = request("never");
    approve_at(second, &in_secs(3));
    let cancelled = lab
        .hippo
        .ok(&format!("/api/releases/{second}/cancel"), &Value::Null, 200);
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");

    let started = wait_until(
        "the scheduled release to start",
        Duration::from_secs(20),
        || lab.hippo.log(),
        || (release(&lab, first)["status"] != "approved").then(Instant::now),
    );
    let late = started.saturating_duration_since(scheduled_at);
    assert!(
        started + Duration::from_millis(500) >= scheduled_at,
        "started before its time"
    );
    assert!(
        late <= Duration::from_secs(2),
        "started {late:?} after its time"
    );
    let events = lab
        .hippo
        .events(first, None, Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(events.last().expect("end")["status"], "succeeded");
    assert_eq!(messages(&events, "queued at its scheduled time"), 1);
    assert_eq!(
        events
            .iter()
            .filter(|e| e["stage"] == "release" && e["status"] == "started")
            .count(),
        1,
        "{events:#?}"
    );
    let (_, list) = lab.hippo.get("/api/releases");
    let second_row = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|r| r["id"] == second)
        .cloned()
        .expect("listed");
    assert_eq!(second_row["status"], "cancelled", "{second_row}");
    assert!(release(&lab, second)["started_at"].is_null());

    // An approved release scheduled afterwards (`POST …/schedule`) runs at its time too; only
    // an approved release can be scheduled.
    let (s, body) = lab.hippo.post(
        &format!("/api/releases/{second}/schedule"),
        &json!({"run_at": in_secs(2)}),
    );
    assert_eq!(
        (s, body["error"].as_str()),
        (409, Some("invalid_status")),
        "{body}"
    );
    let fourth = request("scheduled later");
    let (s, body) = lab.hippo.call(
        &reviewer,
        "POST",
        &format!("/api/releases/{fourth}/approve"),
        &json!({}),
    );
    assert_eq!(s, 200, "{body}");
    let out = lab.hippo.ok(
        &format!("/api/releases/{fourth}/schedule"),
        &json!({"run_at": in_secs(2)}),
        200,
    );
    assert!(out["run_at"].is_string(), "{out}");
    let events = lab
        .hippo
        .events(fourth, None, Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e:#}\n{}", lab.hippo.log()));
    assert_eq!(events.last().expect("end")["status"], "succeeded");
    assert_eq!(messages(&events, "queued at its scheduled time"), 1);

    // Scheduled, then the API restarts (standalone) before its time: it still runs, once.
    if !lab.hippo.is_cluster() {
        let third = request("after a restart");
        approve_at(third, &in_secs(4));
        lab.hippo.crash_and_restart().expect("restart");
        let events = lab
            .hippo
            .events(third, None, Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("{e:#}\n{}", lab.hippo.log()));
        assert_eq!(events.last().expect("end")["status"], "succeeded");
        assert_eq!(messages(&events, "queued at its scheduled time"), 1);
    }
}
