//! Cluster mode: the API and separate `hippo-worker` processes sharing PostgreSQL and Redis.
//! These stories need both servers, so they run in the cluster pass of `.ci/run`
//! (`HIPPO_E2E_POSTGRES` and `HIPPO_E2E_REDIS` set); without them each returns at once. The
//! restart stories bring their own Redis or PostgreSQL server, so restarting it disturbs no
//! other test.
use hippo_e2e::hippo::{Hippo, Options};
use hippo_e2e::lab::{Lab, wait_for_message};
use hippo_e2e::proc::wait_until;
use hippo_e2e::services::{PrivatePostgres, PrivateRedis};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// The cluster as the environment names it, with `workers` worker processes.
fn cluster(workers: usize) -> Option<Options> {
    let mut opts = Options::from_env(&[]);
    if opts.redis.is_none() || opts.postgres.is_none() {
        eprintln!("skipped: cluster stories need HIPPO_E2E_POSTGRES and HIPPO_E2E_REDIS");
        return None;
    }
    opts.workers = workers;
    Some(opts)
}

/// The worker named in a release's start event ("… by worker <name>").
fn worker_of(events: &[Value]) -> Option<String> {
    events.iter().find_map(|e| {
        (e["stage"] == "release" && e["status"] == "started")
            .then(|| {
                e["message"]
                    .as_str()?
                    .rsplit_once("by worker ")
                    .map(|(_, w)| w.to_owned())
            })
            .flatten()
    })
}

/// The pid at the end of a worker name (`worker-<host>-<pid>`).
fn pid_of(worker: &str) -> u32 {
    worker
        .rsplit('-')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("pid in worker name")
}

/// From a run's start event to its final event (RFC 3339 UTC with milliseconds: text order is
/// time order).
fn span(events: &[Value]) -> (String, String) {
    let at = |e: &Value| e["at"].as_str().expect("at").to_owned();
    let start = events
        .iter()
        .find(|e| e["stage"] == "release" && e["status"] == "started")
        .expect("a start event");
    (at(start), at(events.last().expect("events")))
}

fn is_final(e: &Value) -> bool {
    e["stage"] == "release" && (e["status"] == "succeeded" || e["status"] == "failed")
}

/// The events of a finished release tell its whole story: one start (after "waiting" notes if
/// it queued behind another release), every stage, one end.
fn assert_complete(events: &[Value], hosts: usize) {
    let start = events
        .iter()
        .position(|e| e["stage"] == "release" && e["status"] == "started")
        .unwrap_or_else(|| panic!("no start event: {events:#?}"));
    assert!(
        events[..start]
            .iter()
            .all(|e| e["stage"] == "release" && e["status"] == "info"),
        "{events:#?}"
    );
    assert_eq!(
        events.iter().filter(|e| is_final(e)).count(),
        1,
        "{events:#?}"
    );
    assert!(is_final(events.last().expect("events")), "{events:#?}");
    let ids: Vec<i64> = events.iter().filter_map(|e| e["id"].as_i64()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids in order: {ids:?}");
    if events.last().expect("events")["status"] == "succeeded" {
        for stage in ["checkout", "package", "prepare", "switch", "cleanup"] {
            assert!(
                events.iter().any(|e| e["stage"] == stage),
                "no {stage} event: {events:#?}"
            );
        }
        let switched: BTreeSet<&str> = events
            .iter()
            .filter(|e| e["stage"] == "switch" && e["status"] == "succeeded")
            .filter_map(|e| e["host"].as_str())
            .collect();
        assert_eq!(switched.len(), hosts, "{events:#?}");
    }
}

/// A metric's value in a Prometheus text exposition (`series` as written, labels included).
fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn two_workers_share_ten_releases_of_two_apps_and_never_overlap_one_app_and_environment() {
    let Some(opts) = cluster(2) else { return };
    let mut lab = Lab::with(2, opts);
    // A second API replica: half the event streams are read from it (live, while the workers
    // run the releases), so events must cross processes through Redis or the store.
    let replica = lab
        .hippo
        .start_api_replica()
        .unwrap_or_else(|e| panic!("API replica: {e:#}"));
    let shop = lab
        .hippo
        .ok("/api/apps", &json!({"name": "Shop", "tag": "shop"}), 201)["id"]
        .as_i64()
        .expect("id");
    let cart_config = lab.config(json!({"hooks": {"before_release": "sleep 0.5\n"}}));
    let shop_config = lab.config(json!({"app_id": shop, "deploy_path": "/srv/www/shop",
        "versions_path": "/srv/hippo/shop", "hooks": {"before_release": "sleep 0.5\n"}}));
    let mut releases = Vec::new();
    for i in 0..5 {
        for (app, config) in [("cart", cart_config), ("shop", shop_config)] {
            let id = lab.request(config, &format!("{app} {i}"), json!({"branch": "main"}));
            releases.push((app, id));
        }
    }
    // All queued at once.
    for (_, id) in &releases {
        lab.hippo
            .ok(&format!("/api/releases/{id}/run"), &Value::Null, 200);
    }
    let mut spans: BTreeMap<&str, Vec<(String, String, i64)>> = BTreeMap::new();
    let mut workers = BTreeSet::new();
    for (n, (app, id)) in releases.iter().enumerate() {
        let base = if n % 2 == 0 {
            &lab.hippo.base
        } else {
            &replica
        };
        let events = lab
            .hippo
            .events_from(base, *id, None, Duration::from_secs(240))
            .unwrap_or_else(|e| panic!("{e:#}"));
        let (_, r) = lab.hippo.get(&format!("/api/releases/{id}"));
        assert_eq!(r["status"], "succeeded", "{r}\n{events:#?}");
        assert_complete(&events, 2);
        workers.insert(worker_of(&events).expect("worker named"));
        let (a, b) = span(&events);
        spans.entry(app).or_default().push((a, b, *id));
    }
    for (app, mut s) in spans {
        s.sort();
        for w in s.windows(2) {
            assert!(
                w[0].1 <= w[1].0,
                "{app}: release {} ({}..{}) overlaps release {} ({}..{})",
                w[0].2,
                w[0].0,
                w[0].1,
                w[1].2,
                w[1].0,
                w[1].1
            );
        }
    }
    assert_eq!(workers.len(), 2, "both workers ran releases: {workers:?}");

    // Metrics: the installation's view on the API, each worker's own on its port.
    let api = lab.hippo.metrics();
    assert_eq!(
        metric(&api, "hippo_releases{status=\"succeeded\"}"),
        Some(10.0),
        "{api}"
    );
    assert_eq!(metric(&api, "hippo_queue_depth"), Some(0.0), "{api}");
    let mut prepared = 0.0;
    for i in 1..=2 {
        let w = lab.hippo.worker_metrics(i);
        assert_eq!(metric(&w, "hippo_hosts_in_flight"), Some(0.0), "{w}");
        prepared +=
            metric(&w, "hippo_stage_duration_seconds_count{stage=\"prepare\"}").unwrap_or(0.0);
        assert!(
            w.contains("# TYPE hippo_stage_duration_seconds histogram"),
            "{w}"
        );
    }
    assert_eq!(prepared, 10.0, "prepare timed once per release");
}

#[test]
fn a_worker_stopped_between_jobs_exits_cleanly_and_the_other_takes_the_work() {
    let Some(opts) = cluster(2) else { return };
    let mut lab = Lab::with(1, opts);
    lab.hippo.signal_worker(1, "TERM");
    let status = lab
        .hippo
        .wait_worker(1, Duration::from_secs(15))
        .unwrap_or_else(|| panic!("worker 1 exits after SIGTERM\n{}", lab.hippo.log()));
    assert!(status.success(), "{status}\n{}", lab.hippo.log());
    let config = lab.config(json!({}));
    let r = lab.request(config, "after", json!({"branch": "main"}));
    let (release, events) = lab.hippo.run_release(r);
    assert_eq!(release["status"], "succeeded", "{release}");
    assert_eq!(
        worker_of(&events).map(|w| pid_of(&w)),
        Some(lab.hippo.worker_pid(2))
    );
}

#[test]
fn a_worker_stopped_mid_release_finishes_it_takes_nothing_new_and_exits_cleanly() {
    let Some(opts) = cluster(2) else { return };
    let mut lab = Lab::with(2, opts);
    let config = lab.config(json!({"hooks": {"before_release": "sleep 3\n"}}));
    let first = lab.request(config, "first", json!({"branch": "main"}));
    lab.hippo
        .ok(&format!("/api/releases/{first}/run"), &Value::Null, 200);
    let evs = wait_for_message(&lab.hippo, first, "running before_release");
    let pid = pid_of(&worker_of(&evs).expect("worker named"));
    let i = if lab.hippo.worker_pid(1) == pid { 1 } else { 2 };
    lab.hippo.signal_worker(i, "TERM");
    // Queued after the stop: the stopping worker must leave it to the other one.
    let second = lab.request(config, "second", json!({"branch": "main"}));
    lab.hippo
        .ok(&format!("/api/releases/{second}/run"), &Value::Null, 200);

    let events = lab
        .hippo
        .events(first, None, Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("{e:#}"));
    let (_, r) = lab.hippo.get(&format!("/api/releases/{first}"));
    assert_eq!(r["status"], "succeeded", "{r}\n{}", lab.hippo.log());
    assert_complete(&events, 2);
    let status = lab
        .hippo
        .wait_worker(i, Duration::from_secs(30))
        .unwrap_or_else(|| {
            panic!(
                "the stopped worker exits once its release is done\n{}",
                lab.hippo.log()
            )
        });
    assert!(status.success(), "{status}\n{}", lab.hippo.log());

    let events = lab
        .hippo
        .events(second, None, Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("{e:#}"));
    let (_, r) = lab.hippo.get(&format!("/api/releases/{second}"));
    assert_eq!(r["status"], "succeeded", "{r}\n{}", lab.hippo.log());
    assert_ne!(
        worker_of(&events).map(|w| pid_of(&w)),
        Some(pid),
        "the stopping worker took a new job"
    );
}

/// Runs `first` (its hook ticks for 4 s) and `second` (queued behind it), calls `outage` while
/// the first is in its hook, and returns the config and both releases' final JSON and events.
/// A hook whose output spans an outage: every line must reach the stored events.
const TICKS: &str = "for i in 1 2 3 4 5 6 7 8; do echo tick $i; sleep 0.5; done\n";

/// Every tick of the hook on every host is among the events.
fn assert_all_ticks(events: &[Value], hosts: usize) {
    for i in 1..=8 {
        let n = events
            .iter()
            .filter(|e| e["message"] == format!("tick {i}"))
            .count();
        assert_eq!(n, hosts, "tick {i}: {events:#?}");
    }
}

fn release_through(lab: &mut Lab, outage: impl FnOnce(&Hippo)) -> (i64, Vec<(Value, Vec<Value>)>) {
    let config = lab.config(json!({"hooks": {"before_release": TICKS}}));
    let ids: Vec<i64> = ["first", "second"]
        .iter()
        .map(|n| lab.request(config, n, json!({"branch": "main"})))
        .collect();
    for id in &ids {
        lab.hippo
            .ok(&format!("/api/releases/{id}/run"), &Value::Null, 200);
    }
    wait_for_message(&lab.hippo, ids[0], "tick 1");
    outage(&lab.hippo);
    let ended = ids
        .iter()
        .map(|id| {
            let r = wait_until(
                &format!("release {id} to end"),
                Duration::from_secs(180),
                || {
                    let (_, r) = lab.hippo.get(&format!("/api/releases/{id}"));
                    format!("{r}\n{}", lab.hippo.log())
                },
                || {
                    let (s, r) = lab.hippo.get(&format!("/api/releases/{id}"));
                    (s == 200 && (r["status"] == "succeeded" || r["status"] == "failed"))
                        .then_some(r)
                },
            );
            let events = lab
                .hippo
                .events(*id, None, Duration::from_secs(30))
                .unwrap_or_else(|e| panic!("{e:#}"));
            (r, events)
        })
        .collect();
    (config, ended)
}

#[test]
fn redis_restarted_during_a_release_loses_no_job_and_no_event() {
    let Some(mut opts) = cluster(2) else { return };
    let mut redis = PrivateRedis::start().expect("redis");
    opts.redis = Some(redis.url());
    let mut lab = Lab::with(2, opts);
    let (config, ended) = release_through(&mut lab, |_| {
        redis
            .restart(|| std::thread::sleep(Duration::from_secs(1)))
            .expect("redis restarts");
    });
    for (r, events) in &ended {
        assert_eq!(r["status"], "succeeded", "{r}\n{}", lab.hippo.log());
        assert_complete(events, 2);
        assert_all_ticks(events, 2);
    }
    // The queue works after the restart.
    let r = lab.request(config, "after", json!({"branch": "main"}));
    let (release, _) = lab.hippo.run_release(r);
    assert_eq!(release["status"], "succeeded", "{release}");
}

#[test]
fn postgres_restarted_during_a_release_ends_it_with_every_event_stored() {
    let Some(mut opts) = cluster(2) else { return };
    let mut pg = PrivatePostgres::start().expect("postgres");
    opts.postgres = Some(pg.base_url());
    let mut lab = Lab::with(2, opts);
    let (config, ended) = release_through(&mut lab, |_| {
        pg.restart(|| std::thread::sleep(Duration::from_secs(1)))
            .expect("postgres restarts");
    });
    for (r, events) in &ended {
        // Either end is allowed, with a clear reason; the events must tell the whole story.
        if r["status"] == "failed" {
            assert!(r["error"].as_str().is_some_and(|e| !e.is_empty()), "{r}");
        }
        assert_complete(events, 2);
        assert_all_ticks(events, 2);
    }
    assert_eq!(
        ended[0].0["status"],
        "succeeded",
        "{}\n{}",
        ended[0].0,
        lab.hippo.log()
    );
    let r = lab.request(config, "after", json!({"branch": "main"}));
    let (release, _) = lab.hippo.run_release(r);
    assert_eq!(release["status"], "succeeded", "{release}");
}

#[test]
fn workers_started_on_one_machine_with_default_settings_each_serve_metrics_on_a_port_of_their_own()
{
    let Some(opts) = cluster(0) else { return };
    let mut lab = Lab::with(1, opts);
    // No HIPPO_METRICS_LISTEN: each takes the first free port from 9091 (another process on
    // this machine may hold 9091 already; then both move up).
    let ports: Vec<u16> = (0..2)
        .map(|_| {
            let i = lab
                .hippo
                .start_worker_with(None)
                .unwrap_or_else(|e| panic!("a worker with default settings starts: {e:#}"));
            let addr = lab.hippo.worker_metrics_addr(i);
            assert!(addr.ip().is_loopback(), "{addr}");
            addr.port()
        })
        .collect();
    assert_ne!(ports[0], ports[1]);
    for p in &ports {
        assert!((9091..9191).contains(p), "{ports:?}");
    }
    for i in 1..=2 {
        assert!(
            lab.hippo
                .worker_metrics(i)
                .contains("# TYPE hippo_hosts_in_flight"),
            "worker {i}"
        );
    }
    let config = lab.config(json!({}));
    let r = lab.request(config, "two defaults", json!({"branch": "main"}));
    let (release, _) = lab.hippo.run_release(r);
    assert_eq!(
        release["status"],
        "succeeded",
        "{release}\n{}",
        lab.hippo.log()
    );
}
