//! `/api/environments`: dev / test / prod.
use super::{ApiResult, Created, Deleted};
use crate::app::ApiTags;
use crate::audit;
use crate::auth::Auth;
use crate::problem::ApiError;
use crate::state::State;
use hippo_shared::db::inventory::{Environment, EnvironmentInput};
use hippo_shared::domain::{Name, Tag};
use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use std::sync::Arc;

/// An environment (also the shape of an app).
#[derive(Object)]
pub struct EnvironmentOut {
    pub id: i64,
    pub name: String,
    /// Unique short name, e.g. `prod`.
    pub tag: String,
    pub description: String,
    pub created_at: String,
    pub updated_at: String,
}

impl From<Environment> for EnvironmentOut {
    fn from(e: Environment) -> Self {
        Self {
            id: e.id,
            name: e.name,
            tag: e.tag,
            description: e.description,
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

/// Create or replace an environment (or an app).
#[derive(Object)]
pub struct NamedInput {
    pub name: String,
    /// 1-32 of a-z, 0-9, `-`, `_`.
    pub tag: String,
    #[oai(default)]
    pub description: String,
}

impl NamedInput {
    pub fn parse(&self) -> Result<EnvironmentInput, ApiError> {
        Ok(EnvironmentInput {
            name: Name::parse(&self.name).map_err(ApiError::field("name"))?,
            tag: Tag::parse(&self.tag).map_err(ApiError::field("tag"))?,
            description: self.description.trim().to_owned(),
        })
    }
}

#[derive(Default)]
pub struct EnvironmentsApi;

#[OpenApi(prefix_path = "/api/environments", tag = "ApiTags::Environments")]
impl EnvironmentsApi {
    /// List environments.
    #[oai(path = "/", method = "get")]
    async fn list(
        &self,
        _auth: Auth,
        st: Data<&Arc<State>>,
    ) -> ApiResult<Json<Vec<EnvironmentOut>>> {
        Ok(Json(
            st.db
                .list_environments()
                .await?
                .into_iter()
                .map(Into::into)
                .collect(),
        ))
    }

    /// Create an environment.
    #[oai(path = "/", method = "post")]
    async fn create(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        body: Json<NamedInput>,
    ) -> ApiResult<Created<EnvironmentOut>> {
        auth.0.require_admin()?;
        let input = body.parse()?;
        let out: EnvironmentOut = st.db.create_environment(&input).await?.into();
        let changes = audit::diff(None, audit::view(&out));
        audit::record(&st, &auth.0, "environment", Some(out.id), "create", changes).await;
        Ok(Created::Ok(Json(out)))
    }

    /// Get an environment.
    #[oai(path = "/:id", method = "get")]
    async fn get(
        &self,
        _auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<i64>,
    ) -> ApiResult<Json<EnvironmentOut>> {
        Ok(Json(st.db.get_environment(id.0).await?.into()))
    }

    /// Replace an environment.
    #[oai(path = "/:id", method = "put")]
    async fn update(
        &self,
        auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<i64>,
        body: Json<NamedInput>,
    ) -> ApiResult<Json<EnvironmentOut>> {
        auth.0.require_admin()?;
        let input = body.parse()?;
        let before: EnvironmentOut = st.db.get_environment(id.0).await?.into();
        let out: EnvironmentOut = st.db.update_environment(id.0, &input).await?.into();
        let changes = audit::diff(audit::view(&before), audit::view(&out));
        audit::record(&st, &auth.0, "environment", Some(id.0), "update", changes).await;
        Ok(Json(out))
    }

    /// Delete an environment (refused while hosts or configs use it).
    #[oai(path = "/:id", method = "delete")]
    async fn delete(&self, auth: Auth, st: Data<&Arc<State>>, id: Path<i64>) -> ApiResult<Deleted> {
        auth.0.require_admin()?;
        let before: EnvironmentOut = st.db.get_environment(id.0).await?.into();
        st.db.delete_environment(id.0).await?;
        let changes = audit::diff(audit::view(&before), None);
        audit::record(&st, &auth.0, "environment", Some(id.0), "delete", changes).await;
        Ok(Deleted::Ok)
    }
}
