//! Release events. Every stage of every host reports here; each event is stored first (so a
//! client that reconnects can replay it; the SQL is in `db::events`) and then sent to live
//! subscribers.
use crate::db::{Db, DbResult, now};
use crate::domain::ReleaseId;
use crate::feed::FeedError;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

/// The stages of a release, in order: `release` (the whole), `checkout`, `package` (on the
/// release server), `prepare`, `switch`, `cleanup` (per host), `notify`. A config with waves
/// adds `wave` (a wave starts, ends, pauses, continues, rolls back) and `health` (the check
/// on each host after its wave switched).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Enum))]
#[cfg_attr(
    feature = "openapi",
    oai(rename = "EventStage", rename_all = "snake_case")
)]
pub enum Stage {
    Release,
    Checkout,
    Package,
    Prepare,
    Switch,
    Cleanup,
    Notify,
    Wave,
    Health,
}

impl Stage {
    /// The name stored and shown (the serde name).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Release => "release",
            Self::Checkout => "checkout",
            Self::Package => "package",
            Self::Prepare => "prepare",
            Self::Switch => "switch",
            Self::Cleanup => "cleanup",
            Self::Notify => "notify",
            Self::Wave => "wave",
            Self::Health => "health",
        }
    }
}

/// `started`, `output` (a line of a command or hook), `progress` (bytes sent), `succeeded`,
/// `failed`, `info`, `cancelled` (only as a release's final event).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(poem_openapi::Enum))]
#[cfg_attr(feature = "openapi", oai(rename_all = "snake_case"))]
pub enum EventStatus {
    Started,
    Output,
    Progress,
    Succeeded,
    Failed,
    Info,
    Cancelled,
}

impl EventStatus {
    /// The name stored and shown (the serde name).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Started => "started",
            Self::Output => "output",
            Self::Progress => "progress",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Info => "info",
            Self::Cancelled => "cancelled",
        }
    }
}

/// A release's events as one plain-text log (`GET /api/releases/{id}/log`): one line per event,
/// `<time> <host or "server"> <stage> <status>[: <message>]` (plus the bytes sent and the exit
/// code when the event has them); a message of several lines gives several lines, each with
/// the same prefix, so `grep web-1` finds all of a host's output.
pub fn raw_log(events: &[ReleaseEvent]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for e in events {
        let prefix = format!(
            "{} {} {} {}",
            e.at,
            e.host.as_deref().unwrap_or("server"),
            e.stage.as_str(),
            e.status.as_str()
        );
        let mut extra = String::new();
        if let Some(b) = e.bytes_sent {
            let _ = write!(extra, " ({b} bytes sent)");
        }
        if let Some(c) = e.exit_code {
            let _ = write!(extra, " (exit code {c})");
        }
        if e.message.is_empty() {
            let _ = writeln!(out, "{prefix}{extra}");
            continue;
        }
        for line in e.message.lines() {
            let _ = writeln!(out, "{prefix}: {line}{extra}");
        }
    }
    out
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ReleaseEvent {
    /// Assigned when stored; increases across all releases (the SSE event id).
    #[serde(default)]
    pub id: i64,
    pub release_id: ReleaseId,
    #[serde(default)]
    pub at: String,
    pub stage: Stage,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub host: Option<String>,
    pub status: EventStatus,
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub bytes_sent: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub exit_code: Option<i32>,
}

impl ReleaseEvent {
    pub fn new(release_id: ReleaseId, stage: Stage, status: EventStatus) -> Self {
        Self {
            id: 0,
            release_id,
            at: String::new(),
            stage,
            host: None,
            status,
            message: String::new(),
            bytes_sent: None,
            exit_code: None,
        }
    }
    pub fn host(mut self, h: impl Into<String>) -> Self {
        self.host = Some(h.into());
        self
    }
    pub fn message(mut self, m: impl Into<String>) -> Self {
        self.message = m.into();
        self
    }
    pub fn bytes(mut self, b: u64) -> Self {
        self.bytes_sent = Some(b);
        self
    }
    pub fn exit_code(mut self, c: i32) -> Self {
        self.exit_code = Some(c);
        self
    }
    /// Stamps the time it happened (otherwise it is stamped when stored).
    pub fn stamped(mut self) -> Self {
        self.at = now();
        self
    }
    /// The last event of a release: the whole release succeeded, failed or was cancelled.
    pub fn is_final(&self) -> bool {
        self.stage == Stage::Release
            && matches!(
                self.status,
                EventStatus::Succeeded | EventStatus::Failed | EventStatus::Cancelled
            )
    }
}

/// Stores events and fans them out to live subscribers in this process.
#[derive(Clone)]
pub struct EventHub {
    db: Db,
    live: broadcast::Sender<ReleaseEvent>,
    /// Cluster mode: also publish to other processes.
    feed: Option<crate::feed::Publisher>,
}

impl EventHub {
    pub fn new(db: Db) -> Self {
        let (live, _) = broadcast::channel(4096);
        Self {
            db,
            live,
            feed: None,
        }
    }

    /// Cluster mode: every stored event is also published on Redis `channel`.
    pub fn publish_to_redis(mut self, url: &str, channel: String) -> Result<Self, FeedError> {
        self.feed = Some(crate::feed::Publisher::start(url, channel)?);
        Ok(self)
    }

    /// Cluster mode (API replicas): events other processes publish on `channel` reach this
    /// process's subscribers.
    pub fn follow_redis(&self, url: &str, channel: String) -> Result<(), FeedError> {
        crate::feed::follow(url, channel, self.live.clone())
    }

    pub async fn publish(&self, mut ev: ReleaseEvent) -> DbResult<ReleaseEvent> {
        ev.at = now();
        let body = serde_json::to_string(&ev).unwrap_or_default();
        ev.id = self.db.insert_event(ev.release_id, &ev.at, &body).await?;
        // No subscriber is fine: the event is stored.
        let _ = self.live.send(ev.clone());
        if let Some(feed) = &self.feed {
            feed.send(&ev);
        }
        Ok(ev)
    }

    /// [`EventHub::publish`] for a release that waits in the queue: stored and sent only if it
    /// is still `queued` when stored (see [`Db::insert_event_if_queued`]).
    pub async fn publish_if_queued(&self, mut ev: ReleaseEvent) -> DbResult<Option<ReleaseEvent>> {
        ev.at = now();
        let body = serde_json::to_string(&ev).unwrap_or_default();
        let Some(id) = self
            .db
            .insert_event_if_queued(ev.release_id, &ev.at, &body)
            .await?
        else {
            return Ok(None);
        };
        ev.id = id;
        let _ = self.live.send(ev.clone());
        if let Some(feed) = &self.feed {
            feed.send(&ev);
        }
        Ok(Some(ev))
    }

    /// Stores `events` in one transaction, then sends them to subscribers in order. Progress
    /// events superseded within the batch are dropped first ([`coalesce_progress`]).
    pub async fn publish_batch(&self, events: Vec<ReleaseEvent>) -> DbResult<Vec<ReleaseEvent>> {
        let mut events = coalesce_progress(events);
        let at = now();
        let bodies: Vec<String> = events
            .iter_mut()
            .map(|ev| {
                // Stamped when it happened (`ReleaseEvent::stamped`), else now.
                if ev.at.is_empty() {
                    ev.at = at.clone();
                }
                serde_json::to_string(ev).unwrap_or_default()
            })
            .collect();
        let rows: Vec<_> = events
            .iter()
            .zip(&bodies)
            .map(|(ev, body)| (ev.release_id, ev.at.as_str(), body.as_str()))
            .collect();
        let ids = self.db.insert_events(&rows).await?;
        for (ev, id) in events.iter_mut().zip(ids) {
            ev.id = id;
            let _ = self.live.send(ev.clone());
            if let Some(feed) = &self.feed {
                feed.send(ev);
            }
        }
        Ok(events)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<ReleaseEvent> {
        self.live.subscribe()
    }

    /// Stored events of a release with an id above `after`, oldest first.
    pub async fn replay(&self, release_id: ReleaseId, after: i64) -> DbResult<Vec<ReleaseEvent>> {
        let rows = self.db.events_after(release_id, after).await?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, body)| {
                let mut ev: ReleaseEvent = serde_json::from_str(&body).ok()?;
                ev.id = id;
                Some(ev)
            })
            .collect())
    }
}

/// Drops every progress event that a later progress event of the same release, stage and host
/// in `events` supersedes (it says only how many bytes were sent so far); everything else stays,
/// in order.
pub fn coalesce_progress(events: Vec<ReleaseEvent>) -> Vec<ReleaseEvent> {
    let is_progress = |e: &ReleaseEvent| e.status == EventStatus::Progress;
    let mut seen = std::collections::HashSet::new();
    let mut keep = vec![true; events.len()];
    for (i, e) in events.iter().enumerate().rev() {
        if is_progress(e) && !seen.insert((e.release_id, e.stage.as_str(), e.host.clone())) {
            keep[i] = false;
        }
    }
    events
        .into_iter()
        .zip(keep)
        .filter_map(|(e, k)| k.then_some(e))
        .collect()
}

/// "1 host", "3 hosts": how event messages count hosts.
pub fn hosts(n: usize) -> String {
    if n == 1 {
        "1 host".to_owned()
    } else {
        format!("{n} hosts")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(status: EventStatus, host: &str, bytes: u64) -> ReleaseEvent {
        ReleaseEvent::new(ReleaseId::new(1), Stage::Prepare, status)
            .host(host)
            .bytes(bytes)
    }

    #[test]
    fn only_the_newest_progress_of_each_host_in_a_batch_is_kept() {
        let batch = vec![
            ev(EventStatus::Started, "a", 0),
            ev(EventStatus::Progress, "a", 1),
            ev(EventStatus::Progress, "b", 1),
            ev(EventStatus::Progress, "a", 2),
            ev(EventStatus::Output, "a", 0),
            ev(EventStatus::Progress, "a", 3),
            ev(EventStatus::Succeeded, "b", 9),
        ];
        let got: Vec<(EventStatus, String, Option<u64>)> = coalesce_progress(batch)
            .into_iter()
            .map(|e| (e.status, e.host.unwrap_or_default(), e.bytes_sent))
            .collect();
        assert_eq!(
            got,
            vec![
                (EventStatus::Started, "a".into(), Some(0)),
                (EventStatus::Progress, "b".into(), Some(1)),
                (EventStatus::Output, "a".into(), Some(0)),
                (EventStatus::Progress, "a".into(), Some(3)),
                (EventStatus::Succeeded, "b".into(), Some(9)),
            ]
        );
    }
}

#[cfg(test)]
mod raw_log_tests {
    use super::*;

    fn ev(stage: Stage, host: Option<&str>, status: EventStatus, msg: &str) -> ReleaseEvent {
        let mut e = ReleaseEvent::new(ReleaseId::new(7), stage, status).message(msg);
        e.host = host.map(str::to_owned);
        e.at = "2026-12-01T05:00:00Z".into();
        e
    }

    #[test]
    fn the_raw_log_has_one_host_prefixed_line_per_event_and_per_message_line() {
        let events = vec![
            ev(Stage::Release, None, EventStatus::Started, "release #7"),
            ev(
                Stage::Prepare,
                Some("web-1"),
                EventStatus::Output,
                "one\ntwo",
            ),
            ev(Stage::Prepare, Some("web-1"), EventStatus::Succeeded, "").bytes(42),
            ev(
                Stage::Release,
                None,
                EventStatus::Cancelled,
                "cancelled by ann",
            ),
        ];
        assert_eq!(
            raw_log(&events),
            "2026-12-01T05:00:00Z server release started: release #7\n\
             2026-12-01T05:00:00Z web-1 prepare output: one\n\
             2026-12-01T05:00:00Z web-1 prepare output: two\n\
             2026-12-01T05:00:00Z web-1 prepare succeeded (42 bytes sent)\n\
             2026-12-01T05:00:00Z server release cancelled: cancelled by ann\n"
        );
    }

    #[test]
    fn a_cancelled_release_event_is_final() {
        assert!(ev(Stage::Release, None, EventStatus::Cancelled, "").is_final());
        assert!(!ev(Stage::Prepare, None, EventStatus::Cancelled, "").is_final());
    }
}
