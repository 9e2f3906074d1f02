//! The deploy queue. Standalone mode: an embedded apalis-sqlite queue in its own SQLite file
//! (apalis uses sqlx's default migrations table, so it must not share ours), woken by SQLite
//! update hooks for low latency, with a slow poll as a safety net. The same handler serves
//! every backend; only this module knows which one is in use.
use crate::context::Deps;
use crate::runner;
use apalis::prelude::*;
use apalis_sqlite::{Config, SqlitePool, SqliteStorage};
use futures::StreamExt;
use hippo_shared::jobs::{DEPLOY_QUEUE, DeployJob};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("queue storage: {0}")]
    Storage(String),
}

/// The side of the queue that accepts jobs.
#[derive(Clone)]
pub struct Queue {
    storage: SqliteStorage<DeployJob>,
}

/// The side that hands jobs to workers (consumed by [`run_workers`]).
pub struct Source {
    pool: SqlitePool,
    listener: apalis_sqlite::callback::HookCallbackListener,
}

fn config() -> Config {
    Config::default().queue(DEPLOY_QUEUE).batch_size(4)
}

/// Opens (creating if needed) the embedded queue at `path`.
pub async fn open_standalone(path: &Path) -> Result<(Queue, Source), QueueError> {
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let (pool, listener) = SqliteStorage::connect_with_callback(&url)
        .map_err(|e| QueueError::Storage(e.to_string()))?;
    SqliteStorage::setup(&pool)
        .await
        .map_err(|e| QueueError::Storage(e.to_string()))?;
    let storage = SqliteStorage::new(&pool).with_config(config());
    Ok((Queue { storage }, Source { pool, listener }))
}

impl Queue {
    pub async fn push(&self, job: DeployJob) -> Result<(), QueueError> {
        let mut s = self.storage.clone();
        s.push(job)
            .await
            .map_err(|e| QueueError::Storage(e.to_string()))
    }
}

/// The one handler for every backend. The run gets its own task: it uses the multi-thread
/// runtime, and a panic in it becomes an error here instead of taking the worker down.
async fn handle(job: DeployJob, deps: Data<Arc<Deps>>) -> Result<(), BoxDynError> {
    let deps: Arc<Deps> = (*deps).clone();
    let id = job.release_id;
    match tokio::spawn(async move { runner::execute(&deps, id).await }).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => {
            tracing::error!(release_id = id, error = %e, "deploy job failed");
            Err(Box::new(e))
        }
        Err(e) => {
            tracing::error!(release_id = id, error = %e, "deploy job panicked");
            Err(Box::new(e))
        }
    }
}

/// Runs the in-process workers until `shutdown` resolves.
pub async fn run_workers(
    source: Source,
    deps: Arc<Deps>,
    concurrency: usize,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), QueueError> {
    let cfg = config();
    let strategy = apalis_core::backend::ext::poll_strategy::Strategy::new()
        .stream(source.listener.ready_chunks(cfg.batch_size))
        .interval(Duration::from_secs(2));
    let backend = SqliteStorage::<DeployJob>::new(&source.pool)
        .with_config(cfg)
        .poll_with_strategy(strategy);
    let name = deps.worker_name.clone();
    let worker = WorkerBuilder::new(name)
        .backend(backend)
        .data(deps)
        .concurrency(concurrency)
        .build(handle);
    worker
        .run_until(async move {
            shutdown.await;
            Ok::<(), WorkerError>(())
        })
        .await
        .map_err(|e| QueueError::Storage(e.to_string()))
}
