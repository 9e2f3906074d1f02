//! Test harness for Hippo's black-box tests: real sshd hosts, real Git repositories, the real
//! `hippo-api` and `hippo-worker` binaries spoken to over HTTP only.
//!
//! - [`lab`]: the starting point of every story (Hippo, hosts, app, repository);
//! - [`hippo`]: the binaries, started and stopped, and an HTTP/SSE client for the API;
//! - [`browser`]: the console's browser stories (`console/e2e/*.mjs` in Chromium), run and checked;
//! - [`sshd`]: real OpenSSH test hosts in private mount namespaces;
//! - [`git_fixture`]: a real Git repository;
//! - [`services`]: private Redis / PostgreSQL servers a test may restart;
//! - [`listeners`]: webhook receivers for notice tests (one checks signatures, one hangs);
//! - [`proc`]: what every process needs (it dies with the test, a port, deadlines, logs);
//! - [`tree`]: snapshots of directory trees.
pub mod browser;
pub mod git_fixture;
pub mod hippo;
pub mod lab;
pub mod listeners;
pub mod proc;
pub mod services;
pub mod sshd;
pub mod tree;
