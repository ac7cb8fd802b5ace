//! The daemon: the mailbox, schedule and outbox workers, their loops, and shutdown.
//!
//! Each worker calls its one-step function (`mailbox::step`, `schedule::step`,
//! `outbox::step`) and
//! only *waits* in a cancellable way: a step that has begun is finished, so
//! SIGTERM never cuts a message in half. Shutdown is a watch channel passed to
//! every loop; `run` waits for the loops to end (bounded, so the process exits
//! within seconds even if a server hangs — an interrupted send stays queued and
//! is retried). Errors in a step are logged and retried with backoff; they never
//! end the daemon. SIGHUP reloads the configuration: the new one is opened
//! first, then the old workers stop and new ones start.
//!
//! Only one process reads the mailbox (`storage::reader`). The mailbox worker
//! stands by until it holds the reader's lease, reads while it holds it, and
//! stands by again when it loses it; the schedule and outbox workers run in
//! every instance regardless. The lease outlives a SIGHUP reload (the new
//! worker takes it over). On SQLite a second daemon is refused at start; a
//! `run --once` beside a daemon leaves the mailbox to it.
//!
//! Every loop tells `health` by when it reports again and how its steps go;
//! the systemd watchdog is fed from that (a hung worker gets the service
//! restarted), not from the signal loop, and `STATUS=` says what the daemon
//! is doing.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::app::App;
use crate::config::{Config, DatabaseConfig};
use crate::health::Health;
use crate::mailbox::{self, Source};
use crate::mailer::Transport;
use crate::outbox::{self, Step};
use crate::schedule;
use crate::storage::{ReaderLease, ReaderRole, Reading, is_fenced};
use crate::web;

/// `rsvpd run --once`: drain the mailbox — sending what its mails queued
/// meanwhile, as the daemon does —, then the due schedules, then send what is
/// still due (in batches); return when all is done.
pub async fn run_once(config: Config) -> anyhow::Result<()> {
    let app = App::open(config).await?;
    let transport = Transport::new(&app.config.smtp)?;
    let reader = app
        .store
        .try_read_mailbox(ReaderRole::Once, Duration::ZERO)
        .await?;
    let (handled, mut sent, mut throttled) = match reader {
        Reading::Granted(lease) => {
            // Confirmations go out while the mailbox is still read, as in the
            // daemon: what a batch queued is sent while the next is read.
            let (done_tx, done_rx) = watch::channel(false);
            let sending = tokio::spawn({
                let (app, transport) = (app.clone(), transport.clone());
                async move {
                    let mut throttled = false;
                    let sent = send_due(&app, &transport, Some(done_rx), &mut throttled).await;
                    (sent, throttled)
                }
            });
            let mut source = Source::new(&app.config);
            let handled = mailbox::drain(&app, &mut source, lease.fence()).await;
            let _ = done_tx.send(true);
            let (sent, throttled) = sending.await.context("the sending task failed")?;
            // The reader also deletes what `forget` queued (it has the password).
            erase_mailbox_copies(&app).await;
            // Given back before the rest, so a daemon waiting for it reads on.
            lease.release().await;
            (handled.context("reading the mailbox")?, sent?, throttled)
        }
        Reading::Busy(holder) => {
            info!(
                "the mailbox is read by another rsvpd ({holder}); leaving it to that one and running only the due schedules and the outbox"
            );
            (0, 0, false)
        }
    };
    let scheduled = schedule::drain(&app, chrono::Utc::now())
        .await
        .context("running the due schedules")?;
    crate::privacy::purge_due(&app, chrono::Utc::now())
        .await
        .context("purging personal data after the retention time")?;
    sent += send_due(&app, &transport, None, &mut throttled).await?;
    info!(handled, scheduled, sent, "run --once finished");
    app.store.close().await;
    Ok(())
}

/// Send what is due, in batches, until nothing is due — or, with `reading`,
/// until nothing is due *and* the mailbox has been read to its end (until
/// then an empty outbox waits for the next registration). Returns how many
/// mails were handled; a pause of sending ends it early.
async fn send_due(
    app: &App,
    transport: &Transport,
    mut reading: Option<watch::Receiver<bool>>,
    throttled: &mut bool,
) -> anyhow::Result<usize> {
    let mut sent = 0;
    loop {
        let step = outbox::step_many(app, transport, outbox::BATCH, &|| {}).await?;
        let still_reading = reading.as_ref().is_some_and(|done| !*done.borrow());
        let wait = match step {
            (Step::Worked, n) => {
                sent += n;
                continue;
            }
            (Step::Throttled(until), _) => {
                if !std::mem::replace(throttled, true) {
                    info!("{}", outbox::backlog_notice(app).await?);
                }
                (until - chrono::Utc::now())
                    .to_std()
                    .unwrap_or(Duration::from_millis(200))
            }
            (Step::Idle(_), _) if still_reading => OUTBOX_RECHECK,
            (Step::Idle(_), _) => break,
            (Step::Paused(until), _) => {
                warn!(
                    retry_at = %crate::storage::ts(until),
                    "sending is paused (see the error above); queued mail stays in the outbox"
                );
                break;
            }
        };
        match reading.as_mut().filter(|_| still_reading) {
            Some(done) => {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = app.outbox_wakeup.notified() => {}
                    _ = done.changed() => {}
                }
            }
            None => tokio::time::sleep(wait).await,
        }
    }
    Ok(sent)
}

/// The mailbox reader's lease between two mailbox workers: taken at start
/// (SQLite), handed from the old worker to the new one across a reload, given
/// back at shutdown.
type ReaderSlot = Arc<Mutex<Option<ReaderLease>>>;

fn take_lease(slot: &ReaderSlot) -> Option<ReaderLease> {
    slot.lock().unwrap_or_else(|p| p.into_inner()).take()
}

/// The workers of one configuration.
struct Running {
    app: Arc<App>,
    stop_tx: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Open everything a configuration needs; nothing runs yet, so a failure
/// here leaves the old configuration working.
async fn prepare(config: Config) -> anyhow::Result<(Arc<App>, Transport)> {
    let app = App::open(config).await?;
    let transport = Transport::new(&app.config.smtp)?;
    Ok((app, transport))
}

fn start(
    (app, transport): (Arc<App>, Transport),
    reader: &ReaderSlot,
    health: &Arc<Health>,
) -> Running {
    let (stop_tx, stop_rx) = watch::channel(false);
    let tasks = vec![
        tokio::spawn(mailbox_loop(
            app.clone(),
            reader.clone(),
            health.clone(),
            stop_rx.clone(),
        )),
        tokio::spawn(schedule_loop(app.clone(), health.clone(), stop_rx.clone())),
        tokio::spawn(outbox_loop(app.clone(), transport, health.clone(), stop_rx)),
    ];
    Running {
        app,
        stop_tx,
        tasks,
    }
}

/// Tell the workers to stop and wait for them, at most 8 s. A worker still
/// busy then (a hanging server) is aborted, and only after that are the
/// outbox claims this configuration's store still holds given back: a
/// worker left over after SIGHUP must not send a mail a new worker takes.
async fn stop(running: Running) {
    let _ = running.stop_tx.send(true);
    let mut tasks = running.tasks;
    // A finished handle is dropped at once: awaiting it again would panic.
    let all = async {
        while let Some(t) = tasks.last_mut() {
            let _ = t.await;
            tasks.pop();
        }
    };
    if tokio::time::timeout(Duration::from_secs(8), all)
        .await
        .is_err()
    {
        warn!("a worker did not finish within 8 s; what it had begun is retried at the next start");
        for t in &tasks {
            t.abort();
        }
        for t in tasks {
            let _ = t.await;
        }
    }
    if let Err(e) = outbox::record_pending(&running.app).await {
        warn!(error = %format!("{e:#}"), "could not record the mail sent last; it may go out once more");
    }
    if let Err(e) = running.app.store.release_claims().await {
        warn!(error = %format!("{e:#}"), "could not give back the outbox claims; they lapse with their lease");
    }
    running.app.store.close().await;
}

/// `rsvpd run`: until SIGTERM or SIGINT; SIGHUP reloads the configuration.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let path = config.path.clone();
    // Handlers first: a SIGTERM that arrives while the workers start must stop
    // them cleanly, not kill the process by the signal's default action (the
    // shutdown and web tests hit that window on a loaded machine).
    let mut signals = Signals::install()?;
    let health = Health::new(
        config
            .web
            .as_ref()
            .map_or(crate::config::DEFAULT_UNHEALTHY_AFTER, |w| {
                w.unhealthy_after
            }),
    );
    let prepared = prepare(config).await?;
    let reader = ReaderSlot::default();
    if matches!(prepared.0.config.database, DatabaseConfig::Sqlite { .. }) {
        *reader.lock().unwrap_or_else(|p| p.into_inner()) = one_daemon(&prepared.0).await?;
    }
    // The HTTP listener is bound before the workers start and lives as long
    // as the daemon; a reload hands it the new `App` (see `web`).
    let web_listen = prepared.0.config.web.as_ref().map(|w| w.listen);
    let listener = match &prepared.0.config.web {
        Some(w) => Some(web::bind(w).await?),
        None => None,
    };
    let (app_tx, app_rx) = watch::channel(prepared.0.clone());
    let (web_stop_tx, web_stop_rx) = watch::channel(false);
    let web_state = web::WebState::new(app_rx.clone()).with_health(health.clone());
    let web_task = listener.map(|l| tokio::spawn(web::serve(l, web_state, web_stop_rx.clone())));
    let mut running = start(prepared, &reader, &health);
    notify_systemd(&[sd_notify::NotifyState::Ready]);
    info!(config = %path.display(), "rsvpd is running");
    let supervisor = tokio::spawn(supervise(app_rx, health.clone(), web_stop_rx));
    while signals.next().await == Signal::Reload {
        notify_systemd(&[sd_notify::NotifyState::Reloading]);
        // The new configuration is checked and opened before the old workers
        // stop: a broken file keeps the daemon running as it was. The old
        // workers stop before the new ones start, so there is never more
        // than one IMAP session.
        match Config::load(&path) {
            Err(e) => {
                error!(error = %format!("{e:#}"), "SIGHUP: the new configuration is not valid; keeping the old one")
            }
            Ok(config) => match prepare(config).await {
                Err(e) => {
                    error!(error = %format!("{e:#}"), "SIGHUP: the new configuration cannot be used; keeping the old one")
                }
                Ok(prepared) => {
                    if prepared.0.config.web.as_ref().map(|w| w.listen) != web_listen {
                        warn!(
                            "SIGHUP: [web] listen changed; the HTTP server keeps its address until rsvpd is restarted"
                        );
                    }
                    // Requests are served by the new `App` from now on, so
                    // none reaches the old one's store after it is closed.
                    app_tx.send_replace(prepared.0.clone());
                    stop(running).await;
                    running = start(prepared, &reader, &health);
                    info!(config = %path.display(), "configuration reloaded");
                }
            },
        }
        notify_systemd(&[sd_notify::NotifyState::Ready]);
    }
    info!("shutting down: finishing the work in flight");
    notify_systemd(&[sd_notify::NotifyState::Stopping]);
    // The HTTP server first: requests in flight still need the store.
    let _ = web_stop_tx.send(true);
    let _ = supervisor.await;
    if let Some(task) = web_task
        && tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .is_err()
    {
        warn!("HTTP requests did not finish within 5 s; stopping anyway");
    }
    stop(running).await;
    if let Some(lease) = take_lease(&reader) {
        lease.release().await;
    }
    info!("stopped");
    Ok(())
}

/// SQLite is one daemon on one machine: take the mailbox reader's lock at
/// start, and refuse to run beside another daemon. Beside a `run --once` the
/// daemon starts, and its mailbox worker reads when that one is done.
async fn one_daemon(app: &App) -> anyhow::Result<Option<ReaderLease>> {
    match app
        .store
        .try_read_mailbox(ReaderRole::Daemon, Duration::ZERO)
        .await?
    {
        Reading::Granted(lease) => {
            info!(epoch = lease.epoch(), "this instance reads the mailbox");
            Ok(Some(lease))
        }
        Reading::Busy(holder) if holder.role == Some(ReaderRole::Once) => {
            info!("{holder} reads the mailbox now; this daemon reads it when that is done");
            Ok(None)
        }
        Reading::Busy(holder) => bail!(
            "another rsvpd already runs on the database {} ({holder}); a SQLite database serves one daemon: \
             stop that one first (e.g. systemctl stop rsvpd), or move [database] url to PostgreSQL to run several",
            app.config.database.describe()
        ),
    }
}

fn notify_systemd(state: &[sd_notify::NotifyState]) {
    // Outside systemd NOTIFY_SOCKET is unset and this does nothing.
    let _ = sd_notify::notify(state);
}

/// How often the supervisor looks: twice per watchdog period, else every 30 s.
fn supervise_interval() -> Duration {
    sd_notify::watchdog_enabled()
        .map(|d| d / 2)
        .unwrap_or(Duration::from_secs(30))
        .max(Duration::from_millis(100))
}

/// Feed systemd's watchdog while no worker is stuck, and keep `STATUS=`
/// current, until `stop`.
async fn supervise(
    app: watch::Receiver<Arc<App>>,
    health: Arc<Health>,
    mut stop: watch::Receiver<bool>,
) {
    let watchdog = sd_notify::watchdog_enabled().is_some();
    let mut tick = tokio::time::interval(supervise_interval());
    let mut fed = true;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
        let alive = health.all_alive();
        if watchdog && alive {
            notify_systemd(&[sd_notify::NotifyState::Watchdog]);
        }
        if alive != fed {
            fed = alive;
            if !alive {
                let why = health.check(chrono::Utc::now()).err().unwrap_or_default();
                error!(problem = %why, "a worker is stuck; systemd's watchdog is no longer fed and will restart rsvpd");
            }
        }
        // Freed memory goes back to the kernel, such as what the database
        // connection of the last tick held (it closes 10 s after its use).
        crate::memory::release_free();
        let app = app.borrow().clone();
        match status(&app).await {
            Ok(line) => notify_systemd(&[sd_notify::NotifyState::Status(&line)]),
            Err(e) => {
                warn!(error = %format!("{e:#}"), "cannot read the state for systemd's STATUS")
            }
        }
    }
}

async fn status(app: &App) -> anyhow::Result<String> {
    let queued = app
        .store
        .outbox_counts()
        .await?
        .into_iter()
        .find(|(s, _)| s == "queued")
        .map_or(0, |c| c.1);
    let last = app.store.last_mail_at().await?;
    let paused = app
        .store
        .delivery_pause()
        .await?
        .filter(|p| p.ended_at.is_none())
        .map(|p| p.stage);
    Ok(crate::health::status_line(
        queued,
        last,
        paused.as_deref(),
        chrono::Utc::now(),
    ))
}

#[derive(Debug, PartialEq, Eq)]
enum Signal {
    Stop,
    Reload,
}

struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
            hup: signal(SignalKind::hangup()).context("installing the SIGHUP handler")?,
        })
    }

    /// The next signal that asks for something.
    async fn next(&mut self) -> Signal {
        tokio::select! {
            _ = self.term.recv() => Signal::Stop,
            _ = self.int.recv() => Signal::Stop,
            _ = self.hup.recv() => Signal::Reload,
        }
    }
}

/// Sleep `d`, or less when shutdown comes; true when it is time to stop.
async fn pause(stop: &mut watch::Receiver<bool>, d: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => *stop.borrow(),
        _ = stop.changed() => true,
    }
}

fn error_backoff(failures: u32) -> Duration {
    let secs = 2u64.saturating_pow(failures.min(8)).min(300);
    // Jitter, so several instances do not hammer a recovering server in step.
    let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0]) % (secs / 2 + 1);
    Duration::from_secs(secs + jitter)
}

/// How often a standby looks again when a look returns at once (SQLite, or
/// an error); on PostgreSQL each look waits inside the lock for a while.
const STANDBY_POLL: Duration = Duration::from_secs(1);

/// How long one step may take before its worker counts as stuck: every
/// server command it sends has `timeout`, and a step sends a few.
fn step_budget(timeout: Duration, commands: u32) -> Duration {
    timeout * (commands + 1)
}

/// Deletions of a person's mail that `forget` could not do itself (it had no
/// mailbox password) are done by the mailbox worker when it is idle.
/// A failure is logged and retried then; the request stays in the database.
async fn erase_mailbox_copies(app: &App) {
    if let Err(e) = crate::privacy::erase_mailbox_copies(&app.config, &app.store).await {
        warn!(error = %format!("{e:#}"), "erasing mail from the mailbox folders failed; trying again when the mailbox is idle next");
    }
}

const MAILBOX: &str = "mailbox";

async fn mailbox_loop(
    app: Arc<App>,
    reader: ReaderSlot,
    health: Arc<Health>,
    mut stop: watch::Receiver<bool>,
) {
    let mut source = Source::new(&app.config);
    loop {
        let lease = match take_lease(&reader) {
            Some(lease) if lease.is_for(&app.store) && !lease.is_lost() => lease,
            held => {
                // A lease for another database (the reload changed it), or lost.
                if let Some(old) = held {
                    old.release().await;
                }
                match stand_by(&app, &health, &mut stop).await {
                    Some(lease) => lease,
                    None => return,
                }
            }
        };
        match read_mailbox(&app, &mut source, &lease, &health, &mut stop).await {
            ReaderEnd::Stopped => {
                // Mail handled in this batch is filed away now rather than at
                // the next start (where it would be recognised and moved all
                // the same).
                if let Err(e) = source.flush(&app, lease.fence()).await {
                    warn!(error = %format!("{e:#}"), "filing away the last handled mail failed; it is moved at the next start");
                }
                *reader.lock().unwrap_or_else(|p| p.into_inner()) = Some(lease);
                return;
            }
            ReaderEnd::Lost => {
                warn!(
                    epoch = lease.epoch(),
                    "this instance lost the mailbox to another one; it stops reading and stands by"
                );
                source.reset();
                lease.release().await;
            }
        }
    }
}

/// Wait until this instance may read the mailbox; None when told to stop first.
async fn stand_by(
    app: &App,
    health: &Health,
    stop: &mut watch::Receiver<bool>,
) -> Option<ReaderLease> {
    let began = Instant::now();
    let mut said: Option<String> = None;
    let mut failures = 0u32;
    loop {
        if *stop.borrow() {
            return None;
        }
        // Standing by is healthy: each look returns within STANDBY_WAIT
        // plus a connection's time.
        health.alive(
            MAILBOX,
            crate::storage::STANDBY_WAIT + STANDBY_POLL + Duration::from_secs(30),
        );
        let look = Instant::now();
        let attempt = tokio::select! {
            r = app.store.try_read_mailbox(ReaderRole::Daemon, crate::storage::STANDBY_WAIT) => r,
            _ = stop.changed() => return None,
        };
        let wait = match attempt {
            Ok(Reading::Granted(lease)) => {
                if said.is_some() {
                    info!(
                        epoch = lease.epoch(),
                        stood_by_s = began.elapsed().as_secs(),
                        "this instance reads the mailbox now (the one before it stopped)"
                    );
                } else {
                    info!(epoch = lease.epoch(), "this instance reads the mailbox");
                }
                return Some(lease);
            }
            Ok(Reading::Busy(holder)) => {
                failures = 0;
                health.progress(MAILBOX);
                if said.as_deref() != Some(holder.who.as_str()) {
                    info!(
                        "standing by: {holder} reads the mailbox; this instance takes over when it stops (sending and schedules run here meanwhile)"
                    );
                    said = Some(holder.who);
                }
                STANDBY_POLL.saturating_sub(look.elapsed())
            }
            Err(e) => {
                failures += 1;
                let wait = error_backoff(failures);
                let e = format!("{e:#}");
                error!(error = %e, retry_in = ?wait, "cannot find out who reads the mailbox");
                health.failing(MAILBOX, None, &e);
                health.alive(MAILBOX, wait + Duration::from_secs(30));
                wait
            }
        };
        if pause(stop, wait).await {
            return None;
        }
    }
}

enum ReaderEnd {
    /// Told to stop; the lease is still held.
    Stopped,
    /// The lease is gone (see `storage::reader`).
    Lost,
}

/// Read the mailbox while `lease` holds: checked before every step and while
/// waiting for mail; a write after it was lost is refused (`Fenced`).
async fn read_mailbox(
    app: &App,
    source: &mut Source,
    lease: &ReaderLease,
    health: &Health,
    stop: &mut watch::Receiver<bool>,
) -> ReaderEnd {
    let poll = app.config.mailbox.poll_interval;
    let timeout = app.config.mailbox.timeout;
    let mut failures = 0u32;
    loop {
        if *stop.borrow() {
            return ReaderEnd::Stopped;
        }
        if lease.is_lost() {
            return ReaderEnd::Lost;
        }
        health.alive(MAILBOX, step_budget(timeout, 6));
        // A step is not cut short when the lease is lost meanwhile: its
        // commit is refused by the fence, and a transaction dropped half-way
        // could leave its connection in the pool inside a transaction.
        let wait = match mailbox::step(app, source, lease.fence()).await {
            Ok(1..) => {
                failures = 0;
                health.progress(MAILBOX);
                continue;
            }
            Ok(0) => {
                failures = 0;
                health.progress(MAILBOX);
                erase_mailbox_copies(app).await;
                // IDLE waits at most 25 minutes (see `Source::wait`).
                let wait = poll.min(Duration::from_secs(25 * 60));
                health.alive(MAILBOX, wait + step_budget(timeout, 2));
                None
            }
            Err(e) if is_fenced(&e) => {
                warn!(error = %format!("{e:#}"), "a write of the mailbox reader was refused");
                return ReaderEnd::Lost;
            }
            Err(e) => {
                failures += 1;
                let wait = error_backoff(failures);
                let e = format!("{e:#}");
                error!(error = %e, retry_in = ?wait, "mailbox step failed");
                health.failing(MAILBOX, None, &e);
                health.alive(MAILBOX, wait + Duration::from_secs(30));
                source.reset();
                Some(wait)
            }
        };
        tokio::select! {
            r = source.wait(poll), if wait.is_none() => {
                if let Err(e) = r {
                    warn!(error = %format!("{e:#}"), "waiting for mail failed; reconnecting");
                    source.reset();
                }
            }
            _ = tokio::time::sleep(wait.unwrap_or_default()), if wait.is_some() => {}
            _ = stop.changed() => return ReaderEnd::Stopped,
            _ = lease.lost() => return ReaderEnd::Lost,
        }
    }
}

/// The longest the outbox worker sleeps without looking again. Mail queued in
/// this process wakes it at once; mail queued by another process (`rsvpd send`,
/// `add`, `cancel`, `review assign` while the daemon runs) cannot, and would
/// otherwise wait for the next wake-up — up to an hour.
const OUTBOX_RECHECK: Duration = Duration::from_secs(60);

async fn outbox_loop(
    app: Arc<App>,
    transport: Transport,
    health: Arc<Health>,
    mut stop: watch::Receiver<bool>,
) {
    const ME: &str = "outbox";
    if let Err(e) = outbox::retry_now(&app).await {
        error!(error = %format!("{e:#}"), "reading the delivery pause failed");
    }
    // Connect, STARTTLS, EHLO, AUTH, MAIL, RCPT, DATA, the message: one
    // mail's send. A step of many mails renews it as each send ends, so a
    // hung send counts as stuck after one mail's budget, not a batch's.
    let budget = step_budget(app.config.smtp.timeout, 8);
    let mail_done = || health.alive(ME, budget);
    let mut failures = 0u32;
    // Say once per burst how long the rate limit makes it take.
    let mut throttled = false;
    while !*stop.borrow() {
        health.alive(ME, budget);
        let step = outbox::step_many(&app, &transport, outbox::BATCH, &mail_done)
            .await
            .map(|(step, _)| step);
        match &step {
            Ok(Step::Throttled(_)) if !throttled => {
                throttled = true;
                match outbox::backlog_notice(&app).await {
                    Ok(notice) => info!("{notice}"),
                    Err(e) => warn!(error = %format!("{e:#}"), "cannot count the outbox"),
                }
            }
            Ok(Step::Idle(_)) => throttled = false,
            _ => {}
        }
        let wait = match step {
            Ok(Step::Worked) => {
                failures = 0;
                health.progress(ME);
                continue;
            }
            Ok(Step::Paused(until)) => {
                failures = 0;
                // Sending is refused: failing since the pause began, with its reason.
                match app.store.delivery_pause().await {
                    Ok(Some(p)) => {
                        health.failing(ME, Some(p.since), &format!("{}; {}", p.error, p.fix))
                    }
                    Ok(None) => health.failing(ME, None, "sending paused"),
                    Err(e) => health.failing(ME, None, &format!("{e:#}")),
                }
                until_then(until)
            }
            Ok(Step::Throttled(until)) | Ok(Step::Idle(Some(until))) => {
                failures = 0;
                health.progress(ME);
                until_then(until)
            }
            Ok(Step::Idle(None)) => {
                health.progress(ME);
                OUTBOX_RECHECK
            }
            Err(e) => {
                failures += 1;
                let wait = error_backoff(failures);
                let e = format!("{e:#}");
                error!(error = %e, retry_in = ?wait, "outbox step failed");
                health.failing(ME, None, &e);
                wait
            }
        };
        health.alive(ME, wait + Duration::from_secs(30));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = app.outbox_wakeup.notified() => {}
            _ = stop.changed() => break,
        }
    }
}

/// The wait until `until`, at least 50 ms, at most `OUTBOX_RECHECK`.
fn until_then(until: chrono::DateTime<chrono::Utc>) -> Duration {
    (until - chrono::Utc::now())
        .to_std()
        .unwrap_or(Duration::ZERO)
        .clamp(Duration::from_millis(50), OUTBOX_RECHECK)
}

/// The longest the scheduler sleeps without looking again. Not needed for
/// correctness inside one process (every due time is computed and every
/// registration wakes it); it bounds the delay when another process (the CLI)
/// changed the database, or when the wall clock jumped (NTP, suspend) — the
/// sleep itself runs on the monotonic clock.
const SCHEDULE_RECHECK: Duration = Duration::from_secs(15 * 60);

/// The retention purge, and the deletion of expired dashboard sessions, ride
/// on the schedule loop's idle moments.
async fn purge(app: &App) {
    if let Err(e) = crate::privacy::purge_due(app, chrono::Utc::now()).await {
        error!(error = %format!("{e:#}"), "purging personal data failed; trying again later");
    }
    if let Err(e) = app.store.delete_expired_sessions(chrono::Utc::now()).await {
        error!(error = %format!("{e:#}"), "deleting expired dashboard sessions failed; trying again later");
    }
}

async fn schedule_loop(app: Arc<App>, health: Arc<Health>, mut stop: watch::Receiver<bool>) {
    const ME: &str = "schedule";
    let mut failures = 0u32;
    while !*stop.borrow() {
        // Database work and rendering only.
        health.alive(ME, Duration::from_secs(120));
        let wait = match schedule::step(&app, chrono::Utc::now()).await {
            Ok(schedule::Step::Worked) => {
                failures = 0;
                health.progress(ME);
                continue;
            }
            Ok(schedule::Step::Idle(Some(at))) => {
                failures = 0;
                health.progress(ME);
                purge(&app).await;
                // Wake at the due second, not before: a reminder must not leave early.
                (at - chrono::Utc::now())
                    .to_std()
                    .unwrap_or(Duration::ZERO)
                    .clamp(Duration::from_millis(10), SCHEDULE_RECHECK)
            }
            Ok(schedule::Step::Idle(None)) => {
                health.progress(ME);
                purge(&app).await;
                SCHEDULE_RECHECK
            }
            Err(e) => {
                failures += 1;
                let wait = error_backoff(failures);
                let e = format!("{e:#}");
                error!(error = %e, retry_in = ?wait, "schedule step failed");
                health.failing(ME, None, &e);
                wait
            }
        };
        health.alive(ME, wait + Duration::from_secs(30));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = app.schedule_wakeup.notified() => {}
            _ = stop.changed() => break,
        }
    }
}
