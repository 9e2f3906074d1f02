//! The database: SQLite (standalone) or PostgreSQL (cluster), one code path through sqlx's
//! `Any` driver. One module per group of tables. The SQL is the common subset: `$N`
//! placeholders (first used in order: SQLite numbers named parameters by first appearance),
//! `CAST(.. AS ..)` rather than `::`, `RETURNING id` rather than `last_insert_rowid()`,
//! booleans stored as 0/1 integers, timestamps as RFC 3339 text. Every query is tested on both.
use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;
use std::path::Path;
use std::time::Duration;

pub mod audit;
pub mod configs;
pub mod events;
pub mod git_hosts;
pub mod inventory;
pub mod leases;
pub mod lockouts;
pub mod notices;
pub mod people;
pub mod releases;
pub mod schedule;
pub mod terminal;
pub mod uploads;
pub mod users;
pub mod waves;
pub mod webhooks;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

pub type DbResult<T> = Result<T, DbError>;

/// A boolean column. Both backends store booleans as 0/1 integers (the `Any` driver will not
/// read an SQLite integer as a bool); rows read them through `#[sqlx(try_from = "i64")]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flag(pub bool);

impl From<i64> for Flag {
    fn from(v: i64) -> Self {
        Self(v != 0)
    }
}

/// Maps a unique-constraint violation to `Conflict(msg)`.
pub(crate) fn conflict(msg: &str) -> impl FnOnce(sqlx::Error) -> DbError + '_ {
    move |e| match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => DbError::Conflict(msg.to_owned()),
        sqlx::Error::Database(d) if d.is_foreign_key_violation() => {
            DbError::Conflict("it is still referenced by other records".to_owned())
        }
        _ => DbError::Sqlx(e),
    }
}

pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Which database a `Db` talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone, Debug)]
pub struct Db {
    pub pool: AnyPool,
    pub backend: Backend,
}

impl Db {
    /// Opens (creating if needed) the SQLite file and applies the migrations.
    /// The file (and its WAL and shared-memory files) is readable by Hippo's user only.
    pub async fn open_sqlite(path: &Path) -> DbResult<Self> {
        crate::files::private_sqlite(path).map_err(|e| {
            DbError::Sqlx(sqlx::Error::Configuration(
                format!("{}: {e}", path.display()).into(),
            ))
        })?;
        Self::connect(&format!("sqlite://{}?mode=rwc", path.display())).await
    }

    /// Connects to `sqlite://…` or `postgres://…` and applies that backend's migrations.
    pub async fn connect(url: &str) -> DbResult<Self> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        };
        let opts = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(15));
        let pool = match backend {
            Backend::Postgres => {
                opts.max_connections(16)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            use sqlx::Executor;
                            // No statement may hang a request or a release forever.
                            conn.execute("SET statement_timeout = '30s'").await?;
                            Ok(())
                        })
                    })
                    .connect(url)
                    .await?
            }
            Backend::Sqlite => {
                opts.max_connections(8)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            use sqlx::Executor;
                            conn.execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;")
                                .await?;
                            Ok(())
                        })
                    })
                    .connect(url)
                    .await?
            }
        };
        match backend {
            Backend::Sqlite => sqlx::migrate!("../migrations/sqlite").run(&pool).await?,
            Backend::Postgres => sqlx::migrate!("../migrations/postgres").run(&pool).await?,
        }
        Ok(Self { pool, backend })
    }

    pub async fn setting(&self, key: &str) -> DbResult<Option<Vec<u8>>> {
        Ok(
            sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
                .bind(key)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Stores the pairs unless their keys exist, in one transaction: processes starting at
    /// the same time either all see every pair or none (the first writer wins).
    pub async fn settings_init(&self, pairs: &[(&str, &[u8])]) -> DbResult<()> {
        let mut tx = self.pool.begin().await?;
        for (key, value) in pairs {
            sqlx::query(
                "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
            )
            .bind(*key)
            .bind(value.to_vec())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn ping(&self) -> DbResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}
