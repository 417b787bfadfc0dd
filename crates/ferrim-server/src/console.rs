//! The admin console: static files compiled into the binary, served at `/console`.
//!
//! The console is plain ES modules (no framework, no build step); it talks to the same REST
//! API as any client, with an app token it obtains from the client ID and secret. Nothing
//! here touches the server state.

use axum::extract::Path;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// Only this origin's scripts, styles and API; no inline code, no framing, no forms posting
/// elsewhere.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const INDEX: &str = include_str!("../console/index.html");

/// (file name, content type, bytes)
const ASSETS: &[(&str, &str, &[u8])] = &[
    ("app.js", JS, include_bytes!("../console/app.js")),
    ("api.js", JS, include_bytes!("../console/api.js")),
    ("dom.js", JS, include_bytes!("../console/dom.js")),
    ("overview.js", JS, include_bytes!("../console/overview.js")),
    ("users.js", JS, include_bytes!("../console/users.js")),
    ("devices.js", JS, include_bytes!("../console/devices.js")),
    ("settings.js", JS, include_bytes!("../console/settings.js")),
    ("live.js", JS, include_bytes!("../console/live.js")),
    ("chart.js", JS, include_bytes!("../console/chart.js")),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_bytes!("../console/style.css"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_bytes!("../console/favicon.svg"),
    ),
];

const JS: &str = "text/javascript; charset=utf-8";

/// Routes of the console (stateless; merge into the server's router).
pub fn router() -> Router {
    Router::new()
        .route("/console", get(index))
        .route("/console/", get(index))
        .route("/console/{file}", get(asset))
}

fn secured(mut response: Response, cache: &'static str) -> Response {
    let headers = response.headers_mut();
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}

async fn index() -> Response {
    secured(
        ([(CONTENT_TYPE, "text/html; charset=utf-8")], INDEX).into_response(),
        "no-store",
    )
}

async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        // Revalidate every time: the files change with the binary, not with a versioned URL.
        Some((_, content_type, bytes)) => secured(
            ([(CONTENT_TYPE, *content_type)], *bytes).into_response(),
            "no-cache",
        ),
        None => secured(
            (StatusCode::NOT_FOUND, "not found").into_response(),
            "no-store",
        ),
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;

    async fn get(path: &str) -> Response {
        router()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn index_is_served_with_security_headers_and_no_store() {
        for path in ["/console", "/console/"] {
            let res = get(path).await;
            assert_eq!(res.status(), StatusCode::OK);
            let h = res.headers();
            assert_eq!(h[CACHE_CONTROL], "no-store");
            assert!(h[CONTENT_TYPE].to_str().unwrap().starts_with("text/html"));
            assert!(h[CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap()
                .contains("script-src 'self'"));
            assert_eq!(h[X_FRAME_OPTIONS], "DENY");
        }
    }

    #[tokio::test]
    async fn every_module_the_page_imports_is_embedded() {
        let res = get("/console/app.js").await;
        assert_eq!(res.status(), StatusCode::OK);
        assert!(res.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/javascript"));
        // Every `from './x.js'` in every module names an embedded file.
        for (_, _, bytes) in ASSETS {
            let text = std::str::from_utf8(bytes).unwrap();
            for part in text.split("from './").skip(1) {
                let name = &part[..part.find('\'').unwrap()];
                assert!(
                    ASSETS.iter().any(|(n, _, _)| *n == name),
                    "{name} is imported but not embedded"
                );
            }
        }
    }

    #[tokio::test]
    async fn unknown_files_are_404() {
        assert_eq!(
            get("/console/nope.js").await.status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            get("/console/../Cargo.toml").await.status(),
            StatusCode::NOT_FOUND
        );
    }
}
