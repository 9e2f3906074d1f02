//! The uniform error body (`Problem`), the mapping of every library error to an HTTP status, and
//! the error responses each operation declares ([`Fail`]: only the codes it can return).
//! Callers can act on 4xx (the field and the reason are named); 5xx are logged once with the cause.
use hippo_shared::db::DbError;
use hippo_shared::domain::Invalid;
use poem::http::StatusCode;
use poem::{IntoResponse, Response};
use poem_openapi::payload::Json;
use poem_openapi::registry::{MetaResponses, Registry};
use poem_openapi::{ApiResponse, Object};

/// An error: a stable snake_case code, a sentence for people, and the field at fault if any.
#[derive(Debug, Clone, Object, serde::Serialize)]
pub struct Problem {
    /// `bad_request`, `unauthorized`, `forbidden`, `not_found`, `conflict`, `invalid_field`,
    /// `payload_too_large`, `unsupported_media_type`, … (stable; match on it).
    pub error: String,
    pub message: String,
    /// The field at fault (`hooks.after_checkout`, `roles[0].role_id`), when one is.
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
    /// The request could not be read (not JSON, a path or query parameter of the wrong type).
    #[oai(status = 400)]
    BadRequest(Json<Problem>),
    /// No or an invalid bearer token.
    #[oai(status = 401)]
    Unauthorized(Json<Problem>),
    /// Not allowed: `permission` names what is missing.
    #[oai(status = 403)]
    Forbidden(Json<Problem>),
    /// No such resource, or one the caller may not see.
    #[oai(status = 404)]
    NotFound(Json<Problem>),
    /// The request conflicts with the current state (duplicate, wrong status, still in use).
    #[oai(status = 409)]
    Conflict(Json<Problem>),
    /// The request body is larger than the limit (`HIPPO_MAX_BODY_BYTES`, default 1 MB).
    #[oai(status = 413)]
    TooLarge(Json<Problem>),
    /// The body is not sent as `Content-Type: application/json`.
    #[oai(status = 415)]
    UnsupportedMediaType(Json<Problem>),
    /// A field holds a value that is not allowed: `field` names it.
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

pub(crate) fn p(error: &str, message: impl Into<String>, field: Option<&str>) -> Json<Problem> {
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
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest(p("bad_request", message, None))
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
    /// The problem's message (for a record of why something failed).
    pub fn message(&self) -> String {
        match self {
            Self::BadRequest(j)
            | Self::Unauthorized(j)
            | Self::Forbidden(j)
            | Self::NotFound(j)
            | Self::Conflict(j)
            | Self::TooLarge(j)
            | Self::UnsupportedMediaType(j)
            | Self::Invalid(j)
            | Self::TooManyRequests(j, _)
            | Self::Upstream(j)
            | Self::Unavailable(j)
            | Self::Internal(j) => j.0.message.clone(),
        }
    }
    pub fn status(&self) -> StatusCode {
        let code = match self {
            Self::BadRequest(_) => 400,
            Self::Unauthorized(_) => 401,
            Self::Forbidden(_) => 403,
            Self::NotFound(_) => 404,
            Self::Conflict(_) => 409,
            Self::TooManyRequests(..) => 429,
            Self::TooLarge(_) => 413,
            Self::UnsupportedMediaType(_) => 415,
            Self::Invalid(_) => 422,
            Self::Upstream(_) => 502,
            Self::Unavailable(_) => 503,
            Self::Internal(_) => 500,
        };
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
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

/// The error codes one operation can answer, as a bit set over [`ApiError`]'s statuses
/// (`Fail<{ AUTH | NOT_FOUND }>`). The spec lists exactly these (and 500, which any operation
/// can answer when the database fails); a handler that returns another is a bug, logged.
pub struct Fail<const CODES: u16>(pub ApiError);

/// 401: the operation takes a bearer token.
pub const AUTH: u16 = 1 << 1;
/// 400: a path or query parameter that does not parse.
pub const BAD_PARAM: u16 = 1 << 0;
pub const FORBIDDEN: u16 = 1 << 2;
/// 404 (with 400 for an id that is not a number).
pub const NOT_FOUND: u16 = 1 << 3 | BAD_PARAM;
pub const CONFLICT: u16 = 1 << 4;
/// A JSON body: 400 (not JSON), 413 (too large), 415 (no JSON content type), 422 (a field).
pub const BODY: u16 = BAD_PARAM | 1 << 5 | 1 << 6 | INVALID;
pub const INVALID: u16 = 1 << 7;
pub const UPSTREAM: u16 = 1 << 8;
pub const UNAVAILABLE: u16 = 1 << 9;
/// 429 (logins): too many attempts, `Retry-After` says when to try again.
pub const TOO_MANY: u16 = 1 << 10;

fn bit(status: u16) -> u16 {
    match status {
        400 => BAD_PARAM,
        401 => AUTH,
        403 => FORBIDDEN,
        404 => 1 << 3,
        409 => CONFLICT,
        413 => 1 << 5,
        415 => 1 << 6,
        422 => INVALID,
        502 => UPSTREAM,
        503 => UNAVAILABLE,
        429 => TOO_MANY,
        _ => 0,
    }
}

/// Whether an operation declaring `codes` may answer `status` (500 always).
pub fn declares(codes: u16, status: u16) -> bool {
    status == 500 || codes & bit(status) != 0
}

impl<const CODES: u16> ApiResponse for Fail<CODES> {
    fn meta() -> MetaResponses {
        let mut meta = ApiError::meta();
        meta.responses
            .retain(|r| r.status.is_some_and(|s| declares(CODES, s)));
        meta
    }
    fn register(registry: &mut Registry) {
        ApiError::register(registry);
    }
}

impl<const CODES: u16> IntoResponse for Fail<CODES> {
    fn into_response(self) -> Response {
        let status = self.0.status().as_u16();
        if !declares(CODES, status) {
            tracing::error!(
                status,
                "an operation answered a status its spec does not declare"
            );
        }
        self.0.into_response()
    }
}

impl<const CODES: u16> From<Fail<CODES>> for poem::Error {
    fn from(f: Fail<CODES>) -> Self {
        poem::Error::from_response(f.into_response())
    }
}

impl<const CODES: u16> From<ApiError> for Fail<CODES> {
    fn from(e: ApiError) -> Self {
        Self(e)
    }
}

impl<const CODES: u16> From<DbError> for Fail<CODES> {
    fn from(e: DbError) -> Self {
        Self(e.into())
    }
}

impl<const CODES: u16> std::fmt::Debug for Fail<CODES> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Turns every error poem or poem-openapi raises itself (unparsable JSON, a bad query
/// parameter, a missing token, an unknown route, an unsupported method) into a `Problem` body.
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
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        s if s.is_server_error() => "internal",
        _ => "error",
    };
    let message = match status {
        StatusCode::UNAUTHORIZED => "a valid bearer token is required".into(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            "send the body as JSON with `Content-Type: application/json`".into()
        }
        _ => message,
    };
    let body = Problem {
        error: code.into(),
        message,
        field: None,
        permission: None,
    };
    let mut out = poem::web::Json(body).with_status(status).into_response();
    // Keep headers such as `Allow` (405) and `WWW-Authenticate` (401).
    for (name, value) in resp.headers() {
        if name != poem::http::header::CONTENT_TYPE && name != poem::http::header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}
