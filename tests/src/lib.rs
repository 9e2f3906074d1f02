//! Test harness for Hippo's black-box tests: real sshd hosts, real Git repositories, the real
//! `hippo-api` binary spoken to over HTTP only.
pub mod git_fixture;
pub mod hippo;
pub mod lab;
pub mod listeners; // webhook receivers for notice tests (one checks signatures, one hangs) // the starting point of every story: Hippo, hosts, app, repository
pub mod services; // private Redis / PostgreSQL servers a test may restart
pub mod sshd;
pub mod tree;
