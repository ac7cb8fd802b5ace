//! Unit-test fixtures shared by the notify modules: a fresh `App` on a SQLite
//! file in a temp dir (Maildir source, `.eml` file transport), registrations
//! at chosen times, and the queued mail read back. No servers: the
//! integration tests under `tests/it` run those.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tempfile::TempDir;

use crate::app::App;
use crate::config::{Config, Language};
use crate::register::Actor;
use crate::storage::OutboxItem;
use crate::understand::{Action, Attendee};

pub struct TestApp {
    pub app: Arc<App>,
    pub dir: TempDir,
}

/// A config (usual head plus `rest`) written into a fresh temp dir.
pub fn config(rest: &str) -> (TempDir, anyhow::Result<Config>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = config_in(&dir, rest);
    (dir, config)
}

fn config_in(dir: &TempDir, rest: &str) -> anyhow::Result<Config> {
    let text = format!(
        r#"[mailbox]
url = "maildir://{d}/inbox"
[smtp]
url = "file://{d}/sent"
from = "MiSO-Netzwerk Anmeldung <anmeldung@example.org>"
[database]
url = "sqlite://{d}/rsvpd.db"
{rest}"#,
        d = dir.path().display()
    );
    let path = dir.path().join("rsvpd.toml");
    std::fs::write(&path, &text).expect("write config");
    Config::parse(&path, &text, &|_| None)
}

/// An App whose config is the usual head plus `rest` (`[defaults]`, conferences).
pub async fn app(rest: &str) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = config_in(&dir, rest).expect("test config parses");
    let app = App::open(config).await.expect("app opens");
    TestApp { app, dir }
}

impl TestApp {
    /// The same database opened again, as after a restart.
    pub async fn reopen(&self) -> Arc<App> {
        let config = Config::load(&self.dir.path().join("rsvpd.toml")).expect("config");
        App::open(config).await.expect("app reopens")
    }
}

pub fn attendee(email: &str, name: &str, party_size: u32) -> Attendee {
    Attendee {
        email: email.to_string(),
        name: Some(name.to_string()),
        organization: None,
        party_size,
        companions: vec![],
        workshops: vec![],
        notes: vec![],
        language: Language::De,
        address_note: None,
        party_stated: false,
    }
}

/// Apply `action` as if it came by mail with `message_id`, at `now`.
pub async fn apply(app: &App, action: &Action, message_id: &str, now: DateTime<Utc>) -> String {
    let mut tx = app.store.begin().await.expect("begin");
    let outcome = app
        .registrar()
        .apply(&mut tx, action, Actor::Mail { message_id }, now)
        .await
        .expect("apply");
    tx.commit().await.expect("commit");
    outcome.outcome.to_string()
}

/// Register `email` for `conference` by mail at `at`.
pub async fn register(
    app: &App,
    conference: &str,
    email: &str,
    party_size: u32,
    at: DateTime<Utc>,
) {
    let action = Action::Register {
        conference: conference.to_string(),
        attendees: vec![attendee(email, "Ayşe Yılmaz", party_size)],
    };
    let outcome = apply(app, &action, &format!("reg-{email}"), at).await;
    assert_eq!(outcome, "recorded");
}

pub async fn outbox(app: &App) -> Vec<OutboxItem> {
    app.store.outbox_items().await.expect("outbox")
}

pub async fn outbox_of_kind(app: &App, kind: &str) -> Vec<OutboxItem> {
    outbox(app)
        .await
        .into_iter()
        .filter(|o| o.kind.as_str() == kind)
        .collect()
}

pub async fn raw(app: &App, id: i64) -> Vec<u8> {
    app.store
        .outbox_raw(id)
        .await
        .expect("read")
        .expect("outbox row exists")
}

pub fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("test time")
        .with_timezone(&Utc)
}
