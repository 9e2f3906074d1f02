//! Test harness for Hippo's black-box tests: real sshd hosts, real Git repositories, the real
//! `hippo-api` binary.
pub mod sshd;
