//! The release lease: at most one running release per app × environment, across every worker.
//!
//! A lease is a row (`shared::db::leases`) with an expiry and a fencing token that grows on every
//! acquisition. The run that holds it renews it every third of its time to live from a
//! heartbeat task; a worker that dies simply stops renewing, and the lease is free again
//! [`TTL`] later (which is how the sweeper, `recovery::sweep_orphans`, knows a worker is gone).
//! Before touching any live link the run checks it still holds the lease with its token
//! ([`Lease::still_held`], the fencing check): a worker that was only slow, and whose lease
//! someone else took meanwhile, stops there.
use crate::retry::retry_db;
use hippo_shared::db::{Db, DbError};
use hippo_shared::domain::{AppId, EnvironmentId};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How long a lease lives without renewal.
pub const TTL: Duration = Duration::from_secs(30);

/// How often a waiting run asks again for a busy lease.
const WAIT_POLL: Duration = Duration::from_millis(300);

/// After a failed renewal (the database unreachable), how soon the heartbeat tries again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// The lease a release of `app_id` to `environment_id` takes.
pub fn name(app_id: AppId, environment_id: EnvironmentId) -> String {
    format!("app:{app_id}:env:{environment_id}")
}

/// What the heartbeat makes of one renewal attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Beat {
    /// Renewed: wait a third of the time to live.
    Renewed,
    /// The database could not be asked; try again soon.
    Retry,
    /// Expired or taken by someone else: this run may no longer switch hosts.
    Lost,
}

/// The heartbeat's rule. `answer`: `Ok(still ours)`, `Err(())` when the database did not
/// answer. An unanswered renewal is not by itself a loss (a PostgreSQL restart is waited out),
/// but once the lease may have expired, someone else may hold it: it counts as lost.
pub fn after_renewal(answer: Result<bool, ()>, since_renewed: Duration, ttl: Duration) -> Beat {
    match answer {
        Ok(true) => Beat::Renewed,
        Ok(false) => Beat::Lost,
        Err(()) if since_renewed >= ttl => Beat::Lost,
        Err(()) => Beat::Retry,
    }
}

/// A held lease, renewed in the background until [`Lease::release`] (or drop).
pub struct Lease {
    db: Db,
    name: String,
    holder: String,
    token: i64,
    lost: Arc<AtomicBool>,
    heartbeat: Option<tokio::task::JoinHandle<()>>,
}

impl Lease {
    /// Waits until `name` is free and takes it for `holder`, then keeps it renewed. `on_wait`
    /// runs once, the first time the lease is busy (the run says it is waiting).
    pub async fn acquire<W, F, T>(
        db: &Db,
        name: &str,
        holder: &str,
        ttl: Duration,
        on_wait: W,
    ) -> Result<Lease, DbError>
    where
        W: FnOnce() -> F,
        F: Future<Output = Result<T, DbError>>,
    {
        let ttl_ms = millis(ttl);
        let mut on_wait = Some(on_wait);
        let token = loop {
            let taken = retry_db("taking the release lease", || {
                db.try_acquire_lease(name, holder, ttl_ms)
            })
            .await?;
            if let Some(token) = taken {
                break token;
            }
            if let Some(announce) = on_wait.take() {
                announce().await?;
            }
            tokio::time::sleep(WAIT_POLL).await;
        };
        let mut lease = Lease::held(db, name, holder, token);
        lease.heartbeat = Some(lease.spawn_heartbeat(ttl));
        Ok(lease)
    }

    /// Takes `name` only if it is free now (the sweeper: a lease it can take belongs to a dead
    /// worker), and keeps it renewed while the sweeper checks that worker's hosts. `None`:
    /// someone holds it.
    pub async fn try_take(
        db: &Db,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>, DbError> {
        let Some(token) = db.try_acquire_lease(name, holder, millis(ttl)).await? else {
            return Ok(None);
        };
        let mut lease = Lease::held(db, name, holder, token);
        lease.heartbeat = Some(lease.spawn_heartbeat(ttl));
        Ok(Some(lease))
    }

    fn held(db: &Db, name: &str, holder: &str, token: i64) -> Lease {
        Lease {
            db: db.clone(),
            name: name.to_owned(),
            holder: holder.to_owned(),
            token,
            lost: Arc::new(AtomicBool::new(false)),
            heartbeat: None,
        }
    }

    fn spawn_heartbeat(&self, ttl: Duration) -> tokio::task::JoinHandle<()> {
        let (db, name, holder, token) = (
            self.db.clone(),
            self.name.clone(),
            self.holder.clone(),
            self.token,
        );
        let lost = self.lost.clone();
        let every = ttl / 3;
        tokio::spawn(async move {
            let mut wait = every;
            let mut renewed = tokio::time::Instant::now();
            loop {
                tokio::time::sleep(wait).await;
                let answer = db.renew_lease(&name, &holder, token, millis(ttl)).await;
                if let Err(e) = &answer {
                    tracing::warn!(error = %e, "renewing the release lease failed; retrying");
                }
                match after_renewal(answer.map_err(|_| ()), renewed.elapsed(), ttl) {
                    Beat::Renewed => {
                        renewed = tokio::time::Instant::now();
                        wait = every;
                    }
                    Beat::Retry => wait = RETRY_AFTER,
                    Beat::Lost => {
                        lost.store(true, Ordering::SeqCst);
                        return;
                    }
                }
            }
        })
    }

    /// The fencing check before a switch: true while this run still holds the lease with the
    /// token it got. Once false, it stays false.
    pub async fn still_held(&self) -> Result<bool, DbError> {
        if self.lost.load(Ordering::SeqCst) {
            return Ok(false);
        }
        let held = self
            .db
            .holds_lease(&self.name, &self.holder, self.token)
            .await?;
        if !held {
            self.lost.store(true, Ordering::SeqCst);
        }
        Ok(held)
    }

    /// Stops renewing and frees the lease (only if it is still ours: the token says so).
    pub async fn release(mut self) -> Result<(), DbError> {
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
        retry_db("releasing the lease", || {
            self.db.release_lease(&self.name, &self.holder, self.token)
        })
        .await
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        // Not released (an error on the way): stop renewing, let it expire.
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn a_renewed_lease_stays_and_a_refused_one_is_lost() {
        assert_eq!(after_renewal(Ok(true), 20 * SEC, TTL), Beat::Renewed);
        assert_eq!(after_renewal(Ok(false), SEC, TTL), Beat::Lost);
    }

    #[test]
    fn an_unreachable_database_is_waited_out_until_the_lease_may_have_expired() {
        assert_eq!(after_renewal(Err(()), 10 * SEC, TTL), Beat::Retry);
        assert_eq!(after_renewal(Err(()), 29 * SEC, TTL), Beat::Retry);
        assert_eq!(after_renewal(Err(()), 30 * SEC, TTL), Beat::Lost);
    }

    #[test]
    fn the_lease_is_per_app_and_environment() {
        let (app, env) = (AppId::new(3), EnvironmentId::new(7));
        assert_eq!(name(app, env), "app:3:env:7");
        assert_ne!(name(app, env), name(AppId::new(7), EnvironmentId::new(3)));
    }

    async fn db() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open_sqlite(&dir.path().join("hippo.db")).await.unwrap();
        (dir, db)
    }

    fn no_wait() -> impl FnOnce() -> std::future::Ready<Result<(), DbError>> {
        || std::future::ready(Ok(()))
    }

    #[tokio::test]
    async fn a_second_run_waits_for_the_first_and_says_so_once() {
        let (_dir, db) = db().await;
        let first = Lease::acquire(&db, "app:1:env:1", "w1:1", TTL, no_wait())
            .await
            .unwrap();
        let said = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let second = {
            let (db, said) = (db.clone(), said.clone());
            tokio::spawn(async move {
                Lease::acquire(&db, "app:1:env:1", "w2:2", TTL, move || {
                    said.fetch_add(1, Ordering::SeqCst);
                    std::future::ready(Ok(()))
                })
                .await
                .unwrap()
            })
        };
        tokio::time::sleep(Duration::from_millis(1000)).await;
        assert!(!second.is_finished(), "the second run must wait");
        assert_eq!(said.load(Ordering::SeqCst), 1);
        // Another app × environment is not blocked.
        let other = Lease::try_take(&db, "app:2:env:1", "w3:3", TTL)
            .await
            .unwrap();
        assert!(other.is_some());
        first.release().await.unwrap();
        let second = tokio::time::timeout(5 * SEC, second)
            .await
            .expect("the second run gets the lease once the first lets go")
            .unwrap();
        assert!(second.still_held().await.unwrap());
        assert_eq!(said.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn the_heartbeat_keeps_a_short_lease_past_its_time_to_live() {
        let (_dir, db) = db().await;
        let ttl = Duration::from_millis(600);
        let lease = Lease::acquire(&db, "app:1:env:1", "w1:1", ttl, no_wait())
            .await
            .unwrap();
        tokio::time::sleep(3 * ttl).await;
        assert!(lease.still_held().await.unwrap());
        assert!(
            Lease::try_take(&db, "app:1:env:1", "sweeper", ttl)
                .await
                .unwrap()
                .is_none(),
            "a live run's lease cannot be taken"
        );
    }

    #[tokio::test]
    async fn a_run_whose_lease_was_taken_fails_the_fencing_check() {
        let (_dir, db) = db().await;
        let ttl = Duration::from_millis(600);
        // A lease nobody renews (its worker died): free once it expires.
        let token = db
            .try_acquire_lease("app:1:env:1", "w1:1", millis(ttl))
            .await
            .unwrap()
            .unwrap();
        let dead = Lease::held(&db, "app:1:env:1", "w1:1", token);
        assert!(dead.still_held().await.unwrap());
        tokio::time::sleep(ttl + Duration::from_millis(100)).await;
        let taker = Lease::try_take(&db, "app:1:env:1", "w2:2", ttl)
            .await
            .unwrap()
            .expect("an expired lease can be taken");
        assert!(!dead.still_held().await.unwrap());
        assert!(taker.still_held().await.unwrap());
        // Releasing the stale lease does not free the new holder's.
        dead.release().await.unwrap();
        assert!(taker.still_held().await.unwrap());
    }

    #[tokio::test]
    async fn the_heartbeat_notices_a_lost_lease() {
        let (_dir, db) = db().await;
        let ttl = Duration::from_millis(600);
        let lease = Lease::acquire(&db, "app:1:env:1", "w1:1", ttl, no_wait())
            .await
            .unwrap();
        db.expire_all_leases().await.unwrap();
        let _other = Lease::try_take(&db, "app:1:env:1", "w2:2", TTL)
            .await
            .unwrap()
            .unwrap();
        tokio::time::sleep(ttl).await;
        assert!(lease.lost.load(Ordering::SeqCst), "the heartbeat saw it");
        assert!(!lease.still_held().await.unwrap());
    }
}
