//! The one integration test binary. Servers are real: a private Dovecot and
//! smtp-sink per test, and a private PostgreSQL where a test runs on that
//! backend (see `support`); rsvpd is the real binary (see `app`). The
//! pipeline's story tests run on both storage backends (`on_both_backends!`).

mod app;
mod claims;
mod cli;
mod crash;
mod dashboard;
mod e2e;
mod explain;
mod failover;
mod harness;
mod health;
mod imap_faults;
mod notify;
mod privacy;
mod reader;
mod robust;
mod shutdown;
mod smtp_faults;
mod stories;
mod support;
mod tls;
mod web;
