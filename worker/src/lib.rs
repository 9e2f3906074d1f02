//! Hippo's release worker: takes deploy jobs off the queue and runs a release's stages.
//!
//! The stages, in order ([`runner`] runs them):
//! - [`checkout`]: before-checkout hook, fetch, export the commit, after-checkout hook
//! - [`package`]: include/exclude filter and the tar.gz that goes to hosts
//! - [`prepare`]: per host: probe, send the full archive or a delta into a new version folder,
//!   before-release hook
//! - [`switch`]: per host: atomic link switch, after-release hook
//! - [`waves`]: the switch a wave at a time, the health check after each (`health`), the
//!   pause between waves, the rollback of a failed wave
//! - [`cleanup`]: per host: keep N versions, never the live or the new one
//! - [`custom`]: a custom release: checkout, then the config's actions in order (switch after
//!   the last transfer), then cleanup
//! - [`notify`]: notices about the outcome (after [`on_failure`], the config's failure hook)
//!
//! The machinery:
//! - [`cancel`]: a running release's cancel request: watched, and where it may stop
//! - [`commands`]: remote commands as quoted values (never executed here)
//! - [`context`]: dependencies and the facts of one run, event sink
//! - [`delta`]: delta redeploys: what a host with a base version must be sent (pure)
//! - [`health`]: a wave's health check: an HTTP(S) URL and/or a command on each host
//! - [`fleet`]: many hosts: how many at once, time limits per command, progress pacing
//! - [`git`]: repository cache, refs, export of one commit (with submodules)
//! - [`hooks`]: hooks on the release server
//! - [`hostops`]: outside releases: connectivity check, platform key install with a password
//! - [`lease`]: one running release per app × environment: acquire, heartbeat, fencing
//! - [`outcome`]: one host through prepare → switch → cleanup, the failure policy, recording
//! - [`process`]: logging, shutdown signal, worker names (both binaries)
//! - [`queue`]: the deploy queue (embedded or Redis) and its workers
//! - [`recovery`]: releases cut off by a restart or a dead worker
//! - [`retry`]: patience with the database (a restart is waited out)
//! - [`runner`]: the deploy job: lease, status, the stages in order
//! - [`sandbox`]: bubblewrap around release-server hooks: no data, no secrets, limits
//! - [`shipping`]: a run's archives (codec, deltas per base), built once, shared by hosts
//! - [`ssh`]: the one SSH transport that runs `commands`
//! - [`ssh_pool`]: SSH connections kept between runs (no new login for the next release)
//! - [`targets`]: one target host: connect with pinned keys, run commands, report events
pub mod cancel;
pub mod checkout;
pub mod cleanup;
pub mod commands;
pub mod context;
pub mod custom;
pub mod delta;
pub mod fleet;
pub mod git;
pub mod health;
pub mod hooks;
pub mod hostops;
pub mod lease;
pub mod notify;
pub mod on_failure;
pub mod outcome;
pub mod package;
pub mod prepare;
pub mod process;
pub mod queue;
pub mod recovery;
pub mod retry;
pub mod runner;
pub mod sandbox;
pub mod shipping;
pub mod ssh;
pub mod ssh_pool;
pub mod switch;
pub mod targets;
pub mod waves;
