//! The threads that understand mail.
//!
//! Understanding takes a millisecond or more of CPU per mail, so it runs off
//! the async threads. It used to run on tokio's blocking pool, whose threads
//! come and go and also carry IMAP sessions; every new thread id collected a
//! new set of regex caches that stayed (see [`super::pattern`]). Here at most
//! [`WORKERS`] threads of our own do it; they start when mail comes and end
//! after [`IDLE`] without any, and with them go their regex clones and
//! caches (a Maildir daemon after four bursts of 116 mails: 33 MiB against
//! 95 before, 19 at start; `BENCHMARKS.md`, milestone 5).

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use anyhow::Context as _;

/// Threads understanding mails side by side (a batch's mails go two at a
/// time, see `mailbox`).
pub const WORKERS: usize = 2;
/// A worker with nothing to do for this long ends.
pub const IDLE: Duration = Duration::from_secs(5);

type Job = Box<dyn FnOnce() + Send>;

struct State {
    jobs: VecDeque<Job>,
    live: usize,
    waiting: usize,
}

static STATE: Mutex<State> = Mutex::new(State {
    jobs: VecDeque::new(),
    live: 0,
    waiting: 0,
});
static READY: Condvar = Condvar::new();

fn lock() -> MutexGuard<'static, State> {
    // A job's panic is caught before it could poison this lock; should one
    // get through, the queue itself is still consistent.
    STATE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Run `job` on an understanding thread and wait for its result.
pub async fn run<T: Send + 'static>(job: impl FnOnce() -> T + Send + 'static) -> anyhow::Result<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    submit(Box::new(move || {
        let _ = tx.send(job());
    }))?;
    rx.await
        .context("the thread reading a mail ended without an answer")
}

fn submit(job: Job) -> anyhow::Result<()> {
    let mut state = lock();
    state.jobs.push_back(job);
    if state.jobs.len() > state.waiting && state.live < WORKERS {
        let spawned = std::thread::Builder::new()
            .name("rsvpd-understand".into())
            .spawn(work);
        match spawned {
            Ok(_) => state.live += 1,
            Err(e) if state.live == 0 => {
                state.jobs.pop_back();
                return Err(e).context("could not start a thread to read mail");
            }
            // The workers that run will take it.
            Err(_) => {}
        }
    }
    if state.waiting > 0 {
        READY.notify_one();
    }
    Ok(())
}

fn work() {
    let mut state = lock();
    loop {
        if let Some(job) = state.jobs.pop_front() {
            drop(state);
            // The job catches a panic of the understanding step itself; this
            // keeps the worker count right should anything else panic.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
            state = lock();
            continue;
        }
        state.waiting += 1;
        let (guard, wait) = READY
            .wait_timeout(state, IDLE)
            .unwrap_or_else(PoisonError::into_inner);
        state = guard;
        state.waiting -= 1;
        if wait.timed_out() && state.jobs.is_empty() {
            state.live -= 1;
            break;
        }
    }
    let last = state.live == 0;
    drop(state);
    super::pattern::drop_thread_clones();
    if last {
        super::pattern::drop_shared();
    }
    crate::memory::release_free();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_jobs_side_by_side_and_ends_when_idle() {
        let ids: Vec<_> = futures_join(8).await;
        assert_eq!(ids.len(), 8);
        let distinct: std::collections::BTreeSet<_> = ids.iter().collect();
        assert!(
            distinct.len() <= WORKERS,
            "at most {WORKERS} threads, saw {}",
            distinct.len()
        );
        // a panicking job does not take a worker's count with it
        assert!(run(|| -> u8 { panic!("boom") }).await.is_err());
        assert_eq!(run(|| 7).await.expect("runs after a panic"), 7);
        // other tests of this binary may read mail meanwhile: wait for a quiet moment
        let ended = async {
            while lock().live > 0 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(60), ended)
            .await
            .expect("workers end after IDLE without work");
        assert_eq!(run(|| 8).await.expect("starts again"), 8);
    }

    async fn futures_join(n: usize) -> Vec<String> {
        let mut handles = Vec::new();
        for _ in 0..n {
            handles.push(tokio::spawn(run(|| {
                std::thread::sleep(Duration::from_millis(20));
                format!("{:?}", std::thread::current().id())
            })));
        }
        let mut out = Vec::new();
        for h in handles {
            out.push(h.await.expect("task").expect("job"));
        }
        out
    }
}
