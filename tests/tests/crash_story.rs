//! Hippo dies in the middle of the switch stage, while after-release runs on every host: the
//! hook stops with it (it does not keep running on the hosts), and once Hippo has recovered
//! (standalone: a restart; cluster: another worker's sweeper) the records say what the hosts
//! actually serve — which hosts switched, which version is live — and the release says so; the
//! config's failure hook runs once, with the reason.
use hippo_e2e::lab::{Lab, NOTICES_TO_LOOPBACK, VERSIONS, host_path};
use hippo_e2e::listeners::WebhookListener;
use hippo_e2e::proc::{processes, wait_until};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn hook_messages(events: &[Value], needle: &str) -> usize {
    events
        .iter()
        .filter(|e| e["message"].as_str().is_some_and(|m| m.contains(needle)))
        .count()
}

#[test]
fn a_release_cut_off_during_after_release_records_that_the_hosts_switched_and_its_hooks_stop() {
    let mut lab = Lab::new(2, NOTICES_TO_LOOPBACK);
    // A first release: version 1 is live everywhere.
    let config_id = lab.config(json!({}));
    let first = lab.request(config_id, "v1", json!({"branch": "main"}));
    let (done, _) = lab.hippo.run_release(first);
    assert_eq!(done["status"], "succeeded", "{done}\n{}", lab.hippo.log());
    let v1 = done["version"].as_str().expect("version").to_owned();

    // The second one's after-release hook sleeps; a number no other process uses.
    let nap = format!("{}.{}", 600 + std::process::id() % 100, std::process::id());
    // Notices go to a signed webhook receiver: the release that recovery ends still sends one.
    let receiver = WebhookListener::start("crash-secret-1").expect("listener");
    let mut body = lab.config_body(json!({
        "notice_channels": [{"type": "webhook", "url": receiver.url, "secret": "crash-secret-1"}],
    }));
    body["hooks"] = json!({
        "after_release": format!("echo reloading\nsleep {nap}\n"),
        "on_failure": "echo \"failure-hook status=$HIPPO_RELEASE_STATUS version=$HIPPO_VERSION reason=$HIPPO_FAILURE_REASON\"\n",
    });
    let (s, b) = lab
        .hippo
        .put(&format!("/api/release-configs/{config_id}"), &body);
    assert_eq!(s, 200, "{b}");
    let r = lab.request(config_id, "v2", json!({"branch": "main"}));
    lab.hippo
        .ok(&format!("/api/releases/{r}/run"), &Value::Null, 200);
    let events = wait_until(
        "after-release running on both hosts",
        Duration::from_secs(90),
        || lab.hippo.log(),
        || {
            let evs = lab.hippo.events_so_far(r).unwrap_or_default();
            (hook_messages(&evs, "running after_release hook") == 2
                && processes(&format!("sleep {nap}")).len() == 2)
                .then_some(evs)
        },
    );
    let (_, running) = lab.hippo.get(&format!("/api/releases/{r}"));
    let v2 = running["version"].as_str().expect("version").to_owned();
    assert_ne!(v1, v2);

    // Kill whatever runs the release, with no chance to clean up.
    let killed = Instant::now();
    if lab.hippo.is_cluster() {
        let pid = events
            .iter()
            .find_map(|e| {
                e["message"]
                    .as_str()
                    .and_then(|m| m.rsplit_once("by worker "))
                    .and_then(|(_, w)| w.rsplit('-').next())
                    .and_then(|p| p.parse::<u32>().ok())
            })
            .expect("the start event names the worker");
        let st = std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .expect("kill");
        assert!(st.success());
    } else {
        lab.hippo.crash_and_restart().expect("restart");
    }

    // The hooks end with their SSH channels.
    wait_until(
        "the hosts' after-release hooks to stop",
        Duration::from_secs(10),
        || {
            format!(
                "{:?}\n{}",
                processes(&format!("sleep {nap}")),
                lab.hippo.log()
            )
        },
        || processes(&format!("sleep {nap}")).is_empty().then_some(()),
    );
    let stopped = killed.elapsed();

    // Recovery: at once after a restart; within the lease time in a cluster.
    let release = wait_until(
        "the cut-off release to end",
        Duration::from_secs(75),
        || lab.hippo.log(),
        || {
            let (_, rel) = lab.hippo.get(&format!("/api/releases/{r}"));
            (rel["status"] != "running").then_some(rel)
        },
    );
    assert_eq!(release["status"], "failed", "{release}");
    let error = release["error"].as_str().expect("error");
    let cause = if lab.hippo.is_cluster() {
        "worker lost"
    } else {
        "interrupted"
    };
    assert!(error.starts_with(cause), "{error}");
    assert!(
        error.contains(&format!(
            "2 of 2 hosts switched to {v2} and serve it (web-1, web-2)"
        )),
        "{error}"
    );
    // Hosts: both serve version 2, and the records say so.
    for host in &lab.hosts {
        assert_eq!(
            lab.live(host).expect("link"),
            host_path(host, &format!("{VERSIONS}/{v2}"))
        );
    }
    let hosts = release["hosts"].as_array().expect("hosts");
    assert_eq!(hosts.len(), 2);
    for h in hosts {
        assert_eq!(h["status"], "switched", "{release}");
        assert_eq!(h["stage"], "switch", "{release}");
    }
    let (_, kept) = lab
        .hippo
        .get(&format!("/api/release-configs/{config_id}/versions"));
    for h in kept.as_array().expect("array") {
        let live: Vec<&str> = h["versions"]
            .as_array()
            .expect("versions")
            .iter()
            .filter(|v| v["live"] == true)
            .filter_map(|v| v["version"].as_str())
            .collect();
        assert_eq!(live, vec![v2.as_str()], "{kept}");
    }
    // The release's events tell it too, and end failed.
    let events = lab
        .hippo
        .events(r, None, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(
        hook_messages(&events, &format!("links to {v2}: switched")),
        2,
        "{events:#?}"
    );
    assert_eq!(events.last().expect("end")["status"], "failed");
    // The config's failure hook ran once, before the end, with the reason it ended for —
    // run by whoever recovered the release (the restarted process, or one worker's sweeper).
    let said = format!("failure-hook status=failed version={v2} reason={cause}");
    assert_eq!(hook_messages(&events, &said), 1, "{events:#?}");
    // Still once a few sweeps later (another worker, or a second look, does not run it again).
    std::thread::sleep(Duration::from_secs(6));
    let all = lab.hippo.events_so_far(r).unwrap_or_default();
    assert_eq!(hook_messages(&all, "failure-hook status="), 1, "{all:#?}");
    // The 'failed' notice the cut-off run could not send, sent by whoever ended it, with the
    // reason.
    let notice = wait_until(
        "the 'failed' notice of the cut-off release",
        Duration::from_secs(30),
        || format!("received: {:#?}\n{}", receiver.received(), lab.hippo.log()),
        || {
            receiver
                .received()
                .into_iter()
                .find(|n| n.body["release_id"] == r && n.body["kind"] == "failed")
        },
    );
    assert!(notice.signature_ok, "{notice:#?}");
    assert!(
        notice.body["comment"]
            .as_str()
            .is_some_and(|c| c.starts_with(cause)),
        "{:#}",
        notice.body
    );
    eprintln!("hooks stopped {stopped:?} after the kill");
}
