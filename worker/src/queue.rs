//! The deploy queue. Standalone: an embedded apalis-sqlite queue in its own SQLite file
//! (apalis uses sqlx's default migrations table, so it must not share ours), woken by SQLite
//! update hooks, with a slow poll as a safety net. Cluster: apalis-redis. The queue is named
//! explicitly (`Settings::queue_name`). The same handler serves both; only this module knows
//! which backend is in use. Jobs carry a release id, nothing else.
use crate::context::Deps;
use crate::{recovery, runner};
use apalis::prelude::*;
use apalis_redis::RedisStorage;
use apalis_sqlite::{SqlitePool, SqliteStorage};
use futures::StreamExt;
use hippo_shared::jobs::DeployJob;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("queue storage: {0}")]
    Storage(String),
    #[error("queue worker: {0}")]
    Worker(String),
}

fn storage_err(e: impl std::fmt::Display) -> QueueError {
    QueueError::Storage(e.to_string())
}

/// The side of the queue that accepts jobs.
#[derive(Clone)]
pub enum Queue {
    Sqlite(SqliteStorage<DeployJob>),
    Redis(RedisStorage<DeployJob>),
}

/// The side that hands jobs to workers (consumed by [`run_workers`]).
pub enum Source {
    Sqlite {
        pool: SqlitePool,
        listener: apalis_sqlite::callback::HookCallbackListener,
        queue: String,
    },
    Redis(Box<RedisStorage<DeployJob>>),
}

fn sqlite_config(queue: &str) -> apalis_sqlite::Config {
    apalis_sqlite::Config::default().queue(queue).batch_size(4)
}

/// Opens (creating if needed) the embedded queue at `path`.
pub async fn open_standalone(path: &Path, queue: &str) -> Result<(Queue, Source), QueueError> {
    // Owner-only, like Hippo's own database.
    hippo_shared::files::private_sqlite(path)
        .map_err(|e| QueueError::Storage(format!("{}: {e}", path.display())))?;
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let (pool, listener) = SqliteStorage::connect_with_callback(&url).map_err(storage_err)?;
    SqliteStorage::setup(&pool).await.map_err(storage_err)?;
    let storage = SqliteStorage::new(&pool).with_config(sqlite_config(queue));
    Ok((
        Queue::Sqlite(storage),
        Source::Sqlite {
            pool,
            listener,
            queue: queue.to_owned(),
        },
    ))
}

/// Connects to the Redis queue (cluster mode).
pub async fn open_redis(url: &str, queue: &str) -> Result<(Queue, Source), QueueError> {
    let conn = tokio::time::timeout(Duration::from_secs(10), apalis_redis::connect(url))
        .await
        .map_err(|_| QueueError::Storage("timed out connecting to Redis".into()))?
        .map_err(storage_err)?;
    // apalis-redis puts every push in a "scheduled" set that a worker's fetch promotes; with
    // the default 30 s heartbeat a job could wait that long. A 1 s heartbeat (orphaned after
    // 10 missed ones) keeps pickup quick.
    let config = apalis_redis::Config::default()
        .queue(queue)
        .heartbeat_interval(Duration::from_secs(1))
        .missed_heartbeats(10)
        // One job per fetch: a worker takes only what it can start, so jobs spread over the
        // workers instead of one fetch taking ten.
        .batch_size(1);
    let storage = RedisStorage::new(conn).with_config(config);
    Ok((
        Queue::Redis(storage.clone()),
        Source::Redis(Box::new(storage)),
    ))
}

impl Queue {
    /// Queues a job; gives up after 10 s (a stalled Redis must not hang an API request).
    /// Redis's connection manager reconnects only after a request failed on the broken
    /// connection (a restarted Redis), so a failed push is tried again a few times. A job
    /// pushed twice is harmless: a run starts only from `queued`.
    pub async fn push(&self, job: DeployJob) -> Result<(), QueueError> {
        let push = async {
            let mut attempt = 0;
            loop {
                let r = match self {
                    Queue::Sqlite(s) => s.clone().push(job.clone()).await.map_err(storage_err),
                    Queue::Redis(s) => s.clone().push(job.clone()).await.map_err(storage_err),
                };
                attempt += 1;
                match r {
                    Err(e) if attempt < 4 => {
                        tracing::warn!(error = %e, attempt, "queueing failed; trying again");
                        tokio::time::sleep(Duration::from_millis(250 * attempt)).await;
                    }
                    r => break r,
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(10), push)
            .await
            .map_err(|_| QueueError::Storage("timed out queueing the job".into()))?
    }
}

/// The one handler for every backend. The run gets its own task: it uses the multi-thread
/// runtime, and a panic in it becomes an error here instead of taking the worker down.
async fn handle(job: DeployJob, deps: Data<Arc<Deps>>) -> Result<(), BoxDynError> {
    let deps: Arc<Deps> = (*deps).clone();
    let id = job.release_id;
    if let Some(kind) = job.notice {
        crate::notify::dispatch::from_job(&deps, id, &kind).await;
        return Ok(());
    }
    match tokio::spawn(async move { runner::execute(&deps, id).await }).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => {
            tracing::error!(release_id = %id, error = %e, "deploy job failed");
            Err(Box::new(e))
        }
        Err(e) => {
            tracing::error!(release_id = %id, error = %e, "deploy job panicked");
            Err(Box::new(e))
        }
    }
}

/// Runs workers until `shutdown` resolves; then stops taking jobs and lets running ones end.
/// A broken backend (Redis restarted, say) ends apalis's worker with an error; it is rebuilt
/// after a pause, as long as no shutdown was asked for. Releases already running are their
/// own tasks and go on meanwhile.
pub async fn run_workers(
    source: Source,
    deps: Arc<Deps>,
    concurrency: usize,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), QueueError> {
    let sweeper = {
        let deps = deps.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(recovery::SWEEP_EVERY).await;
                if let Err(e) = recovery::sweep_orphans(&deps).await {
                    tracing::warn!(error = %e, "sweeping for lost releases failed");
                }
            }
        })
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let mut generation = 0u32;
    let mut pause = Duration::from_millis(500);
    let result = loop {
        // apalis keys a worker's in-flight jobs by its name: a rebuilt worker gets a new one,
        // so what the broken one held is recovered as orphaned (and skipped: it is not queued).
        let name = match generation {
            0 => deps.worker_name.clone(),
            n => format!("{}.{n}", deps.worker_name),
        };
        let mut rx = stop_rx.clone();
        let signal = async move {
            let _ = rx.wait_for(|stop| *stop).await;
            Ok::<(), WorkerError>(())
        };
        let run = run_once(&source, name, deps.clone(), concurrency, signal).await;
        if *stop_rx.borrow() {
            break run;
        }
        let reason = match run {
            Ok(()) => "ended".to_owned(),
            Err(e) => e.to_string(),
        };
        tracing::warn!(error = %reason, ?pause, "queue worker stopped; starting it again");
        let mut rx = stop_rx.clone();
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = rx.wait_for(|stop| *stop) => break Ok(()),
        }
        pause = (pause * 2).min(Duration::from_secs(10));
        generation += 1;
    };
    sweeper.abort();
    result
}

async fn run_once(
    source: &Source,
    name: String,
    deps: Arc<Deps>,
    concurrency: usize,
    signal: impl std::future::Future<Output = Result<(), WorkerError>> + Send + 'static,
) -> Result<(), QueueError> {
    let result = match source {
        Source::Sqlite {
            pool,
            listener,
            queue,
        } => {
            let cfg = sqlite_config(queue);
            let strategy = apalis_core::backend::ext::poll_strategy::Strategy::new()
                .stream(listener.clone().ready_chunks(cfg.batch_size))
                .interval(Duration::from_secs(2));
            let backend = SqliteStorage::<DeployJob>::new(pool)
                .with_config(cfg)
                .poll_with_strategy(strategy);
            WorkerBuilder::new(name)
                .backend(backend)
                .data(deps)
                .concurrency(concurrency)
                .build(handle)
                .run_until(signal)
                .await
        }
        Source::Redis(storage) => {
            // apalis-redis polls; 100 ms keeps "run → first stage event" short.
            let backend = (**storage)
                .clone()
                .poll_with_interval(Duration::from_millis(100));
            WorkerBuilder::new(name)
                .backend(backend)
                .data(deps)
                .concurrency(concurrency)
                .build(handle)
                .run_until(signal)
                .await
        }
    };
    result.map_err(|e| QueueError::Worker(e.to_string()))
}
