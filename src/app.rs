//! The shared state of a running rsvpd: the configuration, the store, the
//! renderer and the wake-ups between workers. Every flow (pipeline, outbox,
//! schedule, broadcast, privacy) takes an `&App`; the daemon and the CLI
//! commands build one with `App::open`. It holds no logic of its own beyond
//! opening and the views of the config the flows share.

use std::sync::Arc;

use chrono::Utc;

use crate::config::Config;
use crate::mailer::Renderer;
use crate::register::Registrar;
use crate::storage::Store;
use crate::understand::{ConferenceRef, WorkshopRef};

/// The shared state of a running rsvpd.
pub struct App {
    pub config: Config,
    pub store: Store,
    pub renderer: Renderer,
    /// Woken whenever mail is queued, so the outbox worker need not poll.
    pub outbox_wakeup: tokio::sync::Notify,
    /// Woken when registrations change (or the config does), so the scheduler
    /// recomputes its next due time instead of polling.
    pub schedule_wakeup: tokio::sync::Notify,
    /// Mails the server took whose outcome is not committed yet (see
    /// `outbox::record_pending`).
    pub outbox_pending: std::sync::Mutex<Vec<(i64, crate::storage::Outcome)>>,
}

impl App {
    pub async fn open(config: Config) -> anyhow::Result<Arc<App>> {
        let store = Store::open(&config.database).await?;
        store.sync_conferences(&config.conferences).await?;
        let renderer = Renderer::new(&config)?;
        Ok(Arc::new(App {
            config,
            store,
            renderer,
            outbox_wakeup: tokio::sync::Notify::new(),
            schedule_wakeup: tokio::sync::Notify::new(),
            outbox_pending: std::sync::Mutex::new(Vec::new()),
        }))
    }

    pub fn registrar(&self) -> Registrar<'_> {
        Registrar {
            config: &self.config,
            renderer: &self.renderer,
        }
    }

    pub fn conference_refs(&self) -> Vec<ConferenceRef> {
        let now = Utc::now();
        self.config
            .conferences
            .iter()
            .map(|c| ConferenceRef {
                id: c.id.clone(),
                title: c.title.clone(),
                aliases: c.aliases.clone(),
                workshops: c
                    .workshops
                    .iter()
                    .map(|w| WorkshopRef {
                        id: w.id.clone(),
                        title: w.title.clone(),
                    })
                    .collect(),
                open: c.is_open(now),
                address: c.address.clone(),
                capacity: c.capacity,
            })
            .collect()
    }
}
