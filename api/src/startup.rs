//! Start-up. Standalone (the default): everything in one process, data in `data_dir`:
//! `hippo.db` (SQLite), `queue.db` (the embedded apalis-sqlite queue, kept apart from ours),
//! `master.key`, `repos/` (repository cache), `artifacts/` (packaged versions), `work/`.
//! Cluster (`HIPPO_REDIS_URL` set, usually with `HIPPO_DATABASE_URL`): the API only queues
//! jobs; `hippo-worker` processes run them.
use crate::state::State;
use hippo_shared::config::Settings;
use hippo_shared::crypto;
use hippo_worker::context::Deps;
use hippo_worker::queue::{self, Source};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Deps(#[from] hippo_worker::context::DepsError),
    #[error(transparent)]
    Crypto(#[from] crypto::CryptoError),
    #[error(transparent)]
    Db(#[from] hippo_shared::db::DbError),
    #[error(transparent)]
    Queue(#[from] queue::QueueError),
    #[error(transparent)]
    Feed(#[from] hippo_shared::feed::FeedError),
}

pub struct Started {
    pub state: Arc<State>,
    /// The in-process workers' side of the queue (standalone only; in cluster mode the
    /// `hippo-worker` processes take the jobs).
    pub source: Option<Source>,
    /// Set when this start created the `admin` user with a generated password.
    pub generated_admin_password: Option<String>,
}

/// Opens everything; standalone when `redis_url` is unset, otherwise the API half of a cluster.
pub async fn start(settings: Settings) -> Result<Started, StartupError> {
    let worker_name = hippo_worker::process::worker_name("api");
    let deps = Arc::new(Deps::build(settings, worker_name).await?);
    let mut generated_admin_password = None;
    if deps.db.user_count().await? == 0 {
        let password = match &deps.settings.admin_password {
            Some(p) => p.expose().to_owned(),
            None => {
                let p = crypto::random_password();
                generated_admin_password = Some(p.clone());
                p
            }
        };
        if let Err(e) = deps
            .db
            .create_user("admin", &crypto::hash_password(&password)?, true)
            .await
        {
            // Another API replica created it first.
            tracing::info!(error = %e, "admin user not created");
            generated_admin_password = None;
        }
    }
    let queue_name = deps.settings.queue_name.clone();
    let (queue, source) = match deps.settings.redis_url.clone() {
        Some(url) => {
            let (queue, _) = queue::open_redis(url.expose(), &queue_name).await?;
            deps.hub
                .follow_redis(url.expose(), hippo_shared::feed::channel(&queue_name))?;
            (queue, None)
        }
        None => {
            let (queue, source) =
                queue::open_standalone(&deps.settings.data_dir.join("queue.db"), &queue_name)
                    .await?;
            // Standalone: this process is the only worker.
            hippo_worker::recovery::recover_after_restart(&deps, &queue).await?;
            (queue, Some(source))
        }
    };
    Ok(Started {
        state: Arc::new(State::new(deps, queue)),
        source,
        generated_admin_password,
    })
}
