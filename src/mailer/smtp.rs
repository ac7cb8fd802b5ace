//! The SMTP connection rsvpd sends over: one connection kept open between
//! mails (a pool of one: checked with NOOP before it is used again, replaced
//! when broken), with `TCP_NODELAY` on its socket, every send bounded by
//! `[smtp] timeout`.
//!
//! Why not lettre's own `AsyncSmtpTransport`: lettre 0.11 never sets
//! `TCP_NODELAY` and writes a mail's body and the closing `\r\n.\r\n` in two
//! writes, so Nagle's algorithm holds the dot back until the server's delayed
//! ACK — about 40 ms per mail, which capped rsvpd near 20 mails/s (fixed
//! upstream in lettre PR #1159, not in a release yet). lettre lets us open the
//! socket ourselves and hand it over (`AsyncSmtpConnection::connect_with_transport`),
//! so the SMTP dialogue, STARTTLS and AUTH stay lettre's. Only implicit TLS
//! (smtps) is set up here, with the same rustls as IMAP, because lettre reads
//! the greeting as soon as it is handed the stream.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::anyhow;
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

/// Why a send (or a connection check) did not succeed.
#[derive(Debug)]
pub enum Failure {
    /// From lettre: what the server answered, or a dialogue that broke off.
    Smtp(lettre::transport::smtp::Error),
    /// No connection could be made, or the server went silent.
    Connection(String),
}

/// How the connection is secured.
pub enum Security {
    None,
    StartTls(TlsParameters),
    Implicit(Arc<rustls::ClientConfig>),
}

pub struct Connection {
    host: String,
    port: u16,
    security: Security,
    credentials: Option<Credentials>,
    hello: ClientId,
    timeout: Duration,
    /// The open connection between sends; the lock also keeps sends in order.
    open: Mutex<Option<AsyncSmtpConnection>>,
}

impl Connection {
    pub fn new(
        host: String,
        port: u16,
        security: Security,
        credentials: Option<Credentials>,
        timeout: Duration,
    ) -> Connection {
        Connection {
            host,
            port,
            security,
            credentials,
            hello: ClientId::default(),
            timeout,
            open: Mutex::new(None),
        }
    }

    /// Send one mail, over the kept connection when it still answers.
    pub async fn send(&self, envelope: &Envelope, raw: &[u8]) -> Result<(), Failure> {
        let mut open = self.open.lock().await;
        let result = tokio::time::timeout(self.timeout, async {
            let mut conn = match open.take() {
                // lettre's pool does the same NOOP: a connection the server
                // closed while it was idle is found out before a mail rides on it.
                Some(mut conn) => {
                    if conn.test_connected().await {
                        conn
                    } else {
                        conn.abort().await;
                        self.connect().await?
                    }
                }
                None => self.connect().await?,
            };
            let sent = conn.send(envelope, raw).await.map_err(Failure::Smtp);
            if !conn.has_broken() {
                *open = Some(conn);
            }
            sent
        })
        .await;
        match result {
            Ok(r) => r.map(|_| ()),
            Err(_) => {
                // Cut off mid-dialogue: the connection's state is unknown.
                *open = None;
                Err(Failure::Connection(format!(
                    "no answer within {} s ([smtp] timeout)",
                    self.timeout.as_secs()
                )))
            }
        }
    }

    /// Connect and log in, for `rsvpd check`.
    pub async fn check(&self) -> Result<(), Failure> {
        let mut conn = tokio::time::timeout(self.timeout, self.connect())
            .await
            .map_err(|_| {
                Failure::Connection(format!(
                    "no answer within {} s ([smtp] timeout)",
                    self.timeout.as_secs()
                ))
            })??;
        let _ = conn.quit().await;
        Ok(())
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, Failure> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| Failure::Connection(format!("cannot connect: {e}")))?;
        tcp.set_nodelay(true)
            .map_err(|e| Failure::Connection(format!("cannot set TCP_NODELAY: {e}")))?;
        let stream: Box<dyn AsyncTokioStream> = match &self.security {
            Security::Implicit(config) => {
                let name = ServerName::try_from(self.host.clone()).map_err(|_| {
                    Failure::Connection(format!("`{}` is not a valid TLS server name", self.host))
                })?;
                let tls = tokio_rustls::TlsConnector::from(config.clone())
                    .connect(name, tcp)
                    .await
                    .map_err(|e| Failure::Connection(format!("TLS handshake failed: {e}")))?;
                Box::new(Smtps(tls))
            }
            _ => Box::new(tcp),
        };
        let mut conn = AsyncSmtpConnection::connect_with_transport(stream, &self.hello)
            .await
            .map_err(Failure::Smtp)?;
        if let Security::StartTls(parameters) = &self.security {
            conn.starttls(parameters.clone(), &self.hello)
                .await
                .map_err(Failure::Smtp)?;
        }
        if let Some(credentials) = &self.credentials {
            conn.auth(DEFAULT_MECHANISMS, credentials)
                .await
                .map_err(Failure::Smtp)?;
        }
        Ok(conn)
    }
}

impl Failure {
    /// The whole story, for the log and the outbox's `last_error`.
    pub fn describe(&self) -> String {
        match self {
            Failure::Smtp(e) => super::describe_smtp_error(e),
            Failure::Connection(s) => s.clone(),
        }
    }
}

impl From<Failure> for anyhow::Error {
    fn from(f: Failure) -> anyhow::Error {
        anyhow!(f.describe())
    }
}

/// An implicit-TLS stream in the shape lettre takes.
#[derive(Debug)]
struct Smtps(tokio_rustls::client::TlsStream<TcpStream>);

impl AsyncTokioStream for Smtps {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

impl AsyncRead for Smtps {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Smtps {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
