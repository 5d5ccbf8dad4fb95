//! Trace context across the bus: a comment's W3C `traceparent` travels with its event, inside
//! the node and in the Redis message, so the trace that began with the REST request or socket
//! push that created the comment continues on every node that delivers it.
//!
//! Uses only the OpenTelemetry API and the globally installed propagator: when the binary
//! installs no tracer (no `OTEL_EXPORTER_OTLP_ENDPOINT`), spans have no valid context,
//! `current()` is `None` and nothing is added to messages. Kept out: exporters and the SDK
//! (`banter-server/src/telemetry.rs`).

use std::collections::HashMap;

use opentelemetry::global;
use opentelemetry::trace::TraceContextExt;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The `traceparent` of the current span, if tracing is on and the span is sampled into one.
pub fn current() -> Option<String> {
    of(&tracing::Span::current())
}

/// The `traceparent` of `span`.
pub fn of(span: &tracing::Span) -> Option<String> {
    let cx = span.context();
    if !cx.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = HashMap::new();
    global::get_text_map_propagator(|p| p.inject_context(&cx, &mut carrier));
    carrier.remove("traceparent")
}

/// Makes `span` a child of the remote span `traceparent` names (no-op for `None` or garbage).
pub fn continue_from(span: &tracing::Span, traceparent: Option<&str>) {
    let Some(tp) = traceparent else { return };
    let carrier = HashMap::from([("traceparent".to_owned(), tp.to_owned())]);
    let cx = global::get_text_map_propagator(|p| p.extract(&carrier));
    if cx.span().span_context().is_valid() {
        let _ = span.set_parent(cx);
    }
}
