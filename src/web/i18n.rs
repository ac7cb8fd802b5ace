//! The dashboard's words, German first and English for browsers that ask for
//! it (`Accept-Language`). Templates read them as `t.KEY`; a key missing here
//! is an error when the page renders (the handler tests render every page).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::config::Language;
use crate::storage::Status;

/// The language of a request: the first of de/en the browser accepts (by
/// its q-values), German when it names neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lang(pub Language);

impl Lang {
    pub fn from_accept_language(header: Option<&str>) -> Lang {
        let mut best: Option<(f32, Language)> = None;
        for item in header.unwrap_or("").split(',') {
            let mut parts = item.split(';');
            let tag = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .find_map(|p| p.trim().strip_prefix("q=").map(str::to_string))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let lang = match tag.split('-').next().unwrap_or("") {
                "de" => Language::De,
                "en" => Language::En,
                _ => continue,
            };
            if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
                best = Some((q, lang));
            }
        }
        Lang(best.map(|(_, l)| l).unwrap_or(Language::De))
    }

    pub fn code(self) -> &'static str {
        self.0.code()
    }

    /// Every word of the dashboard in this language, for templates.
    pub fn words(self) -> &'static BTreeMap<&'static str, &'static str> {
        static DE: OnceLock<BTreeMap<&str, &str>> = OnceLock::new();
        static EN: OnceLock<BTreeMap<&str, &str>> = OnceLock::new();
        match self.0 {
            Language::De => DE.get_or_init(|| WORDS.iter().map(|(k, de, _)| (*k, *de)).collect()),
            Language::En => EN.get_or_init(|| WORDS.iter().map(|(k, _, en)| (*k, *en)).collect()),
        }
    }

    pub fn word(self, key: &str) -> &'static str {
        self.words().get(key).copied().unwrap_or("?")
    }

    pub fn status(self, s: Status) -> &'static str {
        self.word(match s {
            Status::Confirmed => "status_confirmed",
            Status::Waitlisted => "status_waitlisted",
            Status::Pending => "status_pending",
            Status::Cancelled => "status_cancelled",
        })
    }

    /// The kind of an outgoing mail in words ("confirmation" → "Anmeldebestätigung").
    pub fn mail_kind(self, kind: &str) -> String {
        self.words()
            .get(format!("mail_{kind}").as_str())
            .map(|w| w.to_string())
            .unwrap_or_else(|| kind.to_string())
    }

    /// "15.10.2027 13:30" / "2027-10-15 13:30"
    pub fn datetime_format(self) -> &'static str {
        match self.0 {
            Language::De => "%d.%m.%Y %H:%M",
            Language::En => "%Y-%m-%d %H:%M",
        }
    }

    pub fn date_format(self) -> &'static str {
        match self.0 {
            Language::De => "%d.%m.%Y",
            Language::En => "%Y-%m-%d",
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Lang {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Lang, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok());
        Ok(Lang::from_accept_language(header))
    }
}

/// (key, German, English)
const WORDS: &[(&str, &str, &str)] = &[
    ("app", "Anmeldungen", "Registrations"),
    ("nav_overview", "Übersicht", "Overview"),
    ("nav_review", "Zu prüfen", "To review"),
    ("nav_outbox", "Postausgang", "Outbox"),
    ("logout", "Abmelden", "Log out"),
    ("logged_in_as", "Angemeldet als", "Logged in as"),
    // login
    ("login_title", "Anmelden", "Log in"),
    (
        "login_intro",
        "Melden Sie sich mit dem Namen und Passwort an, die Sie von der Verwaltung bekommen haben.",
        "Log in with the name and password you were given by your administrator.",
    ),
    ("username", "Benutzername", "User name"),
    ("password", "Passwort", "Password"),
    ("login_button", "Anmelden", "Log in"),
    (
        "login_failed",
        "Benutzername oder Passwort stimmt nicht. Bitte versuchen Sie es noch einmal.",
        "The user name or password is wrong. Please try again.",
    ),
    (
        "login_locked",
        "Zu viele falsche Versuche. Bitte warten Sie 15 Minuten und versuchen Sie es dann noch einmal.",
        "Too many wrong attempts. Please wait 15 minutes, then try again.",
    ),
    (
        "login_expired",
        "Das Formular war abgelaufen. Bitte melden Sie sich noch einmal an.",
        "The form had expired. Please log in again.",
    ),
    // overview
    ("overview_title", "Ihre Veranstaltungen", "Your events"),
    (
        "no_conferences",
        "Für Sie sind keine Veranstaltungen freigegeben.",
        "No events are shared with you.",
    ),
    ("confirmed_people", "Personen bestätigt", "people confirmed"),
    ("of_capacity", "von", "of"),
    ("places", "Plätzen", "places"),
    ("no_capacity", "ohne Platzgrenze", "no limit on places"),
    (
        "waitlisted_people",
        "Personen auf der Warteliste",
        "people on the waiting list",
    ),
    (
        "pending_people",
        "Personen noch unbestätigt",
        "people not yet confirmed",
    ),
    (
        "new_this_week",
        "neue Anmeldungen in den letzten 7 Tagen",
        "new registrations in the last 7 days",
    ),
    ("workshop_fill", "Workshops", "Workshops"),
    ("people", "Personen", "people"),
    (
        "review_waiting",
        "E-Mails warten auf Ihre Prüfung",
        "mails wait for your review",
    ),
    (
        "failed_mails",
        "E-Mails konnten nicht zugestellt werden",
        "mails could not be delivered",
    ),
    ("open_list", "Teilnehmerliste", "Attendee list"),
    // list
    ("search", "Suchen", "Search"),
    (
        "search_placeholder",
        "Name, E-Mail oder Organisation",
        "Name, email or organisation",
    ),
    ("status", "Status", "Status"),
    (
        "all_active",
        "Alle (ohne Absagen)",
        "All (without cancellations)",
    ),
    ("status_confirmed", "bestätigt", "confirmed"),
    ("status_waitlisted", "Warteliste", "waiting list"),
    ("status_pending", "unbestätigt", "not confirmed yet"),
    ("status_cancelled", "abgesagt", "cancelled"),
    ("name", "Name", "Name"),
    ("email", "E-Mail", "Email"),
    ("organization", "Organisation", "Organisation"),
    ("party_size", "Personen", "People"),
    ("companions", "Begleitung", "Companions"),
    ("workshops", "Workshops", "Workshops"),
    ("notes", "Hinweise", "Notes"),
    ("language", "Sprache", "Language"),
    ("registered_at", "Angemeldet am", "Registered on"),
    ("registrations_found", "Anmeldungen", "registrations"),
    (
        "nothing_found",
        "Keine Anmeldung gefunden.",
        "No registration found.",
    ),
    ("add_person", "Person anmelden", "Register someone"),
    ("export", "Herunterladen", "Download"),
    ("export_xlsx", "Excel-Tabelle", "Excel sheet"),
    (
        "export_csv",
        "CSV (Excel, Semikolon)",
        "CSV (Excel, semicolon)",
    ),
    ("export_csv_comma", "CSV (Komma)", "CSV (comma)"),
    ("export_json", "JSON", "JSON"),
    (
        "sign_in",
        "Unterschriftenliste drucken",
        "Print the sign-in sheet",
    ),
    (
        "sign_in_workshop",
        "Unterschriftenliste für",
        "Sign-in sheet for",
    ),
    ("broadcast", "Rundmail schreiben", "Write to everyone"),
    // attendee
    ("back_to_list", "Zurück zur Liste", "Back to the list"),
    ("details", "Angaben", "Details"),
    ("history", "Verlauf", "History"),
    ("when", "Wann", "When"),
    ("what", "Was", "What"),
    ("by_whom", "Durch", "By"),
    (
        "mails_in",
        "E-Mails von dieser Person",
        "Mails from this person",
    ),
    (
        "mails_out",
        "E-Mails an diese Person",
        "Mails to this person",
    ),
    ("show_mail", "E-Mail anzeigen", "Show the mail"),
    (
        "no_source",
        "Der Text dieser E-Mail ist nicht gespeichert.",
        "The text of this mail is not kept.",
    ),
    (
        "cancel_registration",
        "Anmeldung absagen",
        "Cancel the registration",
    ),
    (
        "cancel_confirm",
        "Die Person bekommt eine Absage-Bestätigung per E-Mail; wer auf der Warteliste steht, rückt nach.",
        "The person gets a cancellation receipt by mail; people on the waiting list move up.",
    ),
    (
        "cancelled_ok",
        "Die Anmeldung wurde abgesagt.",
        "The registration was cancelled.",
    ),
    (
        "assigned_ok",
        "Die E-Mail wurde zugeordnet. Die Antwort an die Person ist im Postausgang.",
        "The mail was assigned. The answer to the person is in the outbox.",
    ),
    (
        "added_ok",
        "Die Person wurde angemeldet. Die Bestätigung ist im Postausgang.",
        "The person was registered. The confirmation is in the outbox.",
    ),
    ("action_register", "angemeldet", "registered"),
    ("action_update", "geändert", "changed"),
    ("action_cancel", "abgesagt", "cancelled"),
    (
        "action_promote",
        "von der Warteliste nachgerückt",
        "moved up from the waiting list",
    ),
    ("action_confirm", "bestätigt", "confirmed"),
    (
        "action_expire",
        "abgelaufen (nicht bestätigt)",
        "lapsed (not confirmed)",
    ),
    ("by_mail", "E-Mail der Person", "the person's mail"),
    ("by_system", "automatisch", "automatically"),
    ("by_cli", "Kommandozeile", "command line"),
    ("subject", "Betreff", "Subject"),
    ("outcome", "Ergebnis", "Outcome"),
    ("kind", "Art", "Kind"),
    ("state", "Zustand", "State"),
    ("from", "Von", "From"),
    ("to", "An", "To"),
    ("date", "Datum", "Date"),
    ("attachments", "Anhänge", "Attachments"),
    ("yes", "ja", "yes"),
    ("no", "nein", "no"),
    // review
    ("review_title", "E-Mails zum Prüfen", "Mails to review"),
    (
        "review_intro",
        "Diese E-Mails konnte rsvpd nicht sicher zuordnen. Öffnen Sie eine E-Mail, prüfen Sie die Angaben und ordnen Sie sie einer Veranstaltung zu – oder legen Sie sie ab, wenn sie keine Anmeldung ist.",
        "rsvpd could not place these mails with certainty. Open a mail, check the details and assign it to an event — or put it aside if it is no registration.",
    ),
    (
        "review_empty",
        "Nichts zu prüfen. Alle E-Mails sind bearbeitet.",
        "Nothing to review. Every mail has been handled.",
    ),
    ("received", "Eingegangen", "Received"),
    ("reason", "Warum zu prüfen", "Why it needs you"),
    ("open", "Öffnen", "Open"),
    ("the_mail", "Die E-Mail", "The mail"),
    (
        "understood",
        "Was rsvpd verstanden hat",
        "What rsvpd understood",
    ),
    (
        "understood_nothing",
        "rsvpd hat darin keine Anmeldung erkannt.",
        "rsvpd found no registration in it.",
    ),
    ("explanation", "Begründung", "Explanation"),
    (
        "assign_title",
        "Zuordnen und bestätigen",
        "Assign and confirm",
    ),
    (
        "assign_intro",
        "Wählen Sie die Veranstaltung, prüfen und korrigieren Sie die Angaben. Beim Zuordnen bekommt die Person die übliche Antwort per E-Mail.",
        "Choose the event, check and correct the details. When you assign, the person gets the usual answer by mail.",
    ),
    ("conference", "Veranstaltung", "Event"),
    ("choose", "Auswählen", "Choose"),
    (
        "choose_conference",
        "Veranstaltung wählen",
        "choose the event",
    ),
    (
        "choose_conference_first",
        "Bitte wählen Sie zuerst die Veranstaltung.",
        "Please choose the event first.",
    ),
    (
        "notes_help",
        "Eine Angabe pro Zeile, z. B. Rollstuhl, Kinderbetreuung, Dolmetschen",
        "One per line, e.g. wheelchair, child care, interpreting",
    ),
    (
        "party_help",
        "Die Person selbst mitgezählt",
        "Counting the person themselves",
    ),
    (
        "assign_button",
        "Zuordnen und Antwort senden",
        "Assign and send the answer",
    ),
    ("dismiss_title", "Keine Anmeldung?", "Not a registration?"),
    (
        "dismiss_intro",
        "Ablegen schließt die E-Mail ohne Antwort. Sie bleibt im Postfach erhalten.",
        "Putting it aside closes the mail without an answer. It stays in the mailbox.",
    ),
    ("dismiss_button", "Ablegen", "Put aside"),
    (
        "dismissed_ok",
        "Die E-Mail wurde abgelegt.",
        "The mail was put aside.",
    ),
    ("kind_register", "Anmeldung", "Registration"),
    ("kind_update", "Änderung", "Change"),
    ("kind_cancel", "Absage", "Cancellation"),
    ("kind_confirm", "Bestätigung", "Confirmation"),
    ("kind_bounce", "Unzustellbar-Meldung", "Bounce"),
    ("kind_ignore", "automatische E-Mail", "automatic mail"),
    ("kind_thanks", "nur ein Dank", "only thanks"),
    ("kind_review", "unklar", "unclear"),
    // outbox
    ("outbox_title", "Postausgang", "Outbox"),
    (
        "outbox_intro",
        "Alle E-Mails, die rsvpd verschickt: zuerst die fehlgeschlagenen, dann die wartenden, dann die zuletzt gesendeten.",
        "Every mail rsvpd sends: failed ones first, then the waiting ones, then the latest sent.",
    ),
    (
        "outbox_empty",
        "Der Postausgang ist leer.",
        "The outbox is empty.",
    ),
    ("state_queued", "wartet", "waiting"),
    ("state_sent", "gesendet", "sent"),
    ("state_failed", "fehlgeschlagen", "failed"),
    ("attempts", "Versuche", "Tries"),
    ("last_error", "Letzter Fehler", "Last error"),
    ("retry", "Noch einmal senden", "Send again"),
    (
        "retried_ok",
        "Die E-Mail wird noch einmal gesendet.",
        "The mail will be sent again.",
    ),
    ("mail_confirmation", "Anmeldebestätigung", "confirmation"),
    ("mail_waitlist", "Warteliste", "waiting list"),
    ("mail_promotion", "Nachgerückt", "moved up"),
    (
        "mail_cancellation",
        "Absage-Bestätigung",
        "cancellation receipt",
    ),
    ("mail_reminder", "Erinnerung", "reminder"),
    ("mail_broadcast", "Rundmail", "mail to everyone"),
    ("mail_digest", "Tagesübersicht", "digest"),
    ("mail_opt_in", "Bitte um Bestätigung", "request to confirm"),
    // broadcast
    ("broadcast_title", "Rundmail", "Mail to everyone"),
    (
        "broadcast_intro",
        "Jede Person bekommt eine eigene E-Mail (niemand sieht die anderen Adressen). Platzhalter wie {{ name }} oder {{ conference.title }} werden für jede Person ausgefüllt.",
        "Everyone gets their own mail (nobody sees the other addresses). Placeholders such as {{ name }} or {{ conference.title }} are filled in for each person.",
    ),
    ("body", "Text", "Text"),
    ("recipients", "An wen", "To whom"),
    ("preview_button", "Vorschau ansehen", "Preview"),
    ("preview_title", "Vorschau", "Preview"),
    (
        "will_send",
        "E-Mails werden verschickt",
        "mails will be sent",
    ),
    ("left_out", "Ausgelassen", "Left out"),
    (
        "sample",
        "So sieht die erste E-Mail aus",
        "This is what the first mail looks like",
    ),
    (
        "send_button",
        "Jetzt an alle senden",
        "Send to everyone now",
    ),
    ("edit_button", "Ändern", "Edit"),
    (
        "broadcast_ok",
        "Die Rundmail ist im Postausgang:",
        "The mail is in the outbox:",
    ),
    (
        "nobody_to_send",
        "Niemand würde diese E-Mail bekommen.",
        "Nobody would get this mail.",
    ),
    // add
    (
        "add_title",
        "Person von Hand anmelden",
        "Register someone by hand",
    ),
    (
        "add_intro",
        "Die Person bekommt dieselbe Bestätigung per E-Mail, als hätte sie selbst geschrieben.",
        "The person gets the same confirmation by mail as if they had written themselves.",
    ),
    (
        "force",
        "Auch bestätigen, wenn die Veranstaltung voll ist",
        "Confirm even if the event is full",
    ),
    (
        "add_button",
        "Anmelden und Bestätigung senden",
        "Register and send the confirmation",
    ),
    (
        "bad_email",
        "Das ist keine gültige E-Mail-Adresse.",
        "That is not a valid email address.",
    ),
    (
        "bad_number",
        "Bitte eine Zahl von 1 bis 50 angeben.",
        "Please give a number from 1 to 50.",
    ),
    ("required", "Bitte ausfüllen.", "Please fill in."),
    // sign-in sheet
    ("sign_in_title", "Unterschriftenliste", "Sign-in sheet"),
    ("signature", "Unterschrift", "Signature"),
    ("number", "Nr.", "No."),
    ("page", "Seite", "Page"),
    ("print", "Drucken", "Print"),
    (
        "print_hint",
        "Drucken Sie diese Seite über das Menü Ihres Browsers (Strg+P) auf A4.",
        "Print this page from your browser's menu (Ctrl+P) on A4.",
    ),
    ("walk_ins", "Ohne Anmeldung", "Without registration"),
    // errors
    (
        "not_found",
        "Diese Seite gibt es nicht (oder Sie haben keinen Zugriff darauf).",
        "This page does not exist (or you have no access to it).",
    ),
    (
        "forbidden",
        "Das Formular war abgelaufen. Bitte laden Sie die Seite neu und versuchen Sie es noch einmal.",
        "The form had expired. Please reload the page and try again.",
    ),
    (
        "internal",
        "Etwas ist schiefgegangen. Bitte versuchen Sie es gleich noch einmal; wenn es wieder passiert, wenden Sie sich an die Verwaltung.",
        "Something went wrong. Please try again in a moment; if it happens again, contact your administrator.",
    ),
    ("error", "Fehler", "Error"),
    ("back", "Zurück", "Back"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn german_unless_the_browser_prefers_english() {
        let l = |h| Lang::from_accept_language(h).0;
        assert_eq!(l(None), Language::De);
        assert_eq!(l(Some("fr-FR,fr;q=0.9")), Language::De);
        assert_eq!(l(Some("en-US,en;q=0.9")), Language::En);
        assert_eq!(l(Some("de-DE,de;q=0.9,en;q=0.8")), Language::De);
        assert_eq!(l(Some("tr,en;q=0.7,de;q=0.5")), Language::En);
        assert_eq!(l(Some("en;q=0,de")), Language::De);
    }

    #[test]
    fn every_word_exists_once_in_both_languages() {
        let mut seen = std::collections::BTreeSet::new();
        for (k, de, en) in WORDS {
            assert!(seen.insert(*k), "{k} twice");
            assert!(!de.is_empty() && !en.is_empty(), "{k}");
        }
    }
}
