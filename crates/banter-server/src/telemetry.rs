//! Logging and tracing. Logs: `tracing` with an env-filter, as text or JSON lines (JSON lines
//! carry the current spans, and so the trace id once tracing is on). Traces: OpenTelemetry over
//! OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (the standard `OTEL_*` variables apply:
//! protocol, service name, batch delay); otherwise no tracer is installed and spans cost what a
//! disabled `tracing` span costs. Every HTTP request gets a server span that continues an
//! incoming W3C `traceparent`.
//!
//! Secrets never reach a log line or a span: request spans record the method, the route
//! pattern and the status, never the query string or headers. Kept out: metrics (`metrics`).

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::settings::LogFormat;

/// Keeps the tracer alive; `shutdown` flushes the spans not yet exported.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(e) = provider.shutdown()
        {
            eprintln!("flushing traces failed: {e}");
        }
    }
}

fn tracer_provider() -> anyhow::Result<Option<SdkTracerProvider>> {
    let endpoint = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").unwrap_or_default();
    if endpoint.trim().is_empty() {
        return Ok(None);
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
        .map_err(|e| anyhow::anyhow!("OTLP exporter for {endpoint}: {e}"))?;
    let service = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| "banter".to_owned());
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(service)
                .build(),
        )
        .build();
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    opentelemetry::global::set_tracer_provider(provider.clone());
    Ok(Some(provider))
}

/// Installs the global subscriber (and the tracer when configured). Returns an error if a
/// subscriber is already installed.
pub fn init<W>(format: LogFormat, level: &str, writer: W) -> anyhow::Result<Telemetry>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    // The OTLP exporter's HTTP client needs the TLS provider (see `banter_api::http_client`).
    banter_api::install_tls_provider();
    let filter = EnvFilter::try_from_env("BANTER_LOG")
        .or_else(|_| EnvFilter::try_new(level))
        .map_err(|e| anyhow::anyhow!("invalid log level {level:?}: {e}"))?;
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let fmt = tracing_subscriber::fmt::layer()
        .with_ansi(ansi)
        .with_writer(writer);
    let fmt = match format {
        LogFormat::Json => fmt
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .boxed(),
        LogFormat::Text => fmt.boxed(),
    };
    let provider = tracer_provider()?;
    let otel = provider
        .as_ref()
        .map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer("banter")));
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel)
        .try_init()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(Telemetry { provider })
}

/// Middleware: one server span per request, the child of the caller's `traceparent` if any,
/// named after the matched route's pattern once routing is done.
pub async fn trace_http(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let span = tracing::info_span!(
        "HTTP request",
        otel.kind = "server",
        http.request.method = %req.method(),
        http.route = tracing::field::Empty,
        http.response.status_code = tracing::field::Empty,
        trace_id = tracing::field::Empty,
    );
    let traceparent = req
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    banter_bus::trace::continue_from(&span, traceparent.as_deref());
    // traceparent is 00-<trace id>-<span id>-<flags>: put the trace id in the logs.
    if let Some(tp) = banter_bus::trace::of(&span)
        && let Some(trace_id) = tp.split('-').nth(1)
    {
        span.record("trace_id", trace_id);
    }
    let method = req.method().to_string();
    // Inner middleware create their spans when called, so call inside this span too.
    let call = {
        let _entered = span.enter();
        next.call(req)
    };
    let response = call.instrument(span.clone()).await?;
    let route = response
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    // The span has started (its context was read), so rename the OpenTelemetry span itself.
    span.context()
        .span()
        .update_name(format!("{method} {route}"));
    span.record("http.route", route);
    span.record("http.response.status_code", response.status().as_u16());
    Ok(response)
}
