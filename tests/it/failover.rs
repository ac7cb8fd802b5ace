//! Several instances, one mailbox reader: three `rsvpd run` on one private
//! PostgreSQL with one Dovecot mailbox and smtp-sink work through a backlog
//! while the reader is killed (SIGKILL) or loses its lock connection
//! (`pg_terminate_backend`) at random moments. Every mail is recorded once and
//! answered; a mail reaches smtp-sink twice only when it was in flight at a
//! SIGKILL; after each kill another instance reads within 30 s (PRODUCT.md).
//! The figures (mails, kills, duplicates, takeover times) are printed; rerun
//! with `cargo test --test it failover -- --nocapture`, and with
//! `RSVPD_FAILOVER_SEED=N` to repeat one run's moments.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use crate::app::{Daemon, MAILBOX, Rsvpd, registration, servers};
use crate::support::Postgres;

/// The backlog delivered before the instances start.
const BACKLOG: usize = 300;
/// Delivered again when the backlog runs low, so every kill meets work.
const WAVE: usize = 40;
const SIGKILLS: usize = 3;
const TERMINATIONS: usize = 3;
/// PRODUCT.md: another instance reads within this after the reader died.
const TAKEOVER_LIMIT: Duration = Duration::from_secs(30);
/// How many mails one instance may be sending at once (the outbox worker
/// sends one at a time): the most that a SIGKILL can leave sent but unmarked.
const SENDS_IN_FLIGHT: usize = 1;

/// A small xorshift generator: the moments are random, but a run can be
/// repeated from its printed seed.
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        let seed = std::env::var("RSVPD_FAILOVER_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(1)
            })
            | 1;
        println!("failover: seed {seed} (RSVPD_FAILOVER_SEED={seed} repeats these moments)");
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A duration in `low..high`.
    fn between(&mut self, low: Duration, high: Duration) -> Duration {
        let span = (high - low).as_millis().max(1) as u64;
        low + Duration::from_millis(self.next() % span)
    }
}

/// The lease row: (epoch, server process of the lock connection, holder's pid).
fn lease(pg: &Postgres) -> Option<(i64, i64, u32)> {
    let row = pg.psql("SELECT epoch, backend_pid, holder FROM mailbox_lease");
    let row = row.trim();
    if row.is_empty() {
        return None;
    }
    let mut fields = row.split('|');
    let epoch = fields.next()?.parse().ok()?;
    let backend = fields.next()?.parse().ok()?;
    let holder = fields.next()?;
    let pid = holder
        .split("pid ")
        .nth(1)?
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()?;
    Some((epoch, backend, pid))
}

fn count(pg: &Postgres, sql: &str) -> usize {
    pg.psql(sql)
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// The logs of `daemons`, one after the other.
fn logs(daemons: &[Daemon]) -> String {
    daemons
        .iter()
        .map(|d| d.log())
        .collect::<Vec<_>>()
        .join("\n----\n")
}

/// Wait until more than `before` mails are recorded: a reader is at work.
fn wait_recorded_more_than(pg: &Postgres, before: usize, daemons: &[Daemon]) {
    crate::support::wait_until(
        Duration::from_secs(60),
        "the reader recording mail",
        || {
            std::thread::sleep(Duration::from_millis(50));
            (count(pg, "SELECT count(*) FROM inbound_messages") > before).then_some(())
        },
        || logs(daemons),
    );
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kill {
    /// SIGKILL of the reader's process.
    Process,
    /// `pg_terminate_backend` of the reader's lock connection.
    LockConnection,
}

#[test]
fn three_instances_survive_killing_the_reader() {
    let started = Instant::now();
    let (dovecot, sink) = servers();
    let app = Rsvpd::new(&dovecot, &sink).on_postgres();
    let config = std::fs::read_to_string(&app.config).expect("read config");
    std::fs::write(
        &app.config,
        config.replace("max_per_minute = 1000", "max_per_minute = 100000"),
    )
    .expect("write config");
    let pg = app.postgres.as_ref().expect("postgres");
    let mut rng = Rng::new();

    let mut delivered = 0usize;
    let deliver = |delivered: &mut usize, n: usize| {
        let mails: Vec<Vec<u8>> = (*delivered..*delivered + n)
            .map(|i| {
                registration(
                    &format!("Person {i}"),
                    &format!("p{i}@example.net"),
                    &format!("failover-{i}@example.net"),
                )
            })
            .collect();
        dovecot.deliver_all(MAILBOX, mails.iter().map(Vec::as_slice));
        *delivered += n;
    };
    deliver(&mut delivered, BACKLOG);
    // Migrate once before the three start (they would also manage together).
    app.ok(&["conferences"]);
    let mut daemons: Vec<Daemon> = (0..3).map(|_| app.spawn()).collect();
    crate::support::wait_until(
        Duration::from_secs(30),
        "a first mailbox reader",
        || lease(pg),
        || logs(&daemons),
    );

    let mut plan: Vec<Kill> = [Kill::Process; SIGKILLS]
        .into_iter()
        .chain([Kill::LockConnection; TERMINATIONS])
        .collect();
    for i in (1..plan.len()).rev() {
        plan.swap(i, (rng.next() % (i as u64 + 1)) as usize);
    }
    // Every daemon log, the killed ones' too, for the checks at the end.
    let mut dead: Vec<Daemon> = Vec::new();
    let mut takeovers: Vec<(Kill, Duration)> = Vec::new();
    let mut sigkill_times: Vec<SystemTime> = Vec::new();
    for kill in plan {
        // Kill while the reader works: once it recorded a mail, at a random
        // moment within the next 0.7 s.
        let before = count(pg, "SELECT count(*) FROM inbound_messages");
        if delivered - before < WAVE / 2 {
            deliver(&mut delivered, WAVE);
        }
        wait_recorded_more_than(pg, before, &daemons);
        std::thread::sleep(rng.between(Duration::ZERO, Duration::from_millis(700)));
        let recorded = count(pg, "SELECT count(*) FROM inbound_messages");
        let (epoch, backend, pid) = lease(pg).expect("a reader");
        let t0 = Instant::now();
        match kill {
            Kill::Process => {
                let i = daemons
                    .iter()
                    .position(|d| d.pid() == pid)
                    .unwrap_or_else(|| panic!("the reader (pid {pid}) is none of ours"));
                let mut d = daemons.remove(i);
                sigkill_times.push(SystemTime::now());
                d.kill();
                dead.push(d);
            }
            Kill::LockConnection => {
                let done = pg.psql(&format!("SELECT pg_terminate_backend({backend})"));
                assert_eq!(done.trim(), "t", "terminated the lock connection {backend}");
            }
        }
        let (new_epoch, _, new_pid) = crate::support::wait_until(
            TAKEOVER_LIMIT + Duration::from_secs(5),
            "a new mailbox reader",
            || lease(pg).filter(|l| l.0 > epoch),
            || logs(&daemons),
        );
        let took = t0.elapsed();
        println!(
            "failover: {kill:?} of the reader (pid {pid}, lease {epoch}): pid {new_pid} reads (lease {new_epoch}) after {} ms; {recorded} of {delivered} mails recorded then",
            took.as_millis()
        );
        assert!(
            took < TAKEOVER_LIMIT,
            "{kill:?}: a new reader only after {took:?}"
        );
        takeovers.push((kill, took));
        if kill == Kill::Process {
            daemons.push(app.spawn());
        }
    }

    // The rest of the backlog, and every answer.
    crate::support::wait_until(
        Duration::from_secs(90),
        "every mail recorded and every answer sent",
        || {
            // psql is a process: look every 300 ms, not every 25, to leave
            // the two cores to the instances.
            std::thread::sleep(Duration::from_millis(300));
            let recorded = count(pg, "SELECT count(*) FROM inbound_messages");
            let open = count(pg, "SELECT count(*) FROM outbox WHERE state <> 'sent'");
            (recorded >= delivered && open == 0).then_some(())
        },
        || logs(&daemons),
    );
    // A reader whose lock connection was terminated after the last mail
    // has nothing left to write that could be refused: it notices at its
    // next heartbeat (`reader::HEARTBEAT`, 5 s). Wait for that, bounded,
    // before stopping the instances.
    crate::support::wait_until(
        Duration::from_secs(20),
        "every reader whose lock connection was terminated stood down",
        || {
            std::thread::sleep(Duration::from_millis(100));
            let seen = format!("{}\n{}", logs(&daemons), logs(&dead));
            (seen.matches("lost the mailbox to another one").count() >= TERMINATIONS).then_some(())
        },
        || logs(&daemons),
    );
    for d in &mut daemons {
        d.stop_cleanly(libc::SIGTERM);
    }
    let all_logs = format!("{}\n----\n{}", logs(&daemons), logs(&dead));

    // Every mail recorded exactly once.
    let per_message = pg.psql(
        "SELECT message_id, count(*), string_agg(outcome, ',') FROM inbound_messages GROUP BY message_id",
    );
    let mut recorded_once = 0;
    for line in per_message.lines() {
        let f: Vec<&str> = line.split('|').collect();
        assert_eq!(f.len(), 3, "{line}");
        assert_eq!((f[1], f[2]), ("1", "recorded"), "{}: {line}", f[0]);
        recorded_once += 1;
    }
    assert_eq!(recorded_once, delivered, "one row per mail delivered");
    assert_eq!(
        count(
            pg,
            "SELECT count(*) FROM registrations WHERE status = 'confirmed'"
        ),
        delivered
    );
    assert_eq!(
        count(
            pg,
            "SELECT count(*) FROM (SELECT registration_id FROM audit GROUP BY registration_id HAVING count(*) > 1) t"
        ),
        0,
        "no registration was changed twice"
    );
    assert_eq!(
        count(
            pg,
            "SELECT count(*) FROM outbox WHERE kind = 'confirmation' AND state = 'sent'"
        ),
        delivered,
        "one confirmation per registration, sent"
    );
    assert!(dovecot.list_folder(MAILBOX, "INBOX").is_empty());
    assert_eq!(
        dovecot.list_folder(MAILBOX, "rsvpd.processed").len(),
        delivered
    );

    // Every confirmation reached smtp-sink; twice only if in flight at a SIGKILL.
    let got = sink.wait_for(delivered, Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(300));
    let got = if sink.messages().len() > got.len() {
        sink.messages()
    } else {
        got
    };
    let mut copies: BTreeMap<String, Vec<SystemTime>> = BTreeMap::new();
    for m in &got {
        copies
            .entry(m.header("Message-ID").unwrap_or_default())
            .or_default()
            .push(m.received);
    }
    let ids: Vec<String> = pg
        .psql("SELECT message_id FROM outbox")
        .lines()
        .map(|l| format!("<{}>", l.trim()))
        .collect();
    let missing: Vec<&String> = ids.iter().filter(|id| !copies.contains_key(*id)).collect();
    assert!(missing.is_empty(), "never sent: {missing:?}");
    let duplicates: Vec<(&String, &Vec<SystemTime>)> =
        copies.iter().filter(|(_, t)| t.len() > 1).collect();
    println!(
        "failover: {delivered} mails, {SIGKILLS} SIGKILLs, {TERMINATIONS} lock connections terminated, {} duplicate(s): {:?}",
        duplicates.len(),
        duplicates.iter().map(|d| d.0).collect::<Vec<_>>()
    );
    assert!(
        duplicates.len() <= SIGKILLS * SENDS_IN_FLIGHT,
        "more duplicates than sends in flight at the kills: {duplicates:?}"
    );
    for (id, times) in &duplicates {
        let (first, last) = (times[0], times[times.len() - 1]);
        let ms = |a: SystemTime, b: SystemTime| match a.duration_since(b) {
            Ok(d) => d.as_millis() as i128,
            Err(e) => -(e.duration().as_millis() as i128),
        };
        let offsets: Vec<(i128, i128)> = sigkill_times
            .iter()
            .map(|k| (ms(first, *k), ms(last, *k)))
            .collect();
        println!("failover: {id}: first and last copy against each SIGKILL, ms: {offsets:?}");
        assert!(
            // In flight: its data went out before the kill (smtp-sink may
            // finish the copy a moment after), and it went out again after.
            sigkill_times.iter().any(|k| {
                *k <= first + Duration::from_secs(5)
                    && first <= *k + Duration::from_secs(1)
                    && *k <= last
            }),
            "{id} was sent twice, and not around a SIGKILL ({times:?}, kills at {sigkill_times:?})"
        );
    }

    // A reader that lost its lock connection stopped reading.
    let lost = all_logs.matches("lost the mailbox to another one").count();
    let refused = all_logs
        .matches("a write of the mailbox reader was refused")
        .count();
    println!("failover: readers that stood down {lost}, of them after a refused write {refused}");
    assert!(
        lost >= TERMINATIONS,
        "each reader whose lock connection was terminated stood down:\n{all_logs}"
    );
    let mut times: Vec<String> = takeovers
        .iter()
        .map(|(k, t)| format!("{k:?} {} ms", t.as_millis()))
        .collect();
    times.sort();
    println!(
        "failover: takeover times {}; whole test {:.1} s",
        times.join(", "),
        started.elapsed().as_secs_f64()
    );
}

/// The reader hangs with its connections open (SIGSTOP: as a machine behind
/// a dead link whose sockets a proxy keeps open): the server sees nothing
/// wrong, but the reader stops renewing its lease, and a standby ends its lock
/// connection and reads — within 30 s. Woken again, the old reader finds its
/// lease gone and stands by; every mail is recorded once.
#[test]
fn a_frozen_reader_is_replaced() {
    const MAILS: usize = 40;
    let (dovecot, sink) = servers();
    let app = Rsvpd::new(&dovecot, &sink).on_postgres();
    let pg = app.postgres.as_ref().expect("postgres");
    let mails: Vec<Vec<u8>> = (0..MAILS)
        .map(|i| {
            registration(
                &format!("Person {i}"),
                &format!("f{i}@example.net"),
                &format!("frozen-{i}@example.net"),
            )
        })
        .collect();
    dovecot.deliver_all(MAILBOX, mails.iter().map(Vec::as_slice));
    app.ok(&["conferences"]);
    let mut daemons: Vec<Daemon> = (0..2).map(|_| app.spawn()).collect();
    wait_recorded_more_than(pg, 0, &daemons);
    let (epoch, _, pid) = lease(pg).expect("a reader");
    let frozen = daemons
        .iter()
        .position(|d| d.pid() == pid)
        .expect("the reader is ours");
    let t0 = Instant::now();
    daemons[frozen].signal(libc::SIGSTOP);
    let (_, _, new_pid) = crate::support::wait_until(
        TAKEOVER_LIMIT + Duration::from_secs(5),
        "a new mailbox reader",
        || {
            std::thread::sleep(Duration::from_millis(50));
            lease(pg).filter(|l| l.0 > epoch)
        },
        || logs(&daemons),
    );
    let took = t0.elapsed();
    daemons[frozen].signal(libc::SIGCONT);
    println!(
        "failover: the reader (pid {pid}) frozen; pid {new_pid} reads after {} ms",
        took.as_millis()
    );
    assert_ne!(new_pid, pid);
    assert!(took < TAKEOVER_LIMIT, "a new reader only after {took:?}");
    crate::support::wait_until(
        Duration::from_secs(60),
        "every mail recorded and the woken reader standing by",
        || {
            std::thread::sleep(Duration::from_millis(300));
            let recorded = count(pg, "SELECT count(*) FROM inbound_messages");
            let stood_down = daemons[frozen]
                .log()
                .contains("lost the mailbox to another one");
            (recorded == MAILS && stood_down).then_some(())
        },
        || logs(&daemons),
    );
    sink.wait_for(MAILS, Duration::from_secs(30));
    for d in &mut daemons {
        d.stop_cleanly(libc::SIGTERM);
    }
    assert_eq!(
        count(
            pg,
            "SELECT count(*) FROM (SELECT message_id FROM inbound_messages GROUP BY message_id HAVING count(*) = 1) t"
        ),
        MAILS,
        "every mail recorded once"
    );
    assert_eq!(
        count(pg, "SELECT count(*) FROM outbox WHERE state = 'sent'"),
        MAILS
    );
}
