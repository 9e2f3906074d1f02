//! Bearer-token authentication. `POST /api/auth/login` issues a session token; every other
//! `/api` operation takes an `Auth` argument, which poem-openapi checks before the handler runs.
use crate::state::State;
use hippo_shared::crypto::token_hash;
use poem::Request;
use poem_openapi::SecurityScheme;
use poem_openapi::auth::Bearer;
use std::sync::Arc;

/// Who is calling. Roles and scopes come with the review issue; the checks will hang off this.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub id: i64,
    pub username: String,
    pub is_admin: bool,
}

/// A bearer token from `POST /api/auth/login`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", checker = "check_token")]
pub struct Auth(pub CurrentUser);

async fn check_token(req: &Request, bearer: Bearer) -> Option<CurrentUser> {
    let state = req.data::<Arc<State>>()?;
    match state.db.user_by_token(&token_hash(&bearer.token)).await {
        Ok(Some(u)) => Some(CurrentUser {
            id: u.id,
            username: u.username,
            is_admin: u.is_admin.0,
        }),
        Ok(None) => None,
        Err(e) => {
            tracing::error!(error = %e, "token lookup failed");
            None
        }
    }
}
