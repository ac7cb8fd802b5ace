//! The HTTP server inside the daemon: the service endpoints (`/healthz`,
//! `/metrics`) and the organizers' dashboard, all on the one `[web] listen`
//! address of PRODUCT.md.
//!
//! This module owns the listener, the route table and the hand-over of the
//! current [`App`] across SIGHUP reloads (the listener lives as long as the
//! daemon; every request reads the newest `App`, so a reload that adds a web
//! user or a conference takes effect without dropping a connection). Pages and
//! endpoints live in submodules, one per page. No pipeline logic lives here:
//! handlers read through the storage layer and write through the same library
//! functions the CLI calls.

use std::sync::Arc;

use anyhow::Context as _;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{error, info};

use crate::app::App;
use crate::config::WebConfig;

/// What every handler gets: the daemon's current `App`.
#[derive(Clone)]
pub struct WebState {
    app: watch::Receiver<Arc<App>>,
}

impl WebState {
    pub fn new(app: watch::Receiver<Arc<App>>) -> WebState {
        WebState { app }
    }

    /// The `App` of the configuration in force now (it changes on SIGHUP).
    pub fn app(&self) -> Arc<App> {
        self.app.borrow().clone()
    }
}

/// Every route the daemon serves.
pub fn router(state: WebState) -> Router {
    Router::new().with_state(state)
}

/// Bind `[web] listen` before anything starts, so a port in use stops the
/// start with a message instead of a daemon that silently serves nothing.
pub async fn bind(web: &WebConfig) -> anyhow::Result<TcpListener> {
    TcpListener::bind(web.listen).await.with_context(|| {
        format!(
            "cannot listen on [web] listen = \"{}\"; is another process (or another rsvpd) using that port? Pick a free one",
            web.listen
        )
    })
}

/// Serve until `stop` turns true; requests in flight are finished first.
pub async fn serve(listener: TcpListener, state: WebState, mut stop: watch::Receiver<bool>) {
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    info!(listen = %addr, "serving HTTP");
    let shutdown = async move {
        while !*stop.borrow() {
            if stop.changed().await.is_err() {
                break;
            }
        }
    };
    if let Err(e) = axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
    {
        error!(error = %e, "the HTTP server stopped with an error");
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt as _;

    use super::*;

    /// A router over a fresh test `App`, as handler tests use it.
    pub async fn test_router() -> (crate::test_support::TestApp, Router) {
        let t = crate::test_support::app("").await;
        let (_tx, rx) = watch::channel(t.app.clone());
        let router = router(WebState::new(rx));
        (t, router)
    }

    #[tokio::test]
    async fn an_unknown_path_is_404() {
        let (_t, router) = test_router().await;
        let response = router
            .oneshot(
                Request::get("/no-such-page")
                    .body(Body::empty())
                    .expect("request"),
            )
            .await
            .expect("response");
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }
}
