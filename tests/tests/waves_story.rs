//! Waves with health checks (issue 12): a config switches its hosts a wave at a time, checks
//! each wave over HTTP on the hosts' own addresses (real listeners on 127.0.0.x), rolls a
//! failed wave back, and can pause after a wave until someone continues it (or give up).
use hippo_e2e::lab::{DEPLOY, Lab, VERSIONS, host_path, wait_for_message};
use hippo_e2e::listeners::{HealthListener, WebhookListener};
use hippo_e2e::proc::wait_until;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// One health endpoint per host, all on the same port (each host has its own address).
fn listeners(lab: &Lab) -> Vec<HealthListener> {
    let first = HealthListener::start(&lab.hosts[0].addr, 0).expect("listener");
    let port = first.port;
    let mut all = vec![first];
    for h in &lab.hosts[1..] {
        all.push(HealthListener::start(&h.addr, port).expect("listener on the same port"));
    }
    all
}

fn version_path(release: &Value) -> PathBuf {
    PathBuf::from(format!(
        "{VERSIONS}/{}",
        release["version"].as_str().expect("version")
    ))
}

/// Where each host's deploy link points (host-side paths, as Hippo wrote them).
fn links(lab: &Lab) -> Vec<Option<PathBuf>> {
    lab.hosts
        .iter()
        .map(|h| std::fs::read_link(host_path(h, DEPLOY)).ok())
        .collect()
}

fn host_rows(release: &Value) -> Vec<(String, String, Option<i64>)> {
    release["hosts"]
        .as_array()
        .expect("hosts")
        .iter()
        .map(|h| {
            (
                h["host_name"].as_str().unwrap_or_default().to_owned(),
                h["status"].as_str().unwrap_or_default().to_owned(),
                h["wave"].as_i64(),
            )
        })
        .collect()
}

fn switched_hosts(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["stage"] == "switch" && e["status"] == "succeeded")
        .filter_map(|e| e["host"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn waves_switch_one_host_then_the_rest_and_an_unhealthy_first_wave_is_rolled_back() {
    let lab = Lab::new(3, &[]);
    let health = listeners(&lab);
    let url = format!("http://{{addr}}:{}/health", health[0].port);

    // Bad rollouts are refused naming the field.
    for (extra, field) in [
        (json!({"waves": ["rest", "1"]}), "waves"),
        (json!({"waves": ["0"]}), "waves"),
        (
            json!({"health_check": {"url": "http://169.254.169.254/latest/meta-data"}}),
            "health_check.url",
        ),
        (json!({"health_check": {"command": ""}}), "health_check"),
        (json!({"pause_after_wave": true}), "pause_after_wave"),
    ] {
        let (s, body) = lab
            .hippo
            .post("/api/release-configs", &lab.config_body(extra.clone()));
        assert_eq!(s, 422, "{extra}: {body}");
        assert_eq!(body["field"], field, "{extra}: {body}");
    }

    let config_id = lab.config(json!({
        "waves": ["1", "rest"],
        "health_check": {"url": url, "expect_status": 200, "timeout_secs": 3, "retries": 1, "interval_secs": 1},
        "hooks": {"after_release": "mkdir -p /srv/marks\necho \"$HIPPO_VERSION\" >> /srv/marks/after_release\n"},
    }));
    let (_, config) = lab.hippo.get(&format!("/api/release-configs/{config_id}"));
    assert_eq!(config["waves"], json!(["1", "rest"]), "{config}");
    assert_eq!(config["health_check"]["url"], url, "{config}");

    // Healthy: wave 1 (web-1), then wave 2 (web-2, web-3); every host checked.
    let r1 = lab.request(config_id, "healthy", json!({"branch": "main"}));
    let (release, events) = lab.hippo.run_release(r1);
    assert_eq!(release["status"], "succeeded", "{release}\n{events:#?}");
    let v1 = version_path(&release);
    assert_eq!(links(&lab), vec![Some(v1.clone()); 3]);
    assert_eq!(
        host_rows(&release),
        [
            ("web-1".into(), "switched".into(), Some(1)),
            ("web-2".into(), "switched".into(), Some(2)),
            ("web-3".into(), "switched".into(), Some(2)),
        ]
    );
    let waves: Vec<&str> = events
        .iter()
        .filter(|e| e["stage"] == "wave" && e["status"] == "started")
        .filter_map(|e| e["message"].as_str())
        .collect();
    assert_eq!(
        waves,
        ["wave 1 of 2: web-1", "wave 2 of 2: web-2, web-3"],
        "{events:#?}"
    );
    // web-1 was switched and healthy before wave 2 started.
    let pos = |pred: &dyn Fn(&Value) -> bool| events.iter().position(pred).expect("event");
    let web1_healthy =
        pos(&|e| e["stage"] == "health" && e["status"] == "succeeded" && e["host"] == "web-1");
    let wave2 = pos(&|e| {
        e["stage"] == "wave"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("wave 2"))
    });
    assert!(web1_healthy < wave2, "{events:#?}");
    for (i, l) in health.iter().enumerate() {
        assert!(l.hits() >= 1, "web-{} was checked", i + 1);
    }

    // Unhealthy: web-1 answers 500 after it switches; it goes back to v1, web-2 and web-3
    // are never switched.
    health[0].answer(500, "database unreachable");
    let hits_before = [health[1].hits(), health[2].hits()];
    let r2 = lab.request(config_id, "unhealthy", json!({"branch": "main"}));
    let (release, events) = lab.hippo.run_release(r2);
    assert_eq!(release["status"], "failed", "{release}\n{events:#?}");
    let error = release["error"].as_str().expect("error");
    for needle in [
        "wave 1 of 2",
        "health check failed on web-1",
        "HTTP 500 (expected 200)",
        "database unreachable",
        "rolled back to the previous version: web-1",
    ] {
        assert!(error.contains(needle), "{needle:?} in {error}");
    }
    assert_eq!(
        links(&lab),
        vec![Some(v1.clone()); 3],
        "every host serves v1 again"
    );
    assert_eq!(switched_hosts(&events), ["web-1"], "{events:#?}");
    let rows = host_rows(&release);
    assert_eq!(rows[0].1, "rolled_back", "{release}");
    assert_eq!(
        (rows[1].1.as_str(), rows[2].1.as_str()),
        ("skipped", "skipped")
    );
    assert!(
        release["hosts"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("HTTP 500")),
        "{release}"
    );
    // Tried twice (retries 1), wave 2 never checked.
    assert_eq!([health[1].hits(), health[2].hits()], hits_before);
    // after-release ran again on web-1 with the version it serves again.
    let marks = std::fs::read_to_string(host_path(&lab.hosts[0], "/srv/marks/after_release"))
        .expect("marks");
    let v1_name = v1.file_name().and_then(|n| n.to_str()).expect("name");
    let lines: Vec<&str> = marks.lines().collect();
    assert_eq!(lines.len(), 3, "v1, v2, v1 again: {marks}");
    assert_eq!((lines[0], lines[2]), (v1_name, v1_name), "{marks}");
    // What /versions says is live is what the hosts serve.
    let (_, versions) = lab
        .hippo
        .get(&format!("/api/release-configs/{config_id}/versions"));
    let live: Vec<&Value> = versions
        .as_array()
        .expect("versions")
        .iter()
        .flat_map(|h| h["versions"].as_array().into_iter().flatten())
        .filter(|v| v["live"] == true)
        .collect();
    assert!(live.iter().all(|v| v["version"] == v1_name), "{versions:#}");
}

#[test]
fn a_release_paused_after_a_wave_waits_for_continue_and_gives_up_after_its_time_out() {
    // Notices reach a receiver on loopback only because the allow-list says so.
    let lab = Lab::new(
        2,
        &[
            ("HIPPO_NOTICE_TIMEOUT_SECS", "5"),
            ("HIPPO_INTERNAL_ALLOWLIST", "127.0.0.1"),
        ],
    );
    let hook = WebhookListener::start("waves-secret-1").expect("listener");
    let config_id = lab.config(json!({
        "waves": ["1", "rest"],
        "pause_after_wave": true,
        "pause_timeout_secs": 10,
        "notice_channels": [{"type": "webhook", "url": hook.url, "secret": "waves-secret-1"}],
    }));
    // The notice that ended release `id`: `cancelled`, by whom (never `failed`).
    let cancelled_notice = |id: i64| {
        let got = wait_until(
            &format!("the 'cancelled' notice of release {id}"),
            Duration::from_secs(30),
            || format!("received: {:#?}", hook.received()),
            || {
                hook.received()
                    .into_iter()
                    .find(|r| r.body["release_id"] == id && r.body["kind"] == "cancelled")
            },
        );
        assert!(got.signature_ok, "{got:#?}");
        assert!(
            !hook
                .received()
                .iter()
                .any(|r| r.body["release_id"] == id && r.body["kind"] == "failed"),
            "{:#?}",
            hook.received()
        );
        got.body
    };

    // Paused after web-1; continued by a person; web-2 follows.
    let r1 = lab.request(config_id, "paused", json!({"branch": "main"}));
    lab.hippo
        .ok(&format!("/api/releases/{r1}/run"), &Value::Null, 200);
    wait_for_message(&lab.hippo, r1, "paused after wave 1");
    let (_, waiting) = lab.hippo.get(&format!("/api/releases/{r1}"));
    assert_eq!(waiting["status"], "running", "{waiting}");
    assert_eq!(waiting["paused"]["wave"], 1, "{waiting}");
    let v1 = version_path(&waiting);
    assert_eq!(links(&lab), [Some(v1.clone()), None], "web-2 waits");
    let (s, body) = lab
        .hippo
        .post(&format!("/api/releases/{r1}/continue"), &Value::Null);
    assert_eq!(s, 200, "{body}");
    let events = lab
        .hippo
        .events(r1, None, Duration::from_secs(120))
        .expect("events");
    let (_, done) = lab.hippo.get(&format!("/api/releases/{r1}"));
    assert_eq!(done["status"], "succeeded", "{done}\n{events:#?}");
    assert_eq!(links(&lab), vec![Some(v1.clone()); 2]);
    assert!(
        events
            .iter()
            .any(|e| e["message"] == "continued after wave 1 by admin"),
        "{events:#?}"
    );
    let (s, body) = lab
        .hippo
        .post(&format!("/api/releases/{r1}/continue"), &Value::Null);
    assert_eq!(
        (s, body["error"].as_str()),
        (409, Some("not_paused")),
        "{body}"
    );

    // Nobody continues: after 10 s the release is cancelled and web-1 is back on v1.
    let r2 = lab.request(config_id, "forgotten", json!({"branch": "main"}));
    let started = Instant::now();
    let (release, events) = lab.hippo.run_release(r2);
    assert_eq!(release["status"], "cancelled", "{release}\n{events:#?}");
    assert!(started.elapsed() >= Duration::from_secs(10));
    let error = release["error"].as_str().expect("error");
    assert!(error.contains("nobody continued"), "{error}");
    assert!(error.contains("web-1"), "{error}");
    assert_eq!(links(&lab), vec![Some(v1.clone()); 2]);
    assert_eq!(switched_hosts(&events), ["web-1"], "{events:#?}");
    let last = events.last().expect("a final event");
    assert_eq!(
        (&last["stage"], &last["status"]),
        (&json!("release"), &json!("cancelled"))
    );
    let notice = cancelled_notice(r2);
    assert_eq!(notice["actor"], "the pause's time-out", "{notice:#}");
    assert!(
        notice["comment"]
            .as_str()
            .is_some_and(|c| c.contains("nobody continued")),
        "{notice:#}"
    );

    // Cancelled by a person during the pause: web-1 goes back at once.
    let r3 = lab.request(config_id, "cancelled", json!({"branch": "main"}));
    lab.hippo
        .ok(&format!("/api/releases/{r3}/run"), &Value::Null, 200);
    wait_for_message(&lab.hippo, r3, "paused after wave 1");
    let (_, waiting) = lab.hippo.get(&format!("/api/releases/{r3}"));
    assert_eq!(
        links(&lab),
        [Some(version_path(&waiting)), Some(v1.clone())],
        "web-1 switched, web-2 waits"
    );
    let (s, body) = lab
        .hippo
        .post(&format!("/api/releases/{r3}/cancel"), &Value::Null);
    assert_eq!(s, 200, "{body}");
    let events = lab
        .hippo
        .events(r3, None, Duration::from_secs(60))
        .expect("events");
    let (_, release) = lab.hippo.get(&format!("/api/releases/{r3}"));
    assert_eq!(release["status"], "cancelled", "{release}\n{events:#?}");
    let error = release["error"].as_str().expect("error");
    assert!(
        error.contains("cancelled by admin during the pause after wave 1 of 2"),
        "{error}"
    );
    assert_eq!(links(&lab), vec![Some(v1.clone()); 2]);
    assert_eq!(release["hosts"][0]["status"], "rolled_back", "{release}");
    assert_eq!(release["hosts"][1]["status"], "skipped", "{release}");
    let notice = cancelled_notice(r3);
    assert_eq!(notice["actor"], "admin", "{notice:#}");
    assert!(
        notice["comment"]
            .as_str()
            .is_some_and(|c| c.starts_with("cancelled by admin during the pause after wave 1")),
        "{notice:#}"
    );

    wait_until(
        "the pause is gone",
        Duration::from_secs(5),
        String::new,
        || {
            let (_, r) = lab.hippo.get(&format!("/api/releases/{r2}"));
            r.get("paused").is_none().then_some(())
        },
    );
}

#[test]
fn a_command_health_check_lets_the_next_wave_go_when_it_exits_0_and_rolls_the_wave_back_when_it_does_not()
 {
    let lab = Lab::new(2, &[]);
    // Run on each host after its wave switched, in the deploy path (the new version), with the
    // release's variables; it fails while /srv/sick exists there.
    let command = "mkdir -p /srv/marks\n\
        echo \"$HIPPO_HOST_NAME $HIPPO_VERSION $(pwd -P)\" >> /srv/marks/health\n\
        if [ -f /srv/sick ]; then\n\
          echo \"service down on $HIPPO_HOST_NAME\"\n\
          echo 'port 8080: connection refused' >&2\n\
          exit 4\n\
        fi\n\
        echo alive\n";
    let config_id = lab.config(json!({
        "waves": ["1", "rest"],
        "health_check": {"command": command, "timeout_secs": 10, "retries": 1, "interval_secs": 1},
    }));
    let (_, config) = lab.hippo.get(&format!("/api/release-configs/{config_id}"));
    assert_eq!(
        config["health_check"]["command"],
        command.trim_end(),
        "{config}"
    );
    let marks = |i: usize| -> Vec<String> {
        std::fs::read_to_string(host_path(&lab.hosts[i], "/srv/marks/health"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    };

    // Healthy: web-1 switches and passes its check, then web-2 does.
    let r1 = lab.request(config_id, "healthy", json!({"branch": "main"}));
    let (release, events) = lab.hippo.run_release(r1);
    assert_eq!(release["status"], "succeeded", "{release}\n{events:#?}");
    let v1 = version_path(&release);
    let v1_name = release["version"].as_str().expect("version").to_owned();
    assert_eq!(links(&lab), vec![Some(v1.clone()); 2]);
    assert_eq!(
        host_rows(&release),
        [
            ("web-1".into(), "switched".into(), Some(1)),
            ("web-2".into(), "switched".into(), Some(2)),
        ]
    );
    for (i, name) in ["web-1", "web-2"].iter().enumerate() {
        assert_eq!(
            marks(i),
            [format!("{name} {v1_name} {}", v1.display())],
            "checked once, in the new version, with its variables"
        );
    }
    let pos = |events: &[Value], pred: &dyn Fn(&Value) -> bool| {
        events.iter().position(pred).expect("event")
    };
    let web1_healthy = pos(&events, &|e| {
        e["stage"] == "health"
            && e["status"] == "succeeded"
            && e["host"] == "web-1"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.contains("command exited 0"))
    });
    let wave2 = pos(&events, &|e| {
        e["stage"] == "wave"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("wave 2"))
    });
    assert!(web1_healthy < wave2, "{events:#?}");
    assert!(
        events
            .iter()
            .any(|e| e["stage"] == "health" && e["host"] == "web-1" && e["message"] == "alive"),
        "the command's output is in the events: {events:#?}"
    );

    // Unhealthy: the command exits 4 on web-1 (twice: retries 1); web-1 goes back to v1,
    // web-2 is never switched nor checked, and the failure names the host and the output.
    std::fs::write(host_path(&lab.hosts[0], "/srv/sick"), "").expect("sick flag");
    let r2 = lab.request(config_id, "unhealthy", json!({"branch": "main"}));
    let (release, events) = lab.hippo.run_release(r2);
    assert_eq!(release["status"], "failed", "{release}\n{events:#?}");
    let v2_name = release["version"].as_str().expect("version").to_owned();
    let error = release["error"].as_str().expect("error");
    for needle in [
        "wave 1 of 2",
        "health check failed on web-1",
        "exited with code 4; its output: service down on web-1 | port 8080: connection refused",
        "rolled back to the previous version: web-1",
    ] {
        assert!(error.contains(needle), "{needle:?} in {error}");
    }
    assert_eq!(links(&lab), vec![Some(v1.clone()); 2], "both serve v1");
    assert_eq!(switched_hosts(&events), ["web-1"], "{events:#?}");
    let rows = host_rows(&release);
    assert_eq!(
        (rows[0].1.as_str(), rows[1].1.as_str()),
        ("rolled_back", "skipped"),
        "{release}"
    );
    assert!(
        release["hosts"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("service down on web-1")),
        "{release}"
    );
    let web1 = marks(0);
    assert_eq!(web1.len(), 3, "once healthy, then two tries: {web1:?}");
    assert!(web1[1..].iter().all(|l| l.contains(&v2_name)), "{web1:?}");
    assert_eq!(marks(1).len(), 1, "web-2 was not checked again");
}
