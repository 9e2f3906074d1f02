//! Hippo's HTTP API: records configs and releases, queues deploy jobs, streams release events,
//! serves the OpenAPI spec and Swagger UI.

/// The route table: every route wired in one place, the finished spec, the 405 `Allow` header.
pub mod app;
/// Recording changes in the audit trail.
pub mod audit;
/// Bearer tokens; who may do what, and what they may see.
pub mod auth;
/// JSON request bodies: size limit, checked against the spec (422 naming the field).
pub mod body;
/// A config's notice channels as typed shapes (one per channel `type`), secrets redacted.
pub mod channels;
/// The web console's built files, with the single-page-app fallback.
pub mod console;
/// Login limits and lockouts, password hashing off the request threads.
pub mod login_guard;
/// Errors as HTTP problems, and the error responses each operation declares.
pub mod problem;
/// A config's repository, fetched for resolving refs and listing branches, tags and commits.
pub mod repo;
/// One module per resource.
pub mod routes;
/// Serving HTTP: time-outs for slow clients, a connection limit.
pub mod server;
/// Standalone mode: database, keys, admin user, queue, in-process workers.
pub mod startup;
/// What every handler can reach.
pub mod state;
/// The text fields of the API, one type per kind, each with its limits.
pub mod text;
/// The value sets of the API (permissions, statuses, stages, …) as enums.
pub mod values;
