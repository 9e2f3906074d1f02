//! The route table. `/api/*` is the OpenAPI service; `/docs` its Swagger UI; `/openapi.json`
//! the spec; `/healthz` and `/readyz` for load balancers; `/metrics` for Prometheus; every
//! other path is the web console (`crate::console`).
use crate::problem::catch_all;
use crate::routes::{
    apps, audit, configs, environments, hosts, lockouts, people, releases, system,
};
use crate::state::State;
use poem::{Endpoint, EndpointExt, IntoEndpoint, Route, get, handler, http::StatusCode, web::Data};
use poem_openapi::{OpenApiService, Tags};
use std::sync::Arc;

#[derive(Tags)]
pub enum ApiTags {
    /// Log in.
    Auth,
    /// dev / test / prod …
    Environments,
    /// Target servers, reached over SSH.
    Hosts,
    /// What gets released.
    Apps,
    /// How one app is released to one environment.
    ReleaseConfigs,
    /// Release requests, runs, events, rollbacks.
    Releases,
    /// Users, roles and API tokens.
    People,
    /// Platform facts, the audit trail.
    System,
}

pub type Api = (
    system::SystemApi,
    environments::EnvironmentsApi,
    hosts::HostsApi,
    apps::AppsApi,
    configs::ConfigsApi,
    releases::ReleasesApi,
    people::PeopleApi,
    audit::AuditApi,
    lockouts::LockoutsApi,
);

pub fn api_service() -> OpenApiService<Api, ()> {
    OpenApiService::new(Api::default(), "Hippo", env!("CARGO_PKG_VERSION"))
        .description("Self-hosted code release platform: ship code from Git to servers over SSH.")
}

/// The spec as committed in `openapi/openapi.json` (`cargo run -p hippo-api -- openapi`).
pub fn spec_json() -> String {
    api_service().spec()
}

#[handler]
fn healthz() -> &'static str {
    "ok"
}

#[handler]
async fn readyz(state: Data<&Arc<State>>) -> (StatusCode, &'static str) {
    match state.db.ping().await {
        Ok(()) => (StatusCode::OK, "ready"),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "database unavailable"),
    }
}

/// Prometheus metrics (counts and durations only: nothing secret, so no token needed).
#[handler]
async fn metrics(state: Data<&Arc<State>>) -> poem::Response {
    poem::Response::builder()
        .content_type("text/plain; version=0.0.4")
        .body(hippo_shared::metrics::scrape(&state.db).await)
}

pub fn routes(state: Arc<State>) -> impl Endpoint {
    let service = api_service();
    let ui = service.swagger_ui();
    let spec = service.spec_endpoint();
    Route::new()
        .nest_no_strip("/api", service.into_endpoint())
        .nest("/docs", ui)
        .at("/openapi.json", spec)
        .at("/healthz", get(healthz))
        .at("/readyz", get(readyz))
        .at("/metrics", get(metrics))
        .nest("/", crate::console::endpoint())
        .catch_all_error(catch_all)
        .data(state)
}
