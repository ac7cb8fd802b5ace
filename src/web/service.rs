//! The service endpoints for machines: `GET /healthz` and `GET /metrics`, both
//! without login (PRODUCT.md). Neither shows personal data: health names
//! workers and what they failed on (server replies are masked where they
//! are written), metrics are counts.

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::WebState;

pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
}

/// A database that does not answer within this is unhealthy.
const DATABASE_TIMEOUT: Duration = Duration::from_secs(5);

fn text(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

/// 200 `ok` when the database answers and every worker is healthy, else 503
/// with one line per problem.
async fn healthz(State(state): State<WebState>) -> Response {
    let app = state.app();
    let mut problems = Vec::new();
    match tokio::time::timeout(DATABASE_TIMEOUT, app.store.outbox_counts()).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => problems.push(format!("database: {e:#}")),
        Err(_) => problems.push(format!(
            "database: no answer within {} s",
            DATABASE_TIMEOUT.as_secs()
        )),
    }
    if let Err(why) = state.health().check(chrono::Utc::now()) {
        problems.push(why);
    }
    if problems.is_empty() {
        text(StatusCode::OK, "ok\n".into())
    } else {
        text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{}\n", problems.join("\n")),
        )
    }
}

async fn metrics(State(state): State<WebState>) -> Response {
    match crate::metrics::render(&state.app()).await {
        Ok(body) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(e) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot read the metrics: {e:#}\n"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt as _;

    use crate::health::{Health, WORKERS};

    async fn get(router: axum::Router, path: &str) -> (StatusCode, String) {
        let response = router
            .oneshot(Request::get(path).body(Body::empty()).expect("request"))
            .await
            .expect("response");
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("body");
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn healthz_is_ok_while_workers_report_and_503_with_the_reason_when_one_fails() {
        let t = crate::test_support::app("").await;
        let (_tx, rx) = tokio::sync::watch::channel(t.app.clone());
        let health = Health::new(std::time::Duration::from_secs(60));
        for w in WORKERS {
            health.alive(w, std::time::Duration::from_secs(60));
        }
        let router = super::super::router(super::WebState::new(rx).with_health(health.clone()));
        assert_eq!(
            get(router.clone(), "/healthz").await,
            (StatusCode::OK, "ok\n".into())
        );

        let long_ago = chrono::Utc::now() - chrono::Duration::minutes(10);
        health.failing(
            "outbox",
            Some(long_ago),
            "SMTP server x:587: login refused: 535",
        );
        let (status, body) = get(router, "/healthz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            body.starts_with("outbox worker failing since") && body.contains("535"),
            "{body}"
        );
    }

    #[tokio::test]
    async fn metrics_are_prometheus_text_with_the_names_of_product_md() {
        let t = crate::test_support::app("").await;
        let (_tx, rx) = tokio::sync::watch::channel(t.app.clone());
        crate::metrics::message_handled("recorded");
        let (status, body) = get(super::super::router(super::WebState::new(rx)), "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        for line in [
            "# TYPE rsvpd_messages counter",
            "rsvpd_messages_total{outcome=\"recorded\"}",
            "rsvpd_outbox_messages{state=\"queued\"} 0",
            "rsvpd_mails_sent_total",
            "rsvpd_review_open 0",
            "rsvpd_imap_reconnects_total",
            "rsvpd_sending_paused 0",
            "# EOF",
        ] {
            assert!(body.contains(line), "missing {line}:\n{body}");
        }
    }
}
