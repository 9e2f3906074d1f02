//! Standalone mode: everything in one process. Data in `data_dir`: `hippo.db` (SQLite),
//! `queue.db` (the embedded apalis-sqlite queue, kept apart from ours), `master.key`, `repos/`
//! (repository cache), `artifacts/` (packaged versions), `work/` (scratch).
use crate::state::State;
use hippo_shared::config::Settings;
use hippo_shared::crypto::{self, MasterKey};
use hippo_shared::db::Db;
use hippo_shared::events::EventHub;
use hippo_shared::keys::PlatformKey;
use hippo_worker::context::Deps;
use hippo_worker::git::RepoCache;
use hippo_worker::queue::{self, Source};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Crypto(#[from] crypto::CryptoError),
    #[error(transparent)]
    Db(#[from] hippo_shared::db::DbError),
    #[error(transparent)]
    Key(#[from] hippo_shared::keys::KeyError),
    #[error(transparent)]
    Queue(#[from] queue::QueueError),
}

pub struct Started {
    pub state: Arc<State>,
    pub source: Source,
    /// Set when this start created the `admin` user with a generated password.
    pub generated_admin_password: Option<String>,
}

pub async fn standalone(settings: Settings) -> Result<Started, StartupError> {
    let dir = settings.data_dir.clone();
    std::fs::create_dir_all(&dir).map_err(|source| StartupError::DataDir {
        path: dir.display().to_string(),
        source,
    })?;
    let master = MasterKey::load_or_create(&dir.join("master.key"))?;
    let db = match &settings.database_url {
        Some(url) => Db::connect(url.expose()).await?,
        None => Db::open_sqlite(&dir.join("hippo.db")).await?,
    };
    let key = PlatformKey::load_or_create(&db, &master).await?;
    let mut generated_admin_password = None;
    if db.user_count().await? == 0 {
        let password = match &settings.admin_password {
            Some(p) => p.expose().to_owned(),
            None => {
                let p = crypto::random_password();
                generated_admin_password = Some(p.clone());
                p
            }
        };
        db.create_user("admin", &crypto::hash_password(&password)?, true)
            .await?;
    }
    let (queue, source) = queue::open_standalone(&dir.join("queue.db")).await?;
    let deps = Arc::new(Deps {
        hub: EventHub::new(db.clone()),
        db,
        master,
        key,
        repos: Arc::new(RepoCache::new(dir.join("repos"))),
        worker_name: format!("standalone-{}", std::process::id()),
        settings,
    });
    hippo_worker::runner::recover_after_restart(&deps, &queue).await?;
    Ok(Started {
        state: Arc::new(State::new(deps, queue)),
        source,
        generated_admin_password,
    })
}
