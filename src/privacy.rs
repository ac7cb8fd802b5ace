//! Privacy (DSGVO): personal data is kept only `[defaults] retention_days`
//! after a conference ends, then purged; `rsvpd person` shows what is held
//! about an address, `rsvpd forget` erases it. The SQL lives in `storage`.

use chrono::{DateTime, Duration, Utc};
use tracing::info;

use crate::app::App;
use crate::storage::Erased;

/// Purge the personal data of every conference that ended longer ago than the
/// retention time. Cheap when there is nothing to do; safe to call often.
pub async fn purge_due(app: &App, now: DateTime<Utc>) -> anyhow::Result<Erased> {
    let keep = Duration::days(i64::from(app.config.defaults.retention_days));
    let mut total = Erased::default();
    for conf in &app.config.conferences {
        if conf.ends + keep > now {
            continue;
        }
        let e = app.store.purge_conference(&conf.id).await?;
        if e != Erased::default() {
            info!(
                conference = %conf.id,
                registrations = e.registrations,
                received = e.messages_received,
                sent = e.messages_sent,
                "personal data purged after the retention time"
            );
        }
        total.registrations += e.registrations;
        total.messages_received += e.messages_received;
        total.messages_sent += e.messages_sent;
    }
    Ok(total)
}
