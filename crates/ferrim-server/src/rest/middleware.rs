//! Layers around every route: CORS, a request span, and request metrics.

use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::http::{header, HeaderValue, Method};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::trace::TraceLayer;
use tracing::Span;

use crate::config::Settings;

/// Wraps the whole router. Applied after all routes are added, since `Router::layer` only
/// wraps the routes present at that point.
pub fn apply(router: Router, settings: &Settings) -> Router {
    router
        .layer(middleware::from_fn(record_metrics))
        .layer(
            TraceLayer::new_for_http()
                // Only method and route: never headers (Authorization), query or bodies.
                .make_span_with(|req: &Request| {
                    let route = req
                        .extensions()
                        .get::<MatchedPath>()
                        .map_or("unmatched", MatchedPath::as_str);
                    tracing::info_span!("http", method = %req.method(), route, status = tracing::field::Empty)
                })
                .on_request(())
                .on_response(|res: &Response, latency: Duration, span: &Span| {
                    span.record("status", res.status().as_u16());
                    tracing::debug!(latency_ms = latency.as_millis() as u64, "response");
                }),
        )
        .layer(cors(&settings.cors_origins))
}

/// CORS for browsers: the SDK preflights `Content-Type` and `Authorization`.
pub(crate) fn cors(origins: &[String]) -> CorsLayer {
    let allow = if origins.is_empty() || origins.iter().any(|o| o.trim() == "*") {
        AllowOrigin::any()
    } else {
        let list: Vec<HeaderValue> = origins
            .iter()
            .filter_map(
                |o| match HeaderValue::from_str(o.trim().trim_end_matches('/')) {
                    Ok(v) => Some(v),
                    Err(_) => {
                        tracing::warn!(origin = %o, "ignoring an invalid CORS origin");
                        None
                    }
                },
            )
            .collect();
        AllowOrigin::list(list)
    };
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION, header::ACCEPT])
        .max_age(Duration::from_secs(24 * 3600))
}

/// `ferrim_http_requests_total{route,method,status}` and
/// `ferrim_http_request_duration_seconds{route}`. Routes are the matched templates, so
/// label values stay few.
async fn record_metrics(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().as_str().to_owned();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!(
        "ferrim_http_requests_total",
        "route" => route.clone(),
        "method" => method,
        "status" => status
    )
    .increment(1);
    metrics::histogram!("ferrim_http_request_duration_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}
