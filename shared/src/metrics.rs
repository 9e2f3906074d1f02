//! Prometheus metrics. Two kinds: what this process saw (stage durations, hosts in flight, SSH
//! errors, releases it ended), kept in memory since start; and what the database says about
//! the whole installation (releases by status, queue depth), read at scrape time.
//! Rendered in the Prometheus text format by hand: a handful of series needs no library.
use crate::events::Stage;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{LazyLock, Mutex};
use std::time::Instant;

/// Upper bounds (seconds) of the stage duration histogram.
const BUCKETS: [f64; 13] = [
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];

#[derive(Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        for (i, le) in BUCKETS.iter().enumerate() {
            if secs <= *le {
                self.counts[i] += 1;
            }
        }
        self.count += 1;
        self.sum += secs;
    }
}

#[derive(Default)]
struct Inner {
    stage_seconds: BTreeMap<&'static str, Histogram>,
    ssh_errors: BTreeMap<&'static str, u64>,
    ssh_connections: BTreeMap<&'static str, u64>,
    releases_ended: BTreeMap<&'static str, u64>,
}

/// This process's metrics.
pub struct Metrics {
    inner: Mutex<Inner>,
    hosts_in_flight: AtomicI64,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| Metrics {
    inner: Mutex::new(Inner::default()),
    hosts_in_flight: AtomicI64::new(0),
});

pub fn global() -> &'static Metrics {
    &METRICS
}

pub fn stage_name(stage: Stage) -> &'static str {
    match stage {
        Stage::Release => "release",
        Stage::Checkout => "checkout",
        Stage::Package => "package",
        Stage::Prepare => "prepare",
        Stage::Switch => "switch",
        Stage::Cleanup => "cleanup",
        Stage::Notify => "notify",
        Stage::Wave => "wave",
        Stage::Health => "health",
    }
}

/// Records how long a stage took when dropped (so a stage that fails or returns early counts).
pub struct StageTimer {
    stage: Stage,
    started: Instant,
}

impl Drop for StageTimer {
    fn drop(&mut self) {
        global().observe_stage(self.stage, self.started.elapsed().as_secs_f64());
    }
}

/// Counts one host being worked on until dropped.
pub struct HostInFlight(());

impl Drop for HostInFlight {
    fn drop(&mut self) {
        global().hosts_in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    pub fn time_stage(&self, stage: Stage) -> StageTimer {
        StageTimer {
            stage,
            started: Instant::now(),
        }
    }
    pub fn observe_stage(&self, stage: Stage, secs: f64) {
        if let Ok(mut m) = self.inner.lock() {
            m.stage_seconds
                .entry(stage_name(stage))
                .or_default()
                .observe(secs);
        }
    }
    pub fn host_in_flight(&self) -> HostInFlight {
        self.hosts_in_flight.fetch_add(1, Ordering::Relaxed);
        HostInFlight(())
    }
    /// `kind`: connect, handshake, host_key, auth, timeout, channel, io.
    pub fn ssh_error(&self, kind: &'static str) {
        if let Ok(mut m) = self.inner.lock() {
            *m.ssh_errors.entry(kind).or_default() += 1;
        }
    }
    /// `kind`: `new` (a login) or `kept` (a connection kept from an earlier run).
    pub fn ssh_connection(&self, kind: &'static str) {
        if let Ok(mut m) = self.inner.lock() {
            *m.ssh_connections.entry(kind).or_default() += 1;
        }
    }
    pub fn release_ended(&self, status: &'static str) {
        if let Ok(mut m) = self.inner.lock() {
            *m.releases_ended.entry(status).or_default() += 1;
        }
    }

    /// The text exposition: this process's series, then `installation`'s.
    pub fn render(&self, installation: &Installation) -> String {
        let mut out = String::new();
        let m = match self.inner.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        header(
            &mut out,
            "hippo_stage_duration_seconds",
            "histogram",
            "Time spent in each release stage (this process).",
        );
        for (stage, h) in &m.stage_seconds {
            for (le, n) in BUCKETS.iter().zip(h.counts) {
                let _ = writeln!(
                    out,
                    "hippo_stage_duration_seconds_bucket{{stage=\"{stage}\",le=\"{le}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "hippo_stage_duration_seconds_bucket{{stage=\"{stage}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "hippo_stage_duration_seconds_sum{{stage=\"{stage}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "hippo_stage_duration_seconds_count{{stage=\"{stage}\"}} {}",
                h.count
            );
        }
        header(
            &mut out,
            "hippo_hosts_in_flight",
            "gauge",
            "Hosts this process is connecting to, sending to or switching right now.",
        );
        let _ = writeln!(
            out,
            "hippo_hosts_in_flight {}",
            self.hosts_in_flight.load(Ordering::Relaxed)
        );
        counters(
            &mut out,
            "hippo_ssh_errors_total",
            "SSH failures talking to target hosts (this process), by kind.",
            "kind",
            &m.ssh_errors,
        );
        counters(
            &mut out,
            "hippo_ssh_connections_total",
            "Connections to target hosts that releases used (this process): new logins, or kept from an earlier release.",
            "kind",
            &m.ssh_connections,
        );
        counters(
            &mut out,
            "hippo_releases_ended_total",
            "Releases this process ended, by outcome.",
            "status",
            &m.releases_ended,
        );
        drop(m);
        header(
            &mut out,
            "hippo_releases",
            "gauge",
            "Releases by status (whole installation, from the database).",
        );
        for (status, n) in &installation.releases_by_status {
            let _ = writeln!(out, "hippo_releases{{status=\"{status}\"}} {n}");
        }
        header(
            &mut out,
            "hippo_queue_depth",
            "gauge",
            "Releases queued and not yet taken by a worker (whole installation).",
        );
        let _ = writeln!(out, "hippo_queue_depth {}", installation.queue_depth);
        header(
            &mut out,
            "hippo_up",
            "gauge",
            "1 if this process could read the database for this scrape.",
        );
        let _ = writeln!(out, "hippo_up {}", u8::from(installation.database_ok));
        out
    }
}

/// The whole exposition of this process: its own series and the database's view.
pub async fn scrape(db: &crate::db::Db) -> String {
    let installation = match db.releases_by_status().await {
        Ok(rows) => Installation {
            queue_depth: rows
                .iter()
                .find(|(s, _)| s == "queued")
                .map_or(0, |(_, n)| *n),
            releases_by_status: rows,
            database_ok: true,
        },
        Err(e) => {
            tracing::warn!(error = %e, "metrics: cannot read the database");
            Installation::default()
        }
    };
    global().render(&installation)
}

/// What the database says at scrape time.
#[derive(Debug, Default)]
pub struct Installation {
    pub releases_by_status: Vec<(String, i64)>,
    pub queue_depth: i64,
    pub database_ok: bool,
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A counter family with one label: `name{label="value"} n` per entry.
fn counters(
    out: &mut String,
    name: &str,
    help: &str,
    label: &str,
    values: &BTreeMap<&'static str, u64>,
) {
    header(out, name, "counter", help);
    for (value, n) in values {
        let _ = writeln!(out, "{name}{{{label}=\"{value}\"}} {n}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_histogram_buckets_cumulatively_and_installation_gauges() {
        let m = Metrics {
            inner: Mutex::new(Inner::default()),
            hosts_in_flight: AtomicI64::new(0),
        };
        m.observe_stage(Stage::Prepare, 0.3);
        m.observe_stage(Stage::Prepare, 7.0);
        m.ssh_error("auth");
        let text = m.render(&Installation {
            releases_by_status: vec![("queued".into(), 2), ("succeeded".into(), 5)],
            queue_depth: 2,
            database_ok: true,
        });
        assert!(
            text.contains("hippo_stage_duration_seconds_bucket{stage=\"prepare\",le=\"0.25\"} 0\n")
        );
        assert!(
            text.contains("hippo_stage_duration_seconds_bucket{stage=\"prepare\",le=\"0.5\"} 1\n")
        );
        assert!(
            text.contains("hippo_stage_duration_seconds_bucket{stage=\"prepare\",le=\"10\"} 2\n")
        );
        assert!(
            text.contains("hippo_stage_duration_seconds_bucket{stage=\"prepare\",le=\"+Inf\"} 2\n")
        );
        assert!(text.contains("hippo_stage_duration_seconds_count{stage=\"prepare\"} 2\n"));
        assert!(text.contains("hippo_ssh_errors_total{kind=\"auth\"} 1\n"));
        assert!(text.contains("hippo_releases{status=\"succeeded\"} 5\n"));
        assert!(text.contains("hippo_queue_depth 2\n"));
        assert!(text.contains("hippo_hosts_in_flight 0\n"));
    }
}
