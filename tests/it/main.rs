//! The one integration test binary. Servers are real: a private Dovecot and
//! smtp-sink per test (see `support`), rsvpd is the real binary (see `app`).

mod app;
mod cli;
mod crash;
mod e2e;
mod explain;
mod harness;
mod imap_faults;
mod notify;
mod privacy;
mod robust;
mod shutdown;
mod smtp_faults;
mod support;
mod tls;
mod web;
