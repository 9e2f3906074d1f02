//! Hippo's release worker: takes deploy jobs off the queue and runs a release's stages.
//!
//! The stages, in order (`runner` runs them):
pub mod checkout; // before-checkout hook, fetch, export the commit, after-checkout hook
pub mod cleanup; // per host: keep N versions, never the live or the new one
pub mod notify; // notices about the outcome
pub mod package; // include/exclude filter and the tar.gz that goes to hosts
pub mod prepare; // per host: upload, unpack into a new version folder, before-release hook
pub mod switch; // per host: atomic link switch, after-release hook
//
// The machinery:
pub mod commands; // remote commands as quoted values (never executed here)
pub mod context; // dependencies and the facts of one run, event sink
pub mod git; // repository cache, refs, export of one commit (with submodules)
pub mod hooks; // hooks on the release server
pub mod hostops; // outside releases: connectivity check, platform key install with a password
pub mod lease; // one running release per app × environment: acquire, heartbeat, fencing
pub mod outcome; // one host through prepare → switch → cleanup, the failure policy, recording
pub mod process; // logging, shutdown signal, worker names (both binaries)
pub mod queue; // the deploy queue (embedded or Redis) and its workers
pub mod recovery; // releases cut off by a restart or a dead worker
pub mod retry; // patience with the database (a restart is waited out)
pub mod runner; // the deploy job: lease, status, the stages in order
pub mod sandbox; // bubblewrap around release-server hooks: no data, no secrets, limits
pub mod ssh; // the one SSH transport that runs `commands`
pub mod targets; // one target host: connect with pinned keys, run commands, report events
