//! Many hosts at once (issue 11): how many hosts a release works on at the same time, how long
//! one remote command may take, and how often a host's upload reports progress.
//!
//! Why these numbers:
//! - **Hosts in flight.** Each host in flight costs the release server a thread, an SSH stream
//!   to encrypt and an event stream; past a few dozen hosts the release server's cores and
//!   uplink are the limit and more hosts at once only make every host slower (with 100 hosts
//!   at once on two cores, commands queued so long that they hit their time limit). A fixed
//!   bound keeps each host's work quick and the worker's memory flat however large the fleet;
//!   a config's `parallelism` overrides it either way.
//! - **Time limits follow progress, not the clock.** A host that sends nothing at all (not
//!   even keepalive replies) fails after the SSH io time-out (`ssh::SshSession::run`). A
//!   short command on a live host gets [`COMMAND_LIMITS`] (a busy host may take a while to
//!   start a shell); an upload has no total limit and fails only when it stops moving for
//!   [`UPLOAD_LIMITS`]'s stall time.
//! - **Progress events** at most once a second per host ([`ProgressGate`]): 200 hosts'
//!   progress is then a few hundred events a second at most, written in batches by the event
//!   forwarder (`context::Events`).
use crate::ssh::Limits;
use std::time::{Duration, Instant};

/// Hosts worked on at once when the config sets no `parallelism`.
pub const DEFAULT_HOSTS_IN_FLIGHT: usize = 16;

/// How many of `hosts` hosts to work on at once: the config's `parallelism` when set, else
/// [`DEFAULT_HOSTS_IN_FLIGHT`]; never more than there are hosts, never 0.
pub fn hosts_in_flight(parallelism: Option<u32>, hosts: usize) -> usize {
    let wanted = parallelism.map_or(DEFAULT_HOSTS_IN_FLIGHT, |p| p as usize);
    wanted.min(hosts).max(1)
}

/// A short command (inspect, rename, switch, list, remove): 10 minutes in all on a host that
/// answers; one that answers nothing fails after the io time-out whatever this says.
pub const COMMAND_LIMITS: Limits = Limits {
    total: Duration::from_secs(600),
    stall: None,
};

/// An upload (the archive into `tar`): no total limit; fails after 5 minutes without taking a
/// byte or printing a line.
pub const UPLOAD_LIMITS: Limits = Limits {
    total: Duration::MAX,
    stall: Some(Duration::from_secs(300)),
};

/// Says when an upload's progress is worth an event: at most once per [`ProgressGate::EVERY`].
pub struct ProgressGate {
    last: Option<Instant>,
    reported: u64,
}

impl ProgressGate {
    pub const EVERY: Duration = Duration::from_secs(1);

    pub fn new() -> Self {
        Self {
            last: None,
            reported: 0,
        }
    }

    /// True when `sent` bytes should be reported now (and notes that it was).
    pub fn due(&mut self, sent: u64) -> bool {
        self.due_at(sent, Instant::now())
    }

    fn due_at(&mut self, sent: u64, now: Instant) -> bool {
        if sent <= self.reported {
            return false;
        }
        match self.last {
            // The first bytes wait a period too: a small upload reports only its total.
            None => {
                self.last = Some(now);
                false
            }
            Some(at) if now.duration_since(at) >= Self::EVERY => {
                self.last = Some(now);
                self.reported = sent;
                true
            }
            Some(_) => false,
        }
    }
}

impl Default for ProgressGate {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_parallelism_a_fleet_is_worked_on_sixteen_hosts_at_a_time() {
        assert_eq!(hosts_in_flight(None, 200), 16);
        assert_eq!(hosts_in_flight(None, 3), 3);
        assert_eq!(hosts_in_flight(None, 0), 1);
    }

    #[test]
    fn the_configs_parallelism_wins_either_way() {
        assert_eq!(hosts_in_flight(Some(50), 200), 50);
        assert_eq!(hosts_in_flight(Some(2), 200), 2);
        assert_eq!(hosts_in_flight(Some(50), 10), 10);
        assert_eq!(hosts_in_flight(Some(0), 10), 1);
    }

    #[test]
    fn an_upload_reports_progress_at_most_once_a_second() {
        let t0 = Instant::now();
        let mut g = ProgressGate::new();
        assert!(!g.due_at(64 * 1024, t0));
        assert!(!g.due_at(10 << 20, t0 + Duration::from_millis(900)));
        assert!(g.due_at(11 << 20, t0 + Duration::from_millis(1000)));
        assert!(!g.due_at(12 << 20, t0 + Duration::from_millis(1500)));
        assert!(g.due_at(13 << 20, t0 + Duration::from_millis(2100)));
        // Nothing new: nothing to say.
        assert!(!g.due_at(13 << 20, t0 + Duration::from_secs(9)));
    }

    #[test]
    fn short_commands_have_a_total_and_uploads_a_stall_limit() {
        assert_eq!(COMMAND_LIMITS.stall, None);
        assert!(COMMAND_LIMITS.total >= Duration::from_secs(300));
        assert_eq!(UPLOAD_LIMITS.total, Duration::MAX);
        assert!(UPLOAD_LIMITS.stall.is_some());
    }
}
