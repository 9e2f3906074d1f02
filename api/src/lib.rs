//! Hippo's HTTP API: records configs and releases, queues deploy jobs, streams release events,
//! serves the OpenAPI spec and Swagger UI.
pub mod app; // the route table: every route wired in one place
pub mod audit; // recording changes in the audit trail
pub mod auth; // bearer tokens, who may do what
pub mod console; // the web console's built files, with the single-page-app fallback
pub mod login_guard; // login limits and lockouts, password hashing off the request threads
pub mod problem; // errors as HTTP problems
pub mod routes; // one module per resource
pub mod server; // serving HTTP: time-outs for slow clients, a connection limit
pub mod startup; // standalone mode: database, keys, admin user, queue, in-process workers
pub mod state; // what every handler can reach
