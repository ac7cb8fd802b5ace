//! rsvpd: an event registration and notification daemon.
//!
//! Data flows one way: `mailbox` → `pipeline` (with `understand`) → `register`
//! (store + outbox in one transaction, via `storage`) → `outbox` → `mailer`.
//! `commands` and `daemon` drive it; `config` parses the edge.

pub mod commands;
pub mod config;
pub mod daemon;
pub mod failpoint;
pub mod mailbox;
pub mod mailer;
pub mod mask;
pub mod outbox;
pub mod output;
pub mod pipeline;
pub mod register;
pub mod storage;
pub mod understand;
