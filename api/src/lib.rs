//! Hippo's HTTP API: records configs and releases, queues deploy jobs, streams release events,
//! serves the OpenAPI spec and Swagger UI.
//!
//! Modules:
//! - [`app`]: the route table: every route wired in one place, the finished spec, the 405
//!   `Allow` header
//! - [`audit`]: recording changes in the audit trail
//! - [`auth`]: bearer tokens; who may do what, and what they may see
//! - [`body`]: JSON request bodies: size limit, checked against the spec (422 naming the field)
//! - [`channels`]: a config's notice channels as typed shapes (one per channel `type`),
//!   secrets redacted
//! - [`console`]: the web console's built files, with the single-page-app fallback
//! - [`login_guard`]: login limits and lockouts, password hashing off the request threads
//! - [`problem`]: errors as HTTP problems, and the error responses each operation declares
//! - [`repo`]: a config's repository, fetched for resolving refs and listing branches, tags
//!   and commits
//! - [`routes`]: one module per resource, with the spec's tags (`ApiTags`)
//! - [`scheduler`]: scheduled releases queued at their time (exactly once, any replica)
//! - [`server`]: serving HTTP: time-outs for slow clients, a connection limit
//! - [`startup`]: standalone mode: database, keys, admin user, queue, in-process workers
//! - [`state`]: what every handler can reach
//! - [`text`]: the text fields of the API, one type per kind, each with its limits
//! - [`values`]: the API's own value sets (host statuses, audit entities and actions, notice
//!   kinds, channel types) as enums; the domain's enums serve the spec directly
pub mod app;
pub mod audit;
pub mod auth;
pub mod body;
pub mod channels;
pub mod console;
pub mod login_guard;
pub mod problem;
pub mod repo;
pub mod routes;
pub mod scheduler;
pub mod server;
pub mod startup;
pub mod state;
pub mod text;
pub mod values;
