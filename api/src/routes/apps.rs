//! `/api/apps`: what gets released.
use super::environments::{EnvironmentOut, NamedInput};
use super::{ApiResult, Created, Deleted};
use crate::app::ApiTags;
use crate::audit;
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
        auth: Auth,
        st: Data<&Arc<State>>,
        body: Json<NamedInput>,
    ) -> ApiResult<Created<AppOut>> {
        auth.0.require_admin()?;
        let input = body.parse()?;
        let app = out(st.db.create_app(&input).await?);
        let changes = audit::diff(None, audit::view(&app));
        audit::record(&st, &auth.0, "app", Some(app.id), "create", changes).await;
        Ok(Created::Ok(Json(app)))
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
        auth: Auth,
        st: Data<&Arc<State>>,
        id: Path<i64>,
        body: Json<NamedInput>,
    ) -> ApiResult<Json<AppOut>> {
        auth.0.require_admin()?;
        let input = body.parse()?;
        let before = out(st.db.get_app(id.0).await?);
        let app = out(st.db.update_app(id.0, &input).await?);
        let changes = audit::diff(audit::view(&before), audit::view(&app));
        audit::record(&st, &auth.0, "app", Some(id.0), "update", changes).await;
        Ok(Json(app))
    }

    /// Delete an app (refused while configs use it).
    #[oai(path = "/:id", method = "delete")]
    async fn delete(&self, auth: Auth, st: Data<&Arc<State>>, id: Path<i64>) -> ApiResult<Deleted> {
        auth.0.require_admin()?;
        let before = out(st.db.get_app(id.0).await?);
        st.db.delete_app(id.0).await?;
        let changes = audit::diff(audit::view(&before), None);
        audit::record(&st, &auth.0, "app", Some(id.0), "delete", changes).await;
        Ok(Deleted::Ok)
    }
}
