//! Logins that cannot stall the API (issue 9). Password hashes (argon2: ~19 MiB and a core for a
//! moment each) are computed on a small pool of threads of their own ([`HashPool`]), at a lower
//! CPU priority, never on the async threads that serve every other request; and failed logins
//! are limited per user name and per client address:
//!
//! - within `login_window_secs`, at most `login_max_failures` failures per user name and
//!   `login_max_failures_per_addr` per address; further attempts get 429 with `Retry-After`
//!   (when the oldest failure leaves the window), without a password check. Attempts still
//!   being checked count too, so a burst of concurrent logins cannot exceed the limit;
//! - a name or address that reaches its limit `login_lockout_after` times within
//!   `login_lockout_secs` is locked out for `login_lockout_secs`: 429 until then or until an
//!   admin clears it (`/api/login-lockouts`, audited). Lockouts are in the database, so every
//!   API replica honours them and an admin sees them all; the failure counts are each replica's
//!   own (behind a balancer spreading logins over n replicas, up to n times the limit).
//!
//! A refusal is answered after a pause ([`REFUSAL_PAUSE`]; it holds nothing but the
//! connection): a client hammering the login gets two answers a second per connection, not
//! thousands, so a flood of refused logins costs the server next to nothing.
//!
//! A successful login clears its user name's failures (not its address's). Names count as
//! typed, known or not, so a 429 says nothing about which names exist; locking out a name
//! anyone can type is the price of stopping guessing (an admin clears it).
//!
//! The client address is the socket's peer, unless that peer is a trusted proxy
//! (`trusted_proxies`): then `X-Forwarded-For` is read from the right, skipping trusted proxies,
//! and the first other address is the client. IPv6 clients count per /64 (one machine's
//! share).
use crate::problem::ApiError;
use hippo_shared::config::Settings;
use hippo_shared::crypto;
use hippo_shared::db::Db;
use hippo_shared::db::lockouts::Lockout;
use ipnet::IpNet;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a login waits for its hash before it gives up with 503.
const HASH_QUEUE_WAIT: Duration = Duration::from_secs(20);
/// Hashes waiting per hashing thread at most; beyond, 503 at once.
const HASH_QUEUE_PER_THREAD: usize = 32;
/// The hashing threads' nice value: under load, requests run before hashes.
const HASH_NICE: i32 = 10;
/// How long a refused login waits before its 429 goes out.
pub const REFUSAL_PAUSE: Duration = Duration::from_millis(500);
/// Counters kept before idle ones are dropped.
const PRUNE_ABOVE: usize = 10_000;
/// How long a lockout read from the database is trusted without reading it again (so a flood
/// of attempts on a locked subject costs no queries; an admin's clearing reaches the other
/// replicas within this).
const LOCKOUT_CACHE: Duration = Duration::from_secs(5);

/// The limits (settings `login_*`).
#[derive(Debug, Clone, Copy)]
struct Policy {
    window: Duration,
    max_per_user: u32,
    max_per_addr: u32,
    lockout_after: u32,
    lockout: Duration,
}

/// What failures are counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Subject {
    /// A user name, as typed.
    User(String),
    /// A client address (IPv4) or network (IPv6 /64).
    Address(IpNet),
}

impl Subject {
    /// The address a client is counted as: IPv4 (also when mapped into IPv6) alone, IPv6 by
    /// its /64.
    pub fn address(ip: IpAddr) -> Self {
        let net = match ip.to_canonical() {
            IpAddr::V4(v4) => IpNet::from(IpAddr::V4(v4)),
            v6 => IpNet::new(v6, 64).map_or(IpNet::from(v6), |n| n.trunc()),
        };
        Self::Address(net)
    }
    /// `user` or `address`, as stored with a lockout.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::User(_) => "user",
            Self::Address(_) => "address",
        }
    }
    /// The name, the address (`10.0.0.1`), or the network (`2001:db8::/64`).
    pub fn text(&self) -> String {
        match self {
            Self::User(u) => u.clone(),
            Self::Address(n) if n.prefix_len() == n.max_prefix_len() => n.addr().to_string(),
            Self::Address(n) => n.to_string(),
        }
    }
    fn limit(&self, p: &Policy) -> u32 {
        match self {
            Self::User(_) => p.max_per_user,
            Self::Address(_) => p.max_per_addr,
        }
    }
    /// Parses what [`Subject::kind`] and [`Subject::text`] wrote.
    fn parse(kind: &str, text: &str) -> Option<Self> {
        match kind {
            "user" => Some(Self::User(text.to_owned())),
            "address" => text
                .parse::<IpNet>()
                .ok()
                .or_else(|| text.parse::<IpAddr>().ok().map(IpNet::from))
                .map(Self::Address),
            _ => None,
        }
    }
}

/// One subject's recent failures.
#[derive(Debug, Default)]
struct Counter {
    /// Failures within the window, oldest first.
    failures: VecDeque<Instant>,
    /// Attempts admitted and not yet decided.
    pending: u32,
    /// When the limit was reached, within the lockout time, oldest first.
    strikes: VecDeque<Instant>,
    /// A lockout read from the database, trusted until the instant.
    locked: Option<(Instant, Lockout)>,
}

impl Counter {
    fn forget_before(&mut self, now: Instant, p: &Policy) {
        while self
            .failures
            .front()
            .is_some_and(|t| now.duration_since(*t) >= p.window)
        {
            self.failures.pop_front();
        }
        while self
            .strikes
            .front()
            .is_some_and(|t| now.duration_since(*t) >= p.lockout)
        {
            self.strikes.pop_front();
        }
    }
    fn is_idle(&self) -> bool {
        self.failures.is_empty() && self.pending == 0 && self.strikes.is_empty()
    }
    /// The cached lockout, while it is trusted.
    fn lockout(&self, now: Instant) -> Option<&Lockout> {
        self.locked
            .as_ref()
            .filter(|(until, _)| *until > now)
            .map(|(_, l)| l)
    }
}

pub struct LoginGuard {
    policy: Policy,
    trusted: Vec<IpNet>,
    hashing: HashPool,
    counters: Mutex<HashMap<Subject, Counter>>,
    /// A hash checked for unknown users, so that they take as long as known ones.
    dummy_hash: tokio::sync::OnceCell<String>,
}

impl LoginGuard {
    pub fn new(s: &Settings) -> Self {
        let threads = match s.login_hash_threads {
            0 => std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1)),
            n => n,
        };
        Self {
            policy: Policy {
                window: Duration::from_secs(s.login_window_secs),
                max_per_user: s.login_max_failures,
                max_per_addr: s.login_max_failures_per_addr,
                lockout_after: s.login_lockout_after,
                lockout: Duration::from_secs(s.login_lockout_secs),
            },
            trusted: s.trusted_proxy_nets(),
            hashing: HashPool::new(threads),
            counters: Mutex::new(HashMap::new()),
            dummy_hash: tokio::sync::OnceCell::new(),
        }
    }

    /// The client's address: the peer's, or what trusted proxies forwarded.
    pub fn client_addr(&self, req: &poem::Request) -> Option<IpAddr> {
        let poem::Addr::SocketAddr(peer) = req.remote_addr().0 else {
            return None;
        };
        let forwarded: Vec<&str> = req
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        Some(client_ip(peer.ip(), &forwarded, &self.trusted))
    }

    /// Admits a login attempt for `username` from `addr`, or refuses it: 429 while a lockout
    /// or a limit holds.
    pub async fn admit(
        &self,
        db: &Db,
        username: &str,
        addr: Option<IpAddr>,
    ) -> Result<Attempt<'_>, ApiError> {
        let mut subjects = vec![Subject::User(username.to_owned())];
        subjects.extend(addr.map(Subject::address));
        let refused = self.check(db, &subjects).await;
        if refused.is_err() {
            tokio::time::sleep(REFUSAL_PAUSE).await;
        }
        refused
    }

    /// [`LoginGuard::admit`] without the pause.
    async fn check(&self, db: &Db, subjects: &[Subject]) -> Result<Attempt<'_>, ApiError> {
        // First what this replica knows (no query for attempts it refuses anyway), then the
        // lockouts in the database.
        let attempt = self.admit_here(subjects)?;
        let pairs: Vec<(&str, String)> = subjects.iter().map(|s| (s.kind(), s.text())).collect();
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, t)| (*k, t.as_str())).collect();
        if let Some(l) = db.lockouts_of(&pairs).await?.into_iter().next() {
            if let (Some(s), Ok(mut counters)) =
                (Subject::parse(&l.kind, &l.subject), self.counters.lock())
            {
                let until = Instant::now() + LOCKOUT_CACHE;
                counters.entry(s).or_default().locked = Some((until, l.clone()));
            }
            return Err(locked_out(&l));
        }
        Ok(attempt)
    }

    /// The in-memory half of [`LoginGuard::admit`]: a cached lockout or a limit refuses; else
    /// the attempt is counted as in progress.
    fn admit_here(&self, subjects: &[Subject]) -> Result<Attempt<'_>, ApiError> {
        let now = Instant::now();
        let p = self.policy;
        let mut counters = self
            .counters
            .lock()
            .map_err(|_| ApiError::internal("login counters poisoned"))?;
        if counters.len() > PRUNE_ABOVE {
            counters.retain(|_, c| {
                c.forget_before(now, &p);
                !c.is_idle() || c.lockout(now).is_some()
            });
        }
        for s in subjects {
            if let Some(l) = counters.get(s).and_then(|c| c.lockout(now)) {
                return Err(locked_out(l));
            }
            let limit = s.limit(&p);
            if limit == 0 {
                continue;
            }
            let c = counters.entry(s.clone()).or_default();
            c.forget_before(now, &p);
            if c.failures.len() as u64 + u64::from(c.pending) >= u64::from(limit) {
                // Free again when the oldest failure leaves the window (or, with only attempts
                // in progress, in a moment).
                let wait = c.failures.front().map_or(Duration::from_secs(1), |t| {
                    p.window.saturating_sub(now.duration_since(*t))
                });
                return Err(ApiError::too_many(
                    "too_many_logins",
                    format!(
                        "too many failed logins for this {}; try again in {} s",
                        s.kind(),
                        wait.as_secs().max(1)
                    ),
                    wait.as_secs_f64().ceil() as u64,
                ));
            }
        }
        for s in subjects {
            if s.limit(&p) > 0 {
                counters.entry(s.clone()).or_default().pending += 1;
            }
        }
        Ok(Attempt {
            guard: self,
            subjects: subjects.to_vec(),
            decided: false,
        })
    }

    /// Whether `password` matches `hash` (None: an unknown user; a dummy hash is checked so
    /// that the answer takes as long). On the hashing pool; 503 if it stays full too long.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> Result<bool, ApiError> {
        let hash = match hash {
            Some(h) => h.to_owned(),
            None => self.dummy_hash().await?.to_owned(),
        };
        let password = password.to_owned();
        self.on_pool(move || crypto::verify_password(&password, &hash))
            .await
    }

    /// Hashes a new password on the hashing pool.
    pub async fn hash(&self, password: &str) -> Result<String, ApiError> {
        let password = password.to_owned();
        self.on_pool(move || crypto::hash_password(&password))
            .await?
            .map_err(ApiError::internal)
    }

    async fn dummy_hash(&self) -> Result<&str, ApiError> {
        self.dummy_hash
            .get_or_try_init(|| async { self.hash(&crypto::random_password()).await })
            .await
            .map(String::as_str)
    }

    /// Runs `f` on the hashing pool; 503 if the queue is full or the answer takes too long.
    async fn on_pool<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let busy =
            || ApiError::unavailable("login_busy", "too many logins at once; try again shortly");
        let answer = self.hashing.submit(f).ok_or_else(busy)?;
        tokio::time::timeout(HASH_QUEUE_WAIT, answer)
            .await
            .ok()
            .and_then(Result::ok)
            .ok_or_else(busy)
    }

    /// Forgets a subject's failures on this replica (an admin cleared its lockout).
    pub fn forget(&self, kind: &str, text: &str) {
        if let (Some(s), Ok(mut counters)) = (Subject::parse(kind, text), self.counters.lock()) {
            counters.remove(&s);
        }
    }
}

/// Threads that only hash passwords, at nice [`HASH_NICE`], fed through a bounded queue. A job
/// whose request was abandoned still runs (it cannot be stopped) but never more than the pool's
/// threads run at once.
struct HashPool {
    jobs: std::sync::mpsc::SyncSender<Job>,
}

type Job = Box<dyn FnOnce() + Send>;

impl HashPool {
    fn new(threads: usize) -> Self {
        let (jobs, queue) = std::sync::mpsc::sync_channel::<Job>(threads * HASH_QUEUE_PER_THREAD);
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..threads {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("hippo-hash-{i}"))
                .spawn(move || {
                    // Linux: the nice value is per thread (`who` 0 is the calling thread).
                    if let Err(e) = rustix::process::setpriority_process(None, HASH_NICE) {
                        tracing::debug!(error = %e, "hashing thread keeps its priority");
                    }
                    loop {
                        let job = match queue.lock() {
                            Ok(q) => q.recv(),
                            Err(_) => return,
                        };
                        // The pool is gone (the guard was dropped): end.
                        let Ok(job) = job else { return };
                        job();
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "could not start a password hashing thread");
            }
        }
        Self { jobs }
    }

    /// Queues `f`; its result arrives on the receiver. None if the queue is full.
    fn submit<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Option<tokio::sync::oneshot::Receiver<T>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.jobs
            .try_send(Box::new(move || {
                let _ = tx.send(f());
            }))
            .ok()?;
        Some(rx)
    }
}

/// A login attempt admitted by [`LoginGuard::admit`]: say how it ended. Dropped undecided (an
/// error on the way), it counts as neither.
pub struct Attempt<'a> {
    guard: &'a LoginGuard,
    subjects: Vec<Subject>,
    decided: bool,
}

impl Attempt<'_> {
    /// A wrong password or unknown user: counted; a subject reaching its limit often enough
    /// is locked out.
    pub async fn failed(mut self, db: &Db) {
        self.decided = true;
        let g = self.guard;
        let p = g.policy;
        let now = Instant::now();
        let mut lock = Vec::new();
        if let Ok(mut counters) = g.counters.lock() {
            for s in &self.subjects {
                let limit = s.limit(&p);
                let Some(c) = counters.get_mut(s) else {
                    continue;
                };
                c.pending = c.pending.saturating_sub(1);
                c.forget_before(now, &p);
                c.failures.push_back(now);
                if c.failures.len() as u64 == u64::from(limit) {
                    c.strikes.push_back(now);
                    if p.lockout_after > 0 && c.strikes.len() as u64 >= u64::from(p.lockout_after) {
                        c.strikes.clear();
                        lock.push((s.clone(), u64::from(limit) * u64::from(p.lockout_after)));
                    }
                }
            }
        }
        let until = chrono::Utc::now()
            + chrono::Duration::from_std(p.lockout).unwrap_or(chrono::Duration::zero());
        let until = until.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        for (s, failures) in lock {
            match db
                .lock_out(s.kind(), &s.text(), failures as i64, &until)
                .await
            {
                Ok(l) => {
                    tracing::warn!(
                        kind = l.kind,
                        subject = l.subject,
                        until = l.locked_until,
                        "login locked out after repeated failures"
                    );
                    if let Ok(mut counters) = g.counters.lock() {
                        counters.entry(s).or_default().locked =
                            Some((Instant::now() + LOCKOUT_CACHE, l));
                    }
                }
                Err(e) => tracing::error!(error = %e, "could not store a login lockout"),
            }
        }
    }

    /// The right password: the user name's failures are forgotten.
    pub fn succeeded(mut self) {
        self.decided = true;
        if let Ok(mut counters) = self.guard.counters.lock() {
            for s in &self.subjects {
                if let Some(c) = counters.get_mut(s) {
                    c.pending = c.pending.saturating_sub(1);
                    if matches!(s, Subject::User(_)) {
                        c.failures.clear();
                        c.strikes.clear();
                    }
                }
            }
        }
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if self.decided {
            return;
        }
        if let Ok(mut counters) = self.guard.counters.lock() {
            for s in &self.subjects {
                if let Some(c) = counters.get_mut(s) {
                    c.pending = c.pending.saturating_sub(1);
                }
            }
        }
    }
}

fn locked_out(l: &Lockout) -> ApiError {
    let wait = chrono::DateTime::parse_from_rfc3339(&l.locked_until)
        .map(|t| (t.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_seconds())
        .unwrap_or(60)
        .max(1) as u64;
    ApiError::too_many(
        "login_locked_out",
        format!(
            "too many failed logins: this {} is locked out until {} (an admin can clear it)",
            l.kind, l.locked_until
        ),
        wait,
    )
}

/// The client of a request whose socket peer is `peer`: `peer` itself unless it is a trusted
/// proxy; then the right-most address of `X-Forwarded-For` (all its values, in order) that is
/// not a trusted proxy, or the left-most one if all are. A value that is not an address ends
/// the walk (whatever is left of it was written by the client).
pub fn client_ip(peer: IpAddr, forwarded_for: &[&str], trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(&ip.to_canonical()));
    let mut client = peer.to_canonical();
    if !is_trusted(&client) {
        return client;
    }
    let hops: Vec<&str> = forwarded_for
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    for hop in hops.iter().rev() {
        let Ok(ip) = hop.parse::<IpAddr>() else {
            break;
        };
        client = ip.to_canonical();
        if !is_trusted(&client) {
            break;
        }
    }
    client
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }
    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn without_trusted_proxies_the_peer_is_the_client_whatever_it_forwards() {
        let got = client_ip(ip("203.0.113.9"), &["10.9.9.9"], &[]);
        assert_eq!(got, ip("203.0.113.9"));
    }

    #[test]
    fn behind_a_trusted_proxy_the_rightmost_untrusted_forwarded_address_is_the_client() {
        let trusted = nets(&["10.0.0.0/8"]);
        // The client forged the first entry; the proxies appended the real ones.
        let fwd = ["1.1.1.1, 198.51.100.7", "10.0.0.5"];
        assert_eq!(
            client_ip(ip("10.0.0.2"), &fwd, &trusted),
            ip("198.51.100.7")
        );
        // An untrusted peer's header is ignored.
        assert_eq!(client_ip(ip("192.0.2.1"), &fwd, &trusted), ip("192.0.2.1"));
        // No header: the proxy itself.
        assert_eq!(client_ip(ip("10.0.0.2"), &[], &trusted), ip("10.0.0.2"));
        // Garbage ends the walk at the last good hop.
        assert_eq!(
            client_ip(ip("10.0.0.2"), &["junk, 10.0.0.7"], &trusted),
            ip("10.0.0.7")
        );
        // IPv4 mapped into IPv6 is the IPv4 address.
        assert_eq!(
            client_ip(ip("::ffff:10.0.0.2"), &["198.51.100.7"], &trusted),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn ipv6_clients_count_per_64_and_ipv4_per_address() {
        let a = Subject::address(ip("2001:db8:1:2:aaaa::1"));
        let b = Subject::address(ip("2001:db8:1:2:bbbb::2"));
        assert_eq!(a, b);
        assert_eq!(a.text(), "2001:db8:1:2::/64");
        let v4 = Subject::address(ip("::ffff:192.0.2.1"));
        assert_eq!(v4.text(), "192.0.2.1");
        assert_eq!(Subject::parse("address", "192.0.2.1"), Some(v4));
        assert_eq!(Subject::parse("address", "2001:db8:1:2::/64"), Some(a));
    }

    fn guard(max_user: u32, max_addr: u32) -> LoginGuard {
        let s = Settings {
            login_max_failures: max_user,
            login_max_failures_per_addr: max_addr,
            login_window_secs: 60,
            ..Settings::default()
        };
        LoginGuard::new(&s)
    }

    async fn db() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open_sqlite(&dir.path().join("t.db")).await.unwrap();
        (dir, db)
    }

    #[tokio::test]
    async fn attempts_in_progress_count_so_a_burst_cannot_pass_the_limit() {
        let (_d, db) = db().await;
        let g = guard(3, 100);
        let a = ip("192.0.2.1");
        let mut admitted = Vec::new();
        for _ in 0..3 {
            admitted.push(g.admit(&db, "admin", Some(a)).await.unwrap());
        }
        let refused = g.admit(&db, "admin", Some(a)).await;
        assert!(matches!(refused, Err(ApiError::TooManyRequests(_, _))));
        // Another name from the same address is still admitted (its own limit is higher).
        assert!(g.admit(&db, "li", Some(a)).await.is_ok());
        // An abandoned attempt frees its place.
        admitted.pop();
        assert!(g.admit(&db, "admin", Some(a)).await.is_ok());
    }

    #[tokio::test]
    async fn a_success_forgets_the_names_failures_but_not_the_addresss() {
        let (_d, db) = db().await;
        let g = guard(2, 3);
        let a = ip("192.0.2.1");
        g.admit(&db, "admin", Some(a))
            .await
            .unwrap()
            .failed(&db)
            .await;
        g.admit(&db, "admin", Some(a)).await.unwrap().succeeded();
        g.admit(&db, "admin", Some(a))
            .await
            .unwrap()
            .failed(&db)
            .await;
        // Two failures from this address so far and one success: one more failure allowed.
        g.admit(&db, "other", Some(a))
            .await
            .unwrap()
            .failed(&db)
            .await;
        match g.admit(&db, "admin", Some(a)).await {
            Err(ApiError::TooManyRequests(p, retry)) => {
                assert_eq!(p.0.error, "too_many_logins");
                assert!((1..=60).contains(&retry), "{retry}");
            }
            other => panic!("expected 429, got {:?}", other.err()),
        }
    }

    #[tokio::test]
    async fn reaching_the_limit_often_enough_locks_out_until_cleared() {
        let (_d, db) = db().await;
        let s = Settings {
            login_max_failures: 1,
            login_max_failures_per_addr: 0,
            login_window_secs: 1,
            login_lockout_after: 2,
            ..Settings::default()
        };
        let g = LoginGuard::new(&s);
        g.admit(&db, "admin", None).await.unwrap().failed(&db).await;
        tokio::time::sleep(Duration::from_millis(1100)).await;
        g.admit(&db, "admin", None).await.unwrap().failed(&db).await;
        let locks = db.lockouts().await.unwrap();
        assert_eq!(locks.len(), 1);
        assert_eq!(
            (locks[0].kind.as_str(), locks[0].subject.as_str()),
            ("user", "admin")
        );
        tokio::time::sleep(Duration::from_millis(1100)).await;
        match g.admit(&db, "admin", None).await {
            Err(ApiError::TooManyRequests(p, retry)) => {
                assert_eq!(p.0.error, "login_locked_out");
                assert!(retry > 800, "{retry}");
            }
            other => panic!("expected a lockout, got {:?}", other.err()),
        }
        db.clear_lockout(locks[0].id).await.unwrap();
        g.forget("user", "admin");
        assert!(g.admit(&db, "admin", None).await.is_ok());
    }

    #[tokio::test]
    async fn a_password_is_checked_on_the_pool_and_unknown_users_take_a_real_hash() {
        let g = guard(5, 5);
        let hash = g.hash("right").await.unwrap();
        assert!(g.verify("right", Some(&hash)).await.unwrap());
        assert!(!g.verify("wrong", Some(&hash)).await.unwrap());
        assert!(!g.verify("right", None).await.unwrap());
        assert!(g.dummy_hash().await.unwrap().starts_with("$argon2"));
    }
}
