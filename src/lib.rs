//! rsvpd: an event registration and notification daemon.
//!
//! Data flows one way: `mailbox` → `pipeline` (with `understand`) → `register`
//! (store + outbox in one transaction, via `storage`) → `outbox` → `mailer`.
//! `schedule` (reminders, digests, opt-in expiry) and `broadcast` also feed
//! the outbox; `calendar` writes the invites the mailer attaches.
//! `commands` and `daemon` drive it over the shared state in `app`; `web`
//! serves HTTP inside the daemon; `health` and `metrics` say how it goes;
//! `config` parses the edge, `domain` holds the small types parsed there, and
//! `localtime` the wall-clock arithmetic both `config` and `schedule` need.

pub mod app;
pub mod assets;
pub mod broadcast;
pub mod calendar;
pub mod commands;
pub mod config;
pub mod daemon;
pub mod domain;
pub mod export;
pub mod failpoint;
pub mod health;
pub mod localtime;
pub mod logging;
pub mod mailbox;
pub mod mailer;
pub mod manual;
pub mod mask;
pub mod memory;
pub mod metrics;
pub mod outbox;
pub mod output;
pub mod pipeline;
pub mod privacy;
pub mod register;
pub mod review;
pub mod schedule;
pub mod storage;
#[cfg(test)]
mod test_support;
pub mod tls;
pub mod understand;
pub mod web;
