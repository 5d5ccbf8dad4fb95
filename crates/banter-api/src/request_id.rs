//! Request ids: every request gets one (or keeps a sane `x-request-id` it arrived with). It is
//! returned in the `x-request-id` header, put in every error body, and recorded on the request's
//! log span. The id is held in a task-local for the duration of the request so that error
//! responses, which are built deep inside handlers and extractors, can include it.

use std::future::{Ready, ready};
use std::rc::Rc;

use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::header::{HeaderName, HeaderValue};
use futures_util::future::LocalBoxFuture;
use tracing::Instrument;

pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The current request's id, or `"-"` outside a request.
pub fn current() -> String {
    REQUEST_ID
        .try_with(Clone::clone)
        .unwrap_or_else(|_| "-".to_owned())
}

/// Middleware assigning request ids and the per-request log span.
pub struct RequestIds;

impl<S, B> Transform<S, ServiceRequest> for RequestIds
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Transform = RequestIdService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RequestIdService {
            service: Rc::new(service),
        }))
    }
}

pub struct RequestIdService<S> {
    service: Rc<S>,
}

fn inbound_id(req: &ServiceRequest) -> Option<String> {
    let value = req.headers().get(&HEADER)?.to_str().ok()?;
    let sane = !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    sane.then(|| value.to_owned())
}

impl<S, B> Service<ServiceRequest> for RequestIdService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let id = inbound_id(&req).unwrap_or_else(|| uuid::Uuid::now_v7().simple().to_string());
        // The path, never the query string: tokens must not reach the logs.
        let span = tracing::info_span!(
            "http",
            request_id = %id,
            method = %req.method(),
            path = %req.path(),
            status = tracing::field::Empty,
        );
        let service = Rc::clone(&self.service);
        let header = HeaderValue::from_str(&id).ok();
        Box::pin(
            REQUEST_ID
                .scope(id, async move {
                    let started = std::time::Instant::now();
                    let mut res = service.call(req).await?;
                    let status = res.status().as_u16();
                    tracing::Span::current().record("status", status);
                    tracing::info!(
                        status,
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "request"
                    );
                    if let Some(header) = header {
                        res.headers_mut().insert(HEADER, header);
                    }
                    Ok(res)
                })
                .instrument(span),
        )
    }
}
