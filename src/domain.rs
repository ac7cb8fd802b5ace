//! The domain's small types, parsed once at the edge: the states a
//! registration, an inbound message, an outbox mail and an opt-in request can
//! be in, and the two identifiers everything is keyed by (`EmailAddress`,
//! `ConferenceId`).
//!
//! Each state enum maps to exactly one word in the database and back; a word
//! it does not know is an error (`UnknownValue`) rather than a guess, so a
//! database written by a newer rsvpd, or edited by hand, fails loudly instead
//! of turning a cancelled registration into a confirmed one. This module does
//! no I/O and knows nothing of SQL.

use std::fmt;

use serde::Serialize;

/// A word read from the database that the enum it belongs to does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the database holds `{value}` as {what}, which this rsvpd does not know (known: {known}); \
     was the database written by a newer rsvpd or edited by hand?"
)]
pub struct UnknownValue {
    pub what: &'static str,
    pub value: String,
    pub known: String,
}

/// An enum stored as one lowercase word, with explicit both-way mapping.
macro_rules! stored_enum {
    ($(#[$m:meta])* $name:ident, $what:literal { $($(#[$vm:meta])* $variant:ident = $word:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
        pub enum $name {
            $($(#[$vm])* #[serde(rename = $word)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The word stored in the database (and shown in JSON).
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $word),+
                }
            }

            /// The enum for a stored word; an unknown word is an error.
            pub fn parse(s: &str) -> Result<$name, UnknownValue> {
                match s {
                    $($word => Ok($name::$variant),)+
                    other => Err(UnknownValue {
                        what: $what,
                        value: other.to_string(),
                        known: [$($word),+].join(", "),
                    }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownValue;
            fn from_str(s: &str) -> Result<$name, UnknownValue> {
                $name::parse(s)
            }
        }
    };
}

stored_enum! {
    /// Where a registration stands.
    Status, "a registration status" {
        Confirmed = "confirmed",
        Waitlisted = "waitlisted",
        /// Double opt-in: waiting for the attendee's reply; holds no place.
        Pending = "pending",
        Cancelled = "cancelled",
    }
}

stored_enum! {
    /// What became of a message that reached rsvpd.
    InboundOutcome, "an inbound message outcome" {
        /// It changed (or confirmed) a registration.
        Recorded = "recorded",
        /// A person must look at it.
        Review = "review",
        /// Deliberately not acted on (auto-reply, bounce, …).
        Ignored = "ignored",
        /// Only thanks: kept in the attendee's history, nothing to do.
        Thanks = "thanks",
        /// A copy of a message handled before.
        Duplicate = "duplicate",
        /// A person looked at it and decided nothing is to be done.
        Dismissed = "dismissed",
    }
}

stored_enum! {
    /// What an outbox mail is.
    OutboxKind, "an outbox mail kind" {
        Confirmation = "confirmation",
        Waitlist = "waitlist",
        Promotion = "promotion",
        Cancellation = "cancellation",
        Reminder = "reminder",
        OptIn = "opt_in",
        Digest = "digest",
        Broadcast = "broadcast",
    }
}

impl OutboxKind {
    /// Answers to incoming mail: what two robots could ping-pong with, and so
    /// what `[defaults] answers_per_day` counts.
    pub const ANSWERS: [OutboxKind; 4] = [
        OutboxKind::Confirmation,
        OutboxKind::Waitlist,
        OutboxKind::Cancellation,
        OutboxKind::OptIn,
    ];
}

stored_enum! {
    /// Where an outbox mail stands.
    OutboxState, "an outbox state" {
        Queued = "queued",
        Sent = "sent",
        Failed = "failed",
    }
}

stored_enum! {
    /// Where a double-opt-in request stands.
    OptInState, "an opt-in request state" {
        Open = "open",
        Confirmed = "confirmed",
        Expired = "expired",
        Cancelled = "cancelled",
    }
}

/// A mail address as rsvpd keys people by it: trimmed and lowercase, checked
/// once to be an address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct EmailAddress(String);

/// Text that is not a mail address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a mail address")]
pub struct NotAnAddress(pub String);

impl EmailAddress {
    pub fn parse(s: &str) -> Result<EmailAddress, NotAnAddress> {
        let norm = s.trim().to_lowercase();
        match norm.parse::<lettre::Address>() {
            Ok(_) => Ok(EmailAddress(norm)),
            Err(_) => Err(NotAnAddress(s.trim().to_string())),
        }
    }

    /// An address read back from the database: it was parsed before it was
    /// stored, so it is only normalised (an erased row may hold a placeholder).
    pub fn from_stored(s: String) -> EmailAddress {
        EmailAddress(s.trim().to_lowercase())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for EmailAddress {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for EmailAddress {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for EmailAddress {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl From<EmailAddress> for String {
    fn from(e: EmailAddress) -> String {
        e.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_maps_both_ways() {
        for s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()), Ok(*s));
        }
        for s in InboundOutcome::ALL {
            assert_eq!(InboundOutcome::parse(s.as_str()), Ok(*s));
        }
        for s in OutboxKind::ALL {
            assert_eq!(OutboxKind::parse(s.as_str()), Ok(*s));
        }
        for s in OutboxState::ALL {
            assert_eq!(OutboxState::parse(s.as_str()), Ok(*s));
        }
        for s in OptInState::ALL {
            assert_eq!(OptInState::parse(s.as_str()), Ok(*s));
        }
    }

    /// Regression: an unknown status read from the database silently became
    /// `Confirmed`, so a hand-edited or newer database could confirm people.
    #[test]
    fn unknown_status_is_an_error_not_confirmed() {
        let e = Status::parse("storniert").unwrap_err();
        assert_eq!(e.value, "storniert");
        let text = e.to_string();
        assert!(
            text.contains("storniert") && text.contains("waitlisted"),
            "{text}"
        );
        assert!(Status::parse("").is_err());
        assert!(Status::parse("Confirmed").is_err(), "words are exact");
    }

    #[test]
    fn serialises_as_the_stored_word() {
        assert_eq!(
            serde_json::to_string(&OutboxKind::OptIn).unwrap(),
            "\"opt_in\""
        );
        assert_eq!(
            serde_json::to_string(&Status::Waitlisted).unwrap(),
            "\"waitlisted\""
        );
    }

    #[test]
    fn addresses_are_trimmed_lowercase_and_checked() {
        let a = EmailAddress::parse("  Ayse.Yilmaz@Example.NET ").unwrap();
        assert_eq!(a.as_str(), "ayse.yilmaz@example.net");
        assert!(EmailAddress::parse("not an address").is_err());
        assert!(EmailAddress::parse("").is_err());
    }
}
