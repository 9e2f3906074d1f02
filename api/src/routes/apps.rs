//! `/api/apps`: what gets released.
use super::environments::{EnvironmentOut, NamedInput};
use super::{ApiResult, Created, Deleted};
use crate::app::ApiTags;
use crate::auth::Auth;
use crate::state::State;
use hippo_shared::db::inventory::App;
use poem::web::Data;
use poem_openapi::OpenApi;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use std::sync::Arc;

/// An app has the same fields as an environment.
pub type AppOut = EnvironmentOut;

fn out(a: App) -> AppOut {
    AppOut {
        id: a.id,
        name: a.name,
        tag: a.tag,
        description: a.description,
        created_at: a.created_at,
        updated_at: a.updated_at,
    }
}

#[derive(Default)]
pub struct AppsApi;

#[OpenApi(prefix_path = "/api/apps", tag = "ApiTags::Apps")]
impl AppsApi {
    /// List apps.
    #[oai(path = "/", method = "get")]
    async fn list(&self, _auth: Auth, st: Data<&Arc<State>>) -> ApiResult<Json<Vec<AppOut>>> {
        Ok(Json(
            st.db.list_apps().await?.into_iter().map(out).collect(),
        ))
    }

    /// Create an app.
    #[oai(path = "/", method = "post")]
    async fn create(
        &self,
        _auth: Auth,
        st: Data<&Arc<State>>,
        body: Json<NamedInput>,
    ) -> ApiResult<Created<AppOut>> {
        let input = body.parse()?;
        Ok(Created::Ok(Json(out(st.db.create_app(&input).await?))))
    }

    /// Get an app.
    #[oai(path = "/:id", method = "get")]
    async fn get(
        &self,
        _auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<i64>,
    ) -> ApiResult<Json<AppOut>> {
        Ok(Json(out(st.db.get_app(id.0).await?)))
    }

    /// Replace an app.
    #[oai(path = "/:id", method = "put")]
    async fn update(
        &self,
        _auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<i64>,
        body: Json<NamedInput>,
    ) -> ApiResult<Json<AppOut>> {
        let input = body.parse()?;
        Ok(Json(out(st.db.update_app(id.0, &input).await?)))
    }

    /// Delete an app (refused while configs use it).
    #[oai(path = "/:id", method = "delete")]
    async fn delete(
        &self,
        _auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<i64>,
    ) -> ApiResult<Deleted> {
        st.db.delete_app(id.0).await?;
        Ok(Deleted::Ok)
    }
}
