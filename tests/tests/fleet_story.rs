//! A fleet: a release to a hundred hosts with the default settings succeeds on every host,
//! works on a bounded number of hosts at a time, and the API keeps answering quickly while it
//! runs (issue 11: before, 78 of 100 hosts failed on a 40 s command limit and reading a release
//! took over 30 s during such a release).
use hippo_e2e::lab::{Lab, host_path};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const HOSTS: u8 = 100;
/// `worker::fleet::DEFAULT_HOSTS_IN_FLIGHT`.
const DEFAULT_IN_FLIGHT: usize = 16;
/// API reads during the release, p99. The bench holds a release build to 100 ms with 200 hosts;
/// this story runs a debug build (and 100 sshd, 100 `tar`s) on a shared two-core CI machine,
/// where it measured 110 ms (SQLite), 200 ms (PostgreSQL) and 285 ms (cluster). What it guards
/// against is the API waiting for the pool behind a release (reads took over 30 s).
const READ_P99_LIMIT: Duration = Duration::from_millis(1000);

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

/// Milliseconds since the epoch of an event's `at` (`2026-12-01T05:06:07.123Z`).
fn at_ms(e: &Value) -> i64 {
    let at = e["at"].as_str().expect("at");
    let secs = |r: std::ops::Range<usize>| at[r].parse::<i64>().expect("number");
    // Same day for the whole release is enough for overlaps; the date is folded in anyway.
    let day = secs(8..10);
    ((day * 24 + secs(11..13)) * 60 + secs(14..16)) * 60_000
        + secs(17..19) * 1000
        + at[20..23].parse::<i64>().expect("millis")
}

/// The most hosts whose prepare had started and not yet ended at any one time.
fn most_in_flight(events: &[Value]) -> usize {
    let mut edges: Vec<(i64, i32)> = Vec::new();
    for e in events
        .iter()
        .filter(|e| e["stage"] == "prepare" && e["host"].is_string())
    {
        match e["status"].as_str() {
            Some("started") => edges.push((at_ms(e), 1)),
            Some("succeeded" | "failed") => edges.push((at_ms(e), -1)),
            _ => {}
        }
    }
    // Ends before starts at the same millisecond.
    edges.sort();
    let (mut now, mut most) = (0i32, 0i32);
    for (_, d) in edges {
        now += d;
        most = most.max(now);
    }
    most as usize
}

#[test]
fn a_release_to_a_hundred_hosts_succeeds_with_default_settings_while_the_api_keeps_answering() {
    let lab = Lab::new(HOSTS, &[]);
    // No parallelism: the default bound applies.
    let config_id = lab.config(json!({}));
    let r = lab.request(config_id, "to the whole fleet", json!({"branch": "main"}));

    let running = AtomicBool::new(true);
    let (release, events, reads) = std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let mut took = Vec::new();
            while running.load(Ordering::Relaxed) {
                for path in [
                    format!("/api/releases/{r}"),
                    "/api/releases?per_page=20".to_owned(),
                ] {
                    let t0 = Instant::now();
                    let (status, body) = lab.hippo.get(&path);
                    took.push(t0.elapsed());
                    assert_eq!(status, 200, "GET {path} during the release: {body}");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            took
        });
        let (release, events) = lab.hippo.run_release(r);
        running.store(false, Ordering::Relaxed);
        (release, events, reader.join().expect("reader"))
    });

    let failed: Vec<&Value> = events.iter().filter(|e| e["status"] == "failed").collect();
    assert_eq!(
        release["status"],
        "succeeded",
        "{}\nfailed events: {failed:#?}\n{}",
        release["error"],
        lab.hippo.log()
    );
    let rows = release["hosts"].as_array().expect("hosts");
    assert_eq!(rows.len(), usize::from(HOSTS));
    assert!(
        rows.iter().all(|h| h["status"] == "switched"),
        "every host switched: {rows:#?}"
    );
    let version = release["version"].as_str().expect("version");
    for host in &lab.hosts {
        let live = std::fs::read_link(host_path(host, hippo_e2e::lab::DEPLOY))
            .unwrap_or_else(|e| panic!("{}: no deploy link: {e}", host.name));
        assert!(
            live.ends_with(version),
            "{} links to {}",
            host.name,
            live.display()
        );
    }

    let most = most_in_flight(&events);
    assert!(
        (2..=DEFAULT_IN_FLIGHT).contains(&most),
        "hosts prepared at once: {most} (the default bound is {DEFAULT_IN_FLIGHT})"
    );

    let mut reads = reads;
    reads.sort();
    assert!(
        reads.len() >= 20,
        "only {} reads during the release",
        reads.len()
    );
    let (p50, p99, max) = (
        percentile(&reads, 0.5),
        percentile(&reads, 0.99),
        reads[reads.len() - 1],
    );
    eprintln!(
        "{HOSTS} hosts: {} events, at most {most} hosts in flight; {} API reads during the release: p50 {p50:?}, p99 {p99:?}, max {max:?}",
        events.len(),
        reads.len()
    );
    assert!(
        p99 <= READ_P99_LIMIT,
        "API reads during the release: p50 {p50:?}, p99 {p99:?} (limit {READ_P99_LIMIT:?}), max {max:?}"
    );
}
