//! Regexes whose search memory belongs to the thread that searches.
//!
//! A `regex::Regex` keeps the scratch memory of its searches (lazy DFA
//! states, PikeVM and backtracker tables) in a pool inside the regex: one
//! slot for the first thread that ever searched with it, and up to eight
//! stacks for all others, chosen by thread id. A `static` regex searched
//! from the short-lived blocking threads of a daemon therefore collects a new
//! set of caches for every new thread id, and never gives them back: the
//! understanding step's ≈ 70 patterns and the vocabulary's sections held
//! 20–35 MB per thread that had read mail, and a daemon grew from 54 to
//! 95 MiB over four bursts of mail (`BENCHMARKS.md`, milestone 5).
//!
//! A [`Pattern`] compiles once per process (the compiled program is shared,
//! `Regex::clone` is cheap) and searches with a clone owned by the calling
//! thread, kept in a thread-local table. The caches live and die with that
//! thread: the understanding workers ([`super::worker`]) exit when idle and
//! take them along.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

use regex::{Captures, Match, Regex, RegexBuilder};

/// A regex searched through a per-thread clone of a shared compiled base.
#[derive(Debug, Clone)]
pub struct Pattern {
    source: Source,
    slot: OnceLock<usize>,
}

#[derive(Debug, Clone)]
enum Source {
    /// The program's own pattern (a `static`).
    Static(fn() -> Regex),
    /// A vocabulary's, checked to compile when it was loaded.
    Text(String),
}

static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);

/// The compiled bases, by slot; emptied by [`drop_shared`] when no worker
/// runs, and compiled again on the next search.
static SHARED: Mutex<Vec<Option<Regex>>> = Mutex::new(Vec::new());

thread_local! {
    static LOCAL: RefCell<Vec<Option<Rc<Regex>>>> = const { RefCell::new(Vec::new()) };
}

/// Drop this thread's clones and their caches now (an ending worker, before
/// it trims the allocator; thread-locals would go only after that).
pub fn drop_thread_clones() {
    let table = LOCAL.with(|table| std::mem::take(&mut *table.borrow_mut()));
    drop(table);
}

/// Drop the compiled bases (the last understanding worker as it ends): an
/// idle daemon keeps none of the ≈ 18 MB they take; the next mail compiles
/// what it needs again (≈ 0.3 s of CPU for all of them).
pub fn drop_shared() {
    let bases = std::mem::take(&mut *SHARED.lock().unwrap_or_else(PoisonError::into_inner));
    drop(bases);
}

/// Keep `base` as the compiled base of `slot`.
fn store(slot: usize, base: Regex) {
    let mut shared = SHARED.lock().unwrap_or_else(PoisonError::into_inner);
    if shared.len() <= slot {
        shared.resize(slot + 1, None);
    }
    shared[slot] = Some(base);
}

/// How every text pattern is compiled (the vocabulary's phrases: big
/// alternations whose lazy DFA needs room).
fn build(source: &str) -> Result<Regex, regex::Error> {
    RegexBuilder::new(source)
        .size_limit(64 << 20)
        .dfa_size_limit(32 << 20)
        .build()
}

impl Pattern {
    /// A pattern compiled by `make` when first searched (for `static`s; the
    /// patterns are the program's own, so `make` may `expect`).
    pub const fn new(make: fn() -> Regex) -> Pattern {
        Pattern {
            source: Source::Static(make),
            slot: OnceLock::new(),
        }
    }

    /// A pattern from text, compiled here to report an error; the regex
    /// compiled becomes the shared base, so the first search does not compile
    /// it again.
    pub fn text(source: String) -> Result<Pattern, regex::Error> {
        let base = build(&source)?;
        let pattern = Pattern::checked(source);
        store(pattern.slot(), base);
        Ok(pattern)
    }

    /// A pattern from text known to compile (a part of an alternation
    /// [`Pattern::text`] accepted).
    pub fn checked(source: String) -> Pattern {
        Pattern {
            source: Source::Text(source),
            slot: OnceLock::new(),
        }
    }

    fn compile(&self) -> Regex {
        match &self.source {
            Source::Static(make) => make(),
            Source::Text(text) => build(text).unwrap_or_else(|e| {
                // It compiled when it was loaded; should it not now, it
                // matches nothing rather than stopping the reading of mail.
                tracing::error!(error = %e, "a vocabulary pattern no longer compiles");
                Regex::new(r"[^\s\S]").unwrap_or_else(|_| unreachable!("a constant pattern"))
            }),
        }
    }

    fn slot(&self) -> usize {
        *self
            .slot
            .get_or_init(|| NEXT_SLOT.fetch_add(1, Ordering::Relaxed))
    }

    /// This thread's clone.
    fn local(&self) -> Rc<Regex> {
        let slot = self.slot();
        let cached = LOCAL.with(|table| table.borrow().get(slot).cloned().flatten());
        if let Some(regex) = cached {
            return regex;
        }
        let regex = Rc::new(self.shared(slot));
        LOCAL.with(|table| {
            let mut table = table.borrow_mut();
            if table.len() <= slot {
                table.resize(slot + 1, None);
            }
            table[slot] = Some(regex.clone());
        });
        regex
    }

    /// A clone of the shared base (compiled first if nobody has).
    fn shared(&self, slot: usize) -> Regex {
        if let Some(Some(base)) = SHARED
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(slot)
        {
            return base.clone();
        }
        // Compiled outside the lock; should two threads race, both compile
        // and the second's is kept.
        let base = self.compile();
        store(slot, base.clone());
        base
    }

    pub fn is_match(&self, haystack: &str) -> bool {
        self.local().is_match(haystack)
    }

    pub fn find<'h>(&self, haystack: &'h str) -> Option<Match<'h>> {
        self.local().find(haystack)
    }

    pub fn captures<'h>(&self, haystack: &'h str) -> Option<Captures<'h>> {
        self.local().captures(haystack)
    }

    pub fn find_iter<'h>(&self, haystack: &'h str) -> std::vec::IntoIter<Match<'h>> {
        self.local()
            .find_iter(haystack)
            .collect::<Vec<_>>()
            .into_iter()
    }

    pub fn captures_iter<'h>(&self, haystack: &'h str) -> std::vec::IntoIter<Captures<'h>> {
        self.local()
            .captures_iter(haystack)
            .collect::<Vec<_>>()
            .into_iter()
    }

    pub fn split<'h>(&self, haystack: &'h str) -> std::vec::IntoIter<&'h str> {
        self.local().split(haystack).collect::<Vec<_>>().into_iter()
    }

    pub fn replace_all<'h, R: regex::Replacer>(
        &self,
        haystack: &'h str,
        rep: R,
    ) -> std::borrow::Cow<'h, str> {
        self.local().replace_all(haystack, rep)
    }

    pub fn replace<'h, R: regex::Replacer>(
        &self,
        haystack: &'h str,
        rep: R,
    ) -> std::borrow::Cow<'h, str> {
        self.local().replace(haystack, rep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static WORD: Pattern = Pattern::new(|| Regex::new(r"\b\w+\b").expect("regex"));

    #[test]
    fn searches_like_the_regex_on_every_thread() {
        let text = "zwei Wörter, drei";
        let expect: Vec<&str> = Regex::new(r"\b\w+\b")
            .expect("regex")
            .find_iter(text)
            .map(|m| m.as_str())
            .collect();
        let here: Vec<&str> = WORD.find_iter(text).map(|m| m.as_str()).collect();
        assert_eq!(here, expect);
        let there = std::thread::spawn(move || {
            WORD.find_iter(text)
                .map(|m| m.as_str().to_string())
                .collect::<Vec<_>>()
        })
        .join()
        .expect("thread");
        assert_eq!(there, expect);
        assert!(WORD.is_match("x") && !WORD.is_match("  "));
        assert_eq!(WORD.replace_all("a b", "_"), "_ _");
    }

    #[test]
    fn a_thread_keeps_one_clone_and_drops_it_when_it_ends() {
        let pattern = Pattern::text("a+".into()).expect("compiles");
        let first = pattern.local();
        let second = pattern.local();
        assert!(Rc::ptr_eq(&first, &second), "one clone per thread");
        drop((first, second));
        std::thread::scope(|s| {
            s.spawn(|| {
                let there = pattern.local();
                // this thread's table and the Rc we hold
                assert_eq!(Rc::strong_count(&there), 2);
            });
        });
    }
}
