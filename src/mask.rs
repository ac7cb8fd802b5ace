//! Masking personal data for logs: an address shows its first letter and domain only.

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

#[cfg(test)]
mod tests {
    use super::mask;

    #[test]
    fn masks_local_part() {
        assert_eq!(mask("ayse.yilmaz@example.net"), "a***@example.net");
        assert_eq!(mask("Ömer@example.org"), "Ö***@example.org");
        assert_eq!(mask("nonsense"), "***");
    }
}
