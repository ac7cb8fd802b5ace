//! Prometheus metrics (`GET /metrics`), through the `prometheus-client` crate.
//!
//! Counters of what this process did (messages handled by outcome, mails
//! sent, IMAP reconnects) live in one process-wide registry, so they survive
//! a SIGHUP reload (which replaces the `App`). Gauges of the state (outbox by
//! state, open review items, whether sending is paused) are read from the
//! database at each scrape, so they are right across several instances and
//! after changes made with the CLI. Label values are fixed words, never
//! addresses or other personal data.

use std::sync::LazyLock;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::app::App;

type Labels = Vec<(&'static str, String)>;

struct Metrics {
    registry: Registry,
    messages: Family<Labels, Counter>,
    mails_sent: Counter,
    imap_reconnects: Counter,
    outbox: Family<Labels, Gauge>,
    review_open: Gauge,
    sending_paused: Gauge,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let mut registry = Registry::default();
    let messages = Family::<Labels, Counter>::default();
    let mails_sent = Counter::default();
    let imap_reconnects = Counter::default();
    let outbox = Family::<Labels, Gauge>::default();
    let review_open = Gauge::default();
    let sending_paused = Gauge::default();
    // Counters get their `_total` suffix from the encoder.
    registry.register(
        "rsvpd_messages",
        "Incoming mails handled, by outcome (recorded, review, ignored, ...)",
        messages.clone(),
    );
    registry.register(
        "rsvpd_mails_sent",
        "Mails handed to the SMTP server (or written as files)",
        mails_sent.clone(),
    );
    registry.register(
        "rsvpd_imap_reconnects",
        "IMAP logins after the first one of this process (the connection was lost or failed)",
        imap_reconnects.clone(),
    );
    registry.register(
        "rsvpd_outbox_messages",
        "Mails in the outbox, by state (queued, sent, failed)",
        outbox.clone(),
    );
    registry.register(
        "rsvpd_review_open",
        "Incoming mails waiting for a human (rsvpd review)",
        review_open.clone(),
    );
    registry.register(
        "rsvpd_sending_paused",
        "1 while the SMTP server or the setup refuses mail (login, sender, TLS, connection)",
        sending_paused.clone(),
    );
    Metrics {
        registry,
        messages,
        mails_sent,
        imap_reconnects,
        outbox,
        review_open,
        sending_paused,
    }
});

/// An incoming mail was handled with `outcome` (recorded, review, ignored, ...).
pub fn message_handled(outcome: &str) {
    METRICS
        .messages
        .get_or_create(&vec![("outcome", outcome.to_string())])
        .inc();
}

/// A mail left through the transport.
pub fn mail_sent() {
    METRICS.mails_sent.inc();
}

/// The IMAP session was lost and logged in again.
pub fn imap_reconnected() {
    METRICS.imap_reconnects.inc();
}

/// The Prometheus text exposition of every metric, the gauges read now.
pub async fn render(app: &App) -> anyhow::Result<String> {
    let counts = app.store.outbox_counts().await?;
    for state in ["queued", "sent", "failed"] {
        let n = counts.iter().find(|(s, _)| s == state).map_or(0, |c| c.1);
        METRICS
            .outbox
            .get_or_create(&vec![("state", state.to_string())])
            .set(n);
    }
    METRICS
        .review_open
        .set(app.store.review_open_count().await?);
    let paused = app
        .store
        .delivery_pause()
        .await?
        .is_some_and(|p| p.ended_at.is_none());
    METRICS.sending_paused.set(i64::from(paused));
    let mut out = String::new();
    encode(&mut out, &METRICS.registry)?;
    Ok(out)
}
