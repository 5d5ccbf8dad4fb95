//! `/api/admin/*`: user management for admins.

use actix_web::{HttpResponse, get, patch, web};
use banter_core::{AccessChange, Role, UserId};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::Principal;
use crate::dto::{AdminUpdateUserRequest, UserDto, UsersPage};
use crate::json_body::JsonBody;
use crate::{ApiError, ApiState};

pub const MAX_PAGE: u32 = 100;

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListUsersQuery {
    /// Return users after this id (the previous page's `next_after`).
    after: Option<uuid::Uuid>,
    /// 1 to 100, default 50.
    limit: Option<u32>,
}

/// All users, oldest first, by keyset pagination.
#[utoipa::path(
    tag = "admin",
    params(ListUsersQuery),
    responses((status = 200, body = UsersPage), (status = 401), (status = 403)),
    security(("bearer" = []))
)]
#[get("/api/admin/users")]
pub async fn list_users(
    principal: Principal,
    state: web::Data<ApiState>,
    query: web::Query<ListUsersQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require_admin("use the admin API")?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::validation(
            crate::codes::INVALID_FIELD,
            format!("limit must be between 1 and {MAX_PAGE}"),
        ));
    }
    let users = state
        .store
        .replica()
        .list_users(query.after.map(UserId::from_uuid), limit)
        .await?;
    let next_after = (users.len() == limit as usize)
        .then(|| users.last().map(|u| u.id.as_uuid()))
        .flatten();
    Ok(HttpResponse::Ok().json(UsersPage {
        users: users.iter().map(UserDto::from).collect(),
        next_after,
    }))
}

/// Change a user's role or deactivate/reactivate them. A deactivated user's tokens stop
/// working immediately and their sockets are closed; a demoted moderator loses the videos
/// only that role let them watch, on every node.
#[utoipa::path(
    tag = "admin",
    params(("user_id" = uuid::Uuid, Path)),
    request_body = AdminUpdateUserRequest,
    responses((status = 200, body = UserDto), (status = 401), (status = 403), (status = 404), (status = 422)),
    security(("bearer" = []))
)]
#[patch("/api/admin/users/{user_id}")]
pub async fn update_user(
    principal: Principal,
    state: web::Data<ApiState>,
    path: web::Path<uuid::Uuid>,
    body: JsonBody<AdminUpdateUserRequest>,
) -> Result<HttpResponse, ApiError> {
    principal.require_admin("use the admin API")?;
    let role = body.role.as_deref().map(str::parse::<Role>).transpose()?;
    let user = state
        .store
        .primary()
        .update_standing(UserId::from_uuid(*path), role, body.is_active)
        .await?
        .ok_or_else(|| ApiError::NotFound("no such user".into()))?;
    tracing::info!(admin = %principal.user.id, user = %user.id, role = %user.role, active = user.is_active, "user standing changed");
    state.publisher.access_changed(AccessChange::User(user.id));
    Ok(HttpResponse::Ok().json(UserDto::from(&user)))
}
