//! What a release run needs: the worker's long-lived dependencies (`Deps`) and the facts of the
//! one release being run (`Run`), including its event sink.
use crate::git::{RepoAuth, RepoCache};
use hippo_shared::config::Settings;
use hippo_shared::crypto::MasterKey;
use hippo_shared::db::Db;
use hippo_shared::db::configs::{ConfigSpec, RepoAuthSpec};
use hippo_shared::db::inventory::{App, Environment, Host};
use hippo_shared::db::releases::Release;
use hippo_shared::domain::{ConfigId, ReleaseId, VersionName};
use hippo_shared::events::{EventHub, EventStatus, ReleaseEvent, Stage};
use hippo_shared::feed;
use hippo_shared::keys::PlatformKey;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Dependencies shared by every job a worker runs.
pub struct Deps {
    pub db: Db,
    pub hub: EventHub,
    pub master: MasterKey,
    pub key: PlatformKey,
    pub repos: Arc<RepoCache>,
    pub settings: Settings,
    /// Unique per worker process (lease holder name).
    pub worker_name: String,
    /// How release-server hooks are confined (found and checked once, at start).
    pub sandbox: crate::sandbox::Sandbox,
    /// Hosts' SSH connections kept between releases (`ssh_pool`).
    pub ssh_pool: Arc<crate::ssh_pool::SshPool>,
}

#[derive(Debug, thiserror::Error)]
pub enum DepsError {
    #[error("data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Crypto(#[from] hippo_shared::crypto::CryptoError),
    #[error(transparent)]
    Db(#[from] hippo_shared::db::DbError),
    #[error(transparent)]
    Key(#[from] hippo_shared::keys::KeyError),
    #[error(transparent)]
    Feed(#[from] hippo_shared::feed::FeedError),
}

impl Deps {
    /// Opens everything a worker (or the API) needs from the settings: the data folder, the
    /// master key, the database (migrated), the platform key, the repository cache.
    pub async fn build(settings: Settings, worker_name: String) -> Result<Self, DepsError> {
        let dir = settings.data_dir.clone();
        // 0700: the master key, the database, repository caches and artifacts live here.
        hippo_shared::files::private_dir(&dir).map_err(|source| DepsError::DataDir {
            path: dir.display().to_string(),
            source,
        })?;
        // Kept copies outside the data folder (`HIPPO_ARTIFACTS_DIR`): private as well.
        if let Some(a) = &settings.artifacts_dir {
            hippo_shared::files::private_dir(a).map_err(|source| DepsError::DataDir {
                path: a.display().to_string(),
                source,
            })?;
        }
        let master = match &settings.master_key {
            Some(hex_key) => MasterKey::from_hex(hex_key.expose())?,
            None => MasterKey::load_or_create(&dir.join("master.key"))?,
        };
        let db = match &settings.database_url {
            Some(url) => Db::connect(url.expose()).await?,
            None => Db::open_sqlite(&dir.join("hippo.db")).await?,
        };
        let key = PlatformKey::load_or_create(&db, &master).await?;
        let mut hub = EventHub::new(db.clone());
        if let Some(url) = &settings.redis_url {
            hub = hub.publish_to_redis(url.expose(), feed::channel(&settings.queue_name))?;
        }
        let sandbox = crate::sandbox::Sandbox::detect(&settings);
        match &settings.hook_sandbox.enabled {
            true => tracing::info!("{}", sandbox.describe()),
            false => tracing::warn!("{}", sandbox.describe()),
        }
        crate::targets::set_host_thread_nice(settings.release_nice);
        let ssh_pool = Arc::new(crate::ssh_pool::SshPool::new(settings.ssh_idle()));
        if !settings.ssh_idle().is_zero() {
            // Closes idle connections every few seconds, until the worker is gone.
            let pool = Arc::downgrade(&ssh_pool);
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                    let Some(pool) = pool.upgrade() else { break };
                    // Off the async threads: freeing libssh2 sessions is not theirs to wait on.
                    let _ = tokio::task::spawn_blocking(move || pool.close_idle()).await;
                }
            });
        }
        Ok(Self {
            hub,
            db,
            master,
            key,
            repos: Arc::new(
                RepoCache::new(dir.join("repos")).refusing_local_paths_in(settings.private_dirs()),
            ),
            worker_name,
            settings,
            sandbox,
            ssh_pool,
        })
    }

    /// Scratch space for running releases (source trees, archives).
    pub fn work_dir(&self) -> PathBuf {
        self.settings.data_dir.join("work")
    }
    /// Archives of released versions, kept so a rollback can re-send a version a host lost:
    /// `<version>.tar.zst` (or `.tar.gz`: zstd off, and versions kept before zstd).
    pub fn artifact_path(
        &self,
        config_id: ConfigId,
        version: &VersionName,
        codec: crate::commands::Codec,
    ) -> PathBuf {
        self.settings
            .artifacts_dir()
            .join(format!("config-{config_id}"))
            .join(format!("{version}.{}", crate::package::extension(codec)))
    }

    /// The credential for a config's repository. Secrets are read here, at use, never queued.
    pub async fn repo_auth(
        &self,
        config_id: ConfigId,
        spec: &ConfigSpec,
    ) -> Result<RepoAuth, String> {
        Ok(match &spec.repo_auth {
            RepoAuthSpec::None => RepoAuth::None,
            RepoAuthSpec::PlatformKey => RepoAuth::SshKey {
                username: "git".into(),
                private_key_openssh: self.key.private_openssh.expose().to_owned(),
            },
            RepoAuthSpec::Token { username } => {
                let sealed = self
                    .db
                    .config_secret(config_id)
                    .await
                    .map_err(|e| e.to_string())?
                    .ok_or("the repository token is not set")?;
                let token = self.master.open(&sealed).map_err(|e| e.to_string())?;
                RepoAuth::Token {
                    username: username.clone(),
                    token: String::from_utf8_lossy(&token).into_owned(),
                }
            }
        })
    }
}

/// At most this many events are written in one transaction.
const EVENT_BATCH: usize = 512;

/// Sends events from any thread (blocking SSH work included); a forwarder stores them in order.
#[derive(Clone)]
pub struct Events {
    tx: mpsc::UnboundedSender<ReleaseEvent>,
    release_id: ReleaseId,
}

impl Events {
    /// The sink and the task that drains it into the hub (ends when every sink is dropped).
    pub fn start(hub: EventHub, release_id: ReleaseId) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, mut rx) = mpsc::unbounded_channel::<ReleaseEvent>();
        let task = tokio::spawn(async move {
            // Whatever has queued up while the last batch was written goes in the next one, in
            // one transaction (superseded progress dropped): 200 hosts' events cost a few
            // commits a second, not one each, and take one database connection at a time.
            let mut batch = Vec::with_capacity(EVENT_BATCH);
            while rx.recv_many(&mut batch, EVENT_BATCH).await > 0 {
                let events = std::mem::take(&mut batch);
                // Kept in order and retried while the database is away (a restart), so a
                // short outage loses no event.
                let store = || hub.publish_batch(events.clone());
                if let Err(e) = crate::retry::retry_db("storing release events", store).await {
                    tracing::error!(error = %e, %release_id, "could not store release events");
                }
            }
        });
        (Self { tx, release_id }, task)
    }
    pub fn event(&self, stage: Stage, status: EventStatus) -> ReleaseEvent {
        ReleaseEvent::new(self.release_id, stage, status)
    }
    pub fn send(&self, ev: ReleaseEvent) {
        // Stamped now: it may wait in the queue for its batch to be written.
        let _ = self.tx.send(ev.stamped());
    }
    pub fn info(&self, stage: Stage, msg: impl Into<String>) {
        self.send(self.event(stage, EventStatus::Info).message(msg));
    }
}

/// One release being run.
pub struct Run {
    pub release: Release,
    pub spec: ConfigSpec,
    pub app: App,
    pub env: Environment,
    pub hosts: Vec<Host>,
    pub version: VersionName,
    pub events: Events,
    /// Scratch folder of this run on the release server.
    pub work: PathBuf,
    /// Whether someone asked to cancel it, and where it may still stop.
    pub cancel: crate::cancel::Cancel,
}

impl Run {
    /// Variables every hook gets (see PRODUCT.md), then the config's custom variables.
    pub fn hook_env(&self, host: Option<&Host>) -> Vec<(String, String)> {
        hook_env(
            &self.release,
            &self.spec,
            &self.app,
            &self.env,
            self.version.as_str(),
            host,
        )
    }
    pub fn version_dir(&self) -> String {
        self.spec.versions_path.join(&self.version)
    }
}

/// [`Run::hook_env`] from its parts, for a hook run outside a run (the failure hook of a run
/// that was cut off: `version` is empty when it had not chosen one).
pub fn hook_env(
    r: &Release,
    spec: &ConfigSpec,
    app: &App,
    env: &Environment,
    version: &str,
    host: Option<&Host>,
) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = [
        ("HIPPO_APP_NAME", app.name.clone()),
        ("HIPPO_APP_TAG", app.tag.clone()),
        ("HIPPO_ENV_TAG", env.tag.clone()),
        ("HIPPO_RELEASE_ID", r.id.to_string()),
        ("HIPPO_RELEASE_NAME", r.name.clone()),
        ("HIPPO_GIT_REF", r.ref_name.clone()),
        ("HIPPO_COMMIT", r.commit_id.to_string()),
        ("HIPPO_VERSION", version.to_owned()),
        ("HIPPO_DEPLOY_PATH", spec.deploy_path.to_string()),
        ("HIPPO_VERSIONS_PATH", spec.versions_path.to_string()),
        ("HIPPO_RELEASE_KIND", r.kind.as_str().to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    if let Some(h) = host {
        v.push(("HIPPO_HOST_NAME".into(), h.name.clone()));
        v.push(("HIPPO_HOST_ADDR".into(), h.addr.clone()));
    }
    v.extend(
        spec.variables
            .iter()
            .map(|x| (x.name.clone(), x.value.clone())),
    );
    v
}
