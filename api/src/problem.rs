//! The uniform error body (`Problem`) and the mapping of every library error to an HTTP status.
//! Callers can act on 4xx (the field and the reason are named); 5xx are logged once with the cause.
use hippo_shared::db::DbError;
use hippo_shared::domain::Invalid;
use poem::http::StatusCode;
use poem::{IntoResponse, Response};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object};

/// An error: a stable snake_case code, a sentence for people, and the field at fault if any.
#[derive(Debug, Clone, Object, serde::Serialize)]
pub struct Problem {
    pub error: String,
    pub message: String,
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// 403 only: the permission the caller lacks.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permission: Option<String>,
}

#[derive(Debug, ApiResponse)]
pub enum ApiError {
    /// The request could not be read (bad JSON, wrong types).
    #[oai(status = 400)]
    BadRequest(Json<Problem>),
    /// No or an invalid bearer token.
    #[oai(status = 401)]
    Unauthorized(Json<Problem>),
    /// Not allowed.
    #[oai(status = 403)]
    Forbidden(Json<Problem>),
    /// No such resource.
    #[oai(status = 404)]
    NotFound(Json<Problem>),
    /// The request conflicts with the current state (duplicate, wrong status).
    #[oai(status = 409)]
    Conflict(Json<Problem>),
    /// A field holds a value that is not allowed.
    #[oai(status = 422)]
    Invalid(Json<Problem>),
    /// Too many attempts (logins): wait the `Retry-After` seconds.
    #[oai(status = 429)]
    TooManyRequests(
        Json<Problem>,
        /// Seconds to wait before trying again.
        #[oai(header = "Retry-After")]
        u64,
    ),
    /// A service Hippo depends on (a Git server) failed or timed out.
    #[oai(status = 502)]
    Upstream(Json<Problem>),
    /// A service Hippo itself needs (the queue) is unavailable; try again shortly.
    #[oai(status = 503)]
    Unavailable(Json<Problem>),
    /// Something unexpected; the cause is in the server log.
    #[oai(status = 500)]
    Internal(Json<Problem>),
}

fn p(error: &str, message: impl Into<String>, field: Option<&str>) -> Json<Problem> {
    Json(Problem {
        error: error.into(),
        message: message.into(),
        field: field.map(Into::into),
        permission: None,
    })
}

impl ApiError {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::Invalid(p("invalid_field", message, Some(field)))
    }
    pub fn field(field: &str) -> impl FnOnce(Invalid) -> ApiError + '_ {
        move |e| Self::invalid(field, format!("{field} {}", e.0))
    }
    pub fn not_found(what: &str) -> Self {
        Self::NotFound(p("not_found", format!("{what} not found"), None))
    }
    pub fn conflict(code: &str, message: impl Into<String>) -> Self {
        Self::Conflict(p(code, message, None))
    }
    /// 403: `permission` names what is missing.
    pub fn forbidden(permission: &str, message: impl Into<String>) -> Self {
        Self::Forbidden(Json(Problem {
            error: "forbidden".into(),
            message: message.into(),
            field: None,
            permission: Some(permission.to_owned()),
        }))
    }
    pub fn unauthorized() -> Self {
        Self::Unauthorized(p("unauthorized", "a valid bearer token is required", None))
    }
    pub fn upstream(code: &str, message: impl Into<String>) -> Self {
        Self::Upstream(p(code, message, None))
    }
    /// 429 with `Retry-After: retry_after_secs` (at least 1).
    pub fn too_many(code: &str, message: impl Into<String>, retry_after_secs: u64) -> Self {
        Self::TooManyRequests(p(code, message, None), retry_after_secs.max(1))
    }
    pub fn unavailable(code: &str, message: impl Into<String>) -> Self {
        Self::Unavailable(p(code, message, None))
    }
    pub fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "internal error");
        Self::Internal(p(
            "internal",
            "an unexpected error happened; see the server log",
            None,
        ))
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::NotFound(what) => Self::not_found(what),
            DbError::Conflict(msg) => Self::conflict("conflict", msg),
            other => Self::internal(other),
        }
    }
}

/// Turns every error poem or poem-openapi raises itself (unparsable JSON, a bad query
/// parameter, a missing token, an unknown route) into a `Problem` body.
pub async fn catch_all(err: poem::Error) -> Response {
    let message = err.to_string();
    let resp = err.into_response();
    let is_json = resp
        .headers()
        .get(poem::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return resp;
    }
    let status = resp.status();
    let code = match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        s if s.is_server_error() => "internal",
        _ => "error",
    };
    let message = if status == StatusCode::UNAUTHORIZED {
        "a valid bearer token is required".into()
    } else {
        message
    };
    let body = Problem {
        error: code.into(),
        message,
        field: None,
        permission: None,
    };
    poem::web::Json(body).with_status(status).into_response()
}
