//! Queue payloads. They carry ids only: the worker reads everything else (and every secret)
//! from the database, so nothing sensitive ever sits in the queue.
use serde::{Deserialize, Serialize};

/// The queue's explicit name (apalis defaults to the Rust type name, which moves with the code).
pub const DEPLOY_QUEUE: &str = "hippo.deploy";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DeployJob {
    pub release_id: i64,
}
