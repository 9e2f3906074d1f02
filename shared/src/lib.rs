//! Types and services shared by Hippo's API and worker.
//!
//! Modules:
//! - [`config`]: settings: file, then `HIPPO_*` environment variables
//! - [`crypto`]: sealing secrets at rest, tokens, password hashes, the platform SSH key
//! - [`db`]: the database: pool, migrations, one module per table group (all of Hippo's SQL)
//! - [`domain`]: parsed, trusted values: typed ids, tags, paths, refs, statuses
//! - [`custom`]: custom releases: a config's ordered actions (commands, transfers)
//! - [`events`]: release events: stored, then fanned out live
//! - [`feed`]: the live event feed across processes (Redis pub/sub, cluster mode)
//! - [`files`]: owner-only files and folders: the data folder 0700, SQLite files 0600
//! - [`jobs`]: queue payloads (ids only, never secrets)
//! - [`keys`]: the platform SSH key pair, sealed at rest
//! - [`metrics`]: Prometheus text: this process's counters + the database's gauges
//! - [`net`]: where Hippo may connect for a user: the SSRF guard, repository locations
//! - [`secret`]: a string never shown: `Debug`/`Display` print `***`, only `expose()` reveals it
//! - [`waves`]: a config's rollout: waves, the health check after each, the pause between them
pub mod config;
pub mod crypto;
pub mod custom;
pub mod db;
pub mod domain;
pub mod events;
pub mod feed;
pub mod files;
pub mod jobs;
pub mod keys;
pub mod metrics;
pub mod net;
pub mod secret;
pub mod waves;
