//! Types and services shared by Hippo's API and worker.
pub mod config; // settings: file, then HIPPO_* environment variables
pub mod crypto; // sealing secrets at rest, tokens, password hashes, the platform SSH key
pub mod db; // the database: pool, migrations, one module per table group
pub mod domain; // parsed, trusted values: tags, paths, refs, statuses
pub mod events; // release events: stored, then fanned out live
pub mod feed; // the live event feed across processes (Redis pub/sub, cluster mode)
pub mod files; // owner-only files and folders: the data folder 0700, SQLite files 0600
pub mod jobs; // queue payloads (ids only, never secrets)
pub mod keys; // the platform SSH key pair, sealed at rest
pub mod metrics; // Prometheus text: this process's counters + the database's gauges
pub mod net; // where Hippo may connect for a user: the SSRF guard, repository locations
