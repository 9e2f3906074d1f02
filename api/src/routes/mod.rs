//! One module per resource. Request objects hold raw values; handlers parse them into domain
//! types (naming the field on failure) before anything is written.
pub mod apps;
pub mod audit;
pub mod configs;
pub mod environments;
pub mod hosts;
pub mod lockouts;
pub mod people;
pub mod releases;
pub mod system;

use poem_openapi::ApiResponse;
use poem_openapi::payload::Json;
use poem_openapi::types::{ToJSON, Type};

#[derive(ApiResponse)]
pub enum Created<T: ToJSON + Type + Send + Sync> {
    /// Created.
    #[oai(status = 201)]
    Ok(Json<T>),
}

#[derive(ApiResponse)]
pub enum Deleted {
    /// Deleted.
    #[oai(status = 204)]
    Ok,
}

pub type ApiResult<T> = Result<T, crate::problem::ApiError>;
