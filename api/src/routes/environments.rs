//! `/api/environments`: dev / test / prod.
use super::{AUTH, ApiResult, ApiTags, BODY, CONFLICT, Created, Deleted, FORBIDDEN, NOT_FOUND};
use crate::audit;
use crate::auth::Auth;
use crate::body::JsonBody;
use crate::problem::ApiError;
use crate::state::State;
use crate::text::{Description, Name, TagText, Timestamp};
use hippo_shared::db::inventory::{Environment, EnvironmentInput};
use hippo_shared::domain;
use hippo_shared::domain::EnvironmentId;
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use std::sync::Arc;

/// An environment.
#[derive(Object)]
pub struct EnvironmentOut {
    pub id: EnvironmentId,
    pub name: String,
    /// Unique short name, e.g. `prod`.
    pub tag: String,
    pub description: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl From<Environment> for EnvironmentOut {
    fn from(e: Environment) -> Self {
        Self {
            id: e.id,
            name: e.name,
            tag: e.tag,
            description: e.description,
            created_at: e.created_at.into(),
            updated_at: e.updated_at.into(),
        }
    }
}

/// Create or replace an environment.
#[derive(Object)]
#[oai(example)]
pub struct EnvironmentIn {
    pub name: Name,
    /// Unique: 1-32 of a-z, 0-9, `-`, `_`.
    pub tag: TagText,
    #[oai(default)]
    pub description: Description,
}

impl EnvironmentIn {
    fn parse(&self) -> Result<EnvironmentInput, ApiError> {
        Ok(EnvironmentInput {
            name: domain::Name::parse(&self.name).map_err(ApiError::field("name"))?,
            tag: domain::Tag::parse(&self.tag).map_err(ApiError::field("tag"))?,
            description: self.description.trim().to_owned(),
        })
    }
}

#[derive(Default)]
pub struct EnvironmentsApi;

#[OpenApi(prefix_path = "/api/environments", tag = "ApiTags::Environments")]
impl EnvironmentsApi {
    /// List environments (every signed-in user sees them all: they only name places).
    #[oai(path = "/", method = "get", operation_id = "listEnvironments")]
    async fn list(
        &self,
        _auth: Auth,
        st: Data<&Arc<State>>,
    ) -> ApiResult<Json<Vec<EnvironmentOut>>, AUTH> {
        Ok(Json(
            st.db
                .list_environments()
                .await?
                .into_iter()
                .map(Into::into)
                .collect(),
        ))
    }

    /// Create an environment (admins).
    #[oai(path = "/", method = "post", operation_id = "createEnvironment")]
    async fn create(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        body: JsonBody<EnvironmentIn>,
    ) -> ApiResult<Created<EnvironmentOut>, { AUTH | BODY | FORBIDDEN | CONFLICT }> {
        auth.0.require_admin()?;
        let input = body.parse()?;
        let out: EnvironmentOut = st.db.create_environment(&input).await?.into();
        let changes = audit::diff(None, audit::view(&out));
        audit::record(&st, &auth.0, "environment", Some(out.id), "create", changes).await;
        Ok(Created::Ok(Json(out)))
    }

    /// Get an environment.
    #[oai(path = "/:id", method = "get", operation_id = "getEnvironment")]
    async fn get(
        &self,
        _auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<EnvironmentId>,
    ) -> ApiResult<Json<EnvironmentOut>, { AUTH | NOT_FOUND }> {
        Ok(Json(st.db.get_environment(id.0).await?.into()))
    }

    /// Replace an environment (admins).
    #[oai(path = "/:id", method = "put", operation_id = "updateEnvironment")]
    async fn update(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<EnvironmentId>,
        body: JsonBody<EnvironmentIn>,
    ) -> ApiResult<Json<EnvironmentOut>, { AUTH | BODY | FORBIDDEN | NOT_FOUND | CONFLICT }> {
        auth.0.require_admin()?;
        let input = body.parse()?;
        let before: EnvironmentOut = st.db.get_environment(id.0).await?.into();
        let out: EnvironmentOut = st.db.update_environment(id.0, &input).await?.into();
        let changes = audit::diff(audit::view(&before), audit::view(&out));
        audit::record(&st, &auth.0, "environment", Some(id.0), "update", changes).await;
        Ok(Json(out))
    }

    /// Delete an environment (admins; refused with 409 while hosts or configs use it).
    #[oai(path = "/:id", method = "delete", operation_id = "deleteEnvironment")]
    async fn delete(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<EnvironmentId>,
    ) -> ApiResult<Deleted, { AUTH | FORBIDDEN | NOT_FOUND | CONFLICT }> {
        auth.0.require_admin()?;
        let before: EnvironmentOut = st.db.get_environment(id.0).await?.into();
        st.db.delete_environment(id.0).await?;
        let changes = audit::diff(audit::view(&before), None);
        audit::record(&st, &auth.0, "environment", Some(id.0), "delete", changes).await;
        Ok(Deleted::Ok)
    }
}

impl poem_openapi::types::Example for EnvironmentIn {
    fn example() -> Self {
        Self {
            name: "Production".into(),
            tag: "prod".into(),
            description: "Where customers are".into(),
        }
    }
}
