//! Masking personal data for logs: an address shows its first letter and domain only.
//! Server replies (SMTP, IMAP) quote addresses too; `mask_addresses` masks every
//! address inside a text.

use std::sync::LazyLock;

use regex::Regex;

/// "ayse.yilmaz@example.net" → "a***@example.net".
pub fn mask(email: &str) -> String {
    match email.rsplit_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".into(),
    }
}

/// `text` with every email address in it masked like [`mask`]: for server
/// replies such as "550 5.1.1 <ayse@example.net>: Recipient address rejected".
pub fn mask_addresses(text: &str) -> String {
    static ADDRESS: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(
            r"[A-Za-z0-9.!#$%&'*+/?^_`{|}~\p{L}-]+@[A-Za-z0-9\p{L}-]+(?:\.[A-Za-z0-9\p{L}-]+)+",
        )
        .expect("a valid regex")
    });
    ADDRESS
        .replace_all(text, |c: &regex::Captures<'_>| mask(&c[0]))
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::{mask, mask_addresses};

    #[test]
    fn masks_addresses_inside_server_replies() {
        assert_eq!(
            mask_addresses("550 5.1.1 <ayse.yilmaz@example.net>: Recipient address rejected"),
            "550 5.1.1 <a***@example.net>: Recipient address rejected"
        );
        assert_eq!(
            mask_addresses("from=<orga@example.org> to=Ömer.K@example.org, 5.7.1 denied"),
            "from=<o***@example.org> to=Ö***@example.org, 5.7.1 denied"
        );
        assert_eq!(mask_addresses("451 4.3.2 try later"), "451 4.3.2 try later");
    }

    #[test]
    fn masks_local_part() {
        assert_eq!(mask("ayse.yilmaz@example.net"), "a***@example.net");
        assert_eq!(mask("Ömer@example.org"), "Ö***@example.org");
        assert_eq!(mask("nonsense"), "***");
    }
}
