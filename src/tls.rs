//! The rustls client configuration shared by IMAP (implicit TLS and STARTTLS)
//! and SMTP's implicit TLS (smtps): the roots of `ca_file` when it is set (a
//! private CA), else the public web PKI roots. It only builds configurations;
//! connecting is the business of `mailbox::imap` and `mailer::smtp`.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, anyhow, bail};

/// A client configuration trusting `ca_file` (or the public roots);
/// `section` (`[mailbox]`, `[smtp]`) names the config key in errors.
pub fn client_config(
    section: &str,
    ca_file: Option<&Path>,
) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    if let Some(ca) = ca_file {
        let pem = std::fs::read(ca)
            .with_context(|| format!("{section} ca_file {} cannot be read", ca.display()))?;
        let mut added = 0;
        for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(&pem) {
            let cert: rustls::pki_types::CertificateDer<'static> =
                cert.map_err(|e| anyhow!("{section} ca_file {} is not PEM: {e:?}", ca.display()))?;
            roots.add(cert).with_context(|| {
                format!("{section} ca_file {} holds a bad certificate", ca.display())
            })?;
            added += 1;
        }
        if added == 0 {
            bail!("{section} ca_file {} holds no certificate", ca.display());
        }
    } else {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS setup")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
