//! The realtime layer's `Gateway`, implemented with the REST API's own functions so that a
//! socket and an HTTP client meet exactly the same rules, and the publisher that carries the
//! API's post-commit events onto the bus. Wiring only; the rules live in `banter-api`.

use std::sync::Arc;

use actix_web::ResponseError;
use banter_api::{ApiError, ApiState, CommentEvent, CommentPublisher, Denied};
use banter_bus::{Bus, BusEvent, ChangeKind};
use banter_core::{AccessChange, CommentBody, PostOutcome, User, VideoId};
use banter_protocol::reasons;
use banter_realtime::{Gateway, Refusal, Viewer};

use crate::principals::Principals;
use crate::public_videos::PublicVideos;
type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

pub struct ApiGateway {
    pub state: Arc<ApiState>,
    /// Skips the visibility read for videos known to be public (see `public_videos`).
    pub public: Arc<PublicVideos>,
    /// Skips the session read for sessions seen alive a moment ago (see `principals`).
    pub principals: Arc<Principals>,
}

/// A token's principal: signature and expiry checked every time, the session (or external
/// subject) read from the database unless it was seen alive within the cache's lifetime.
async fn principal(
    state: &ApiState,
    principals: &Principals,
    token: &str,
) -> Result<banter_api::Principal, ApiError> {
    let verified = banter_api::verify_token(state, token).await?;
    if matches!(verified, banter_api::Token::ApiKey(_)) {
        return Err(ApiError::unauthorized(
            banter_api::codes::INVALID_TOKEN,
            "API keys work on the REST API only",
        ));
    }
    if let Some(found) = principals.get(&verified) {
        return Ok(found);
    }
    let generation = principals.generation();
    let found = banter_api::load_principal(state, verified.clone()).await?;
    principals.remember(&verified, &found, generation);
    Ok(found)
}

fn refusal(err: ApiError) -> Refusal {
    if err.status_code().is_server_error() {
        let message = match err {
            ApiError::IdentityProviderUnavailable { .. } => err.to_string(),
            _ => "something went wrong; try again".to_owned(),
        };
        return Refusal::new(reasons::UNAVAILABLE, message).retry_after(err.retry_after());
    }
    Refusal::new(err.code(), err.to_string()).retry_after(err.retry_after())
}

impl ApiGateway {
    /// The video as the primary has it now (a replica may still show a video made private a
    /// moment ago), in one read shared by every caller asking while it runs (a reconnect storm,
    /// a flood of posts); a public video is remembered (`public_videos`).
    fn read_video(
        &self,
        video: VideoId,
    ) -> BoxFuture<'static, Result<Option<banter_core::Video>, Refusal>> {
        let state = self.state.clone();
        let public = self.public.clone();
        Box::pin(async move {
            let read = || -> BoxFuture<'static, Result<Option<banter_core::Video>, Refusal>> {
                let (state, public, video) = (state.clone(), public.clone(), video.clone());
                Box::pin(async move {
                    let generation = public.generation();
                    let found = state
                        .store
                        .primary()
                        .get_video(&video)
                        .await
                        .map_err(|e| refusal(e.into()))?;
                    if found
                        .as_ref()
                        .is_none_or(|v| v.visibility == banter_core::Visibility::Public)
                    {
                        public.remember(video, generation);
                    }
                    Ok(found)
                })
            };
            public.read_shared(&video, read).await
        })
    }
}

impl Gateway for ApiGateway {
    fn authenticate(&self, token: String) -> BoxFuture<'static, Result<Viewer, Refusal>> {
        let state = self.state.clone();
        let principals = self.principals.clone();
        Box::pin(async move {
            let principal = principal(&state, &principals, &token)
                .await
                .map_err(refusal)?;
            Ok(Viewer {
                user: principal.user,
                token,
                expires_at: principal.expires_at,
            })
        })
    }

    fn check_view(
        &self,
        viewer: Option<User>,
        video: VideoId,
    ) -> BoxFuture<'static, Result<(), Refusal>> {
        if self.public.is_public(&video) {
            return Box::pin(std::future::ready(Ok(())));
        }
        let state = self.state.clone();
        let found = self.read_video(video);
        Box::pin(async move {
            let found = found.await?;
            let primary = state.store.primary();
            match banter_api::check_view(primary, found.as_ref(), viewer.as_ref())
                .await
                .map_err(refusal)?
            {
                Ok(()) => Ok(()),
                Err(Denied::SignInRequired) => Err(Refusal::new(
                    reasons::UNAUTHORIZED,
                    "this video is private: sign in",
                )),
                Err(Denied::NotAllowed) => Err(Refusal::new(
                    reasons::PRIVATE_VIDEO,
                    "this video is private",
                )),
            }
        })
    }

    fn post_comment(
        &self,
        viewer: Viewer,
        video: VideoId,
        body: String,
    ) -> BoxFuture<'static, Result<PostOutcome, Refusal>> {
        let state = self.state.clone();
        let principals = self.principals.clone();
        // Not known public: read it the way joins do (shared, and remembered when public), so
        // a hot public video's posts do not read it once each after the cache entry expired.
        let read = (!self.public.is_public(&video)).then(|| self.read_video(video.clone()));
        Box::pin(async move {
            // Re-check the token: the account or device may have been revoked since connecting
            // (a revocation clears the cached session on every node at once).
            let principal = principal(&state, &principals, &viewer.token)
                .await
                .map_err(refusal)?;
            let body = CommentBody::parse(&body).map_err(|e| refusal(e.into()))?;
            let posted = match read {
                None => banter_api::post_comment_to_public(&state, &principal, &video, &body).await,
                Some(read) => {
                    let found = read.await?;
                    banter_api::post_comment_to_seen(
                        &state,
                        &principal,
                        &video,
                        found.as_ref(),
                        &body,
                    )
                    .await
                }
            };
            posted.map_err(refusal)
        })
    }

    fn access_changed(&self, change: &AccessChange) {
        self.state.chat.forget(change);
        match change {
            AccessChange::Video(video) => self.public.forget(video),
            AccessChange::User(user) => self.principals.forget(*user),
            AccessChange::Member { .. } | AccessChange::Chat(_) | AccessChange::SiteChat => {}
        }
    }

    fn forget_cached_access(&self) {
        self.public.forget_all();
        self.principals.forget_all();
        self.state.chat.forget_all();
    }
}

/// Puts the API's committed comment changes on the bus.
pub struct BusPublisher {
    pub bus: Arc<dyn Bus>,
}

impl CommentPublisher for BusPublisher {
    fn publish(&self, event: CommentEvent) {
        let (kind, comment) = match event {
            CommentEvent::Created(c) => (ChangeKind::Created, c),
            CommentEvent::Updated(c) => (ChangeKind::Updated, c),
            CommentEvent::Deleted(c) => (ChangeKind::Deleted, c),
        };
        self.bus.publish(BusEvent::new(kind, comment));
    }

    fn access_changed(&self, change: AccessChange) {
        self.bus.publish_access(change);
    }
}
