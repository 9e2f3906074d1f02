//! Queue payloads. They carry ids only: the worker reads everything else (and every secret)
//! from the database, so nothing sensitive ever sits in the queue.
use crate::domain::ReleaseId;
use serde::{Deserialize, Serialize};

/// The queue's explicit name (apalis defaults to the Rust type name, which moves with the code).
pub const DEPLOY_QUEUE: &str = "hippo.deploy";

/// A job about one release: run it, or (with `notice`) only send one notice about it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DeployJob {
    pub release_id: ReleaseId,
    /// A notice job: the notice kind (`requested`, `approved`, `rejected`). The worker reads
    /// who and why from the release (requester, reviewer, review comment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<String>,
}

impl DeployJob {
    pub fn run(release_id: ReleaseId) -> Self {
        Self {
            release_id,
            notice: None,
        }
    }
    pub fn notice(release_id: ReleaseId, kind: &str) -> Self {
        Self {
            release_id,
            notice: Some(kind.to_owned()),
        }
    }
}
