//! Patience with the database: a run's idempotent calls outlive a PostgreSQL restart.
use hippo_shared::db::DbError;
use std::time::Duration;

/// How long a database call of the run is retried while the database is unreachable (a
/// PostgreSQL restart, a failover) before the run gives up on it.
pub const DB_PATIENCE: Duration = Duration::from_secs(60);

/// Runs `op` until it succeeds or [`DB_PATIENCE`] has passed, backing off between tries.
/// Only for idempotent calls (reads, compare-and-set moves, lease calls, storing an event).
pub async fn retry_db<T, F, Fut>(what: &str, mut op: F) -> Result<T, DbError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, DbError>>,
{
    let deadline = tokio::time::Instant::now() + DB_PATIENCE;
    let mut pause = Duration::from_millis(200);
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if tokio::time::Instant::now() + pause < deadline => {
                tracing::warn!(error = %e, ?pause, "{what} failed; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(e),
        }
    }
}
