//! The SMTP dialogue, driven one command at a time so that every failure is
//! known by the command it answered.
//!
//! lettre's pooled transport reports a 5xx without saying whether it answered
//! AUTH, MAIL FROM, RCPT TO or DATA, and only the answer to RCPT TO (or a 5.1.x
//! at DATA, from servers that check recipients late) says something about the
//! recipient. A 535 after a password rotation, a sender the server refuses, a
//! TLS or connection failure are problems of the server or of our setup: they
//! pause the whole queue and must never mark an attendee's address. So this
//! module uses lettre's `AsyncSmtpConnection` (which does the wire format,
//! TLS, EHLO parsing and AUTH) and sends the transaction's commands itself.
//!
//! Connections are kept open between mails, one per send in flight (the
//! outbox sends a backlog over up to `outbox::CONNECTIONS` side by side), and
//! replaced when one has been idle too long or the server closed it.
//!
//! We open the socket ourselves and hand it to lettre
//! (`AsyncSmtpConnection::connect_with_transport`) because lettre 0.11 never
//! sets `TCP_NODELAY` and writes a mail's body and the closing `\r\n.\r\n` in
//! two writes: Nagle's algorithm then holds the dot back until the server's
//! delayed ACK — about 40 ms per mail, which capped rsvpd near 20 mails/s
//! (fixed upstream in lettre PR #1159, not in a release yet). Only implicit TLS
//! (smtps) is set up here, with the same rustls as IMAP, because lettre reads
//! the greeting as soon as it is handed the stream; STARTTLS and AUTH stay
//! lettre's.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use lettre::Address;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::{SendError, SetupProblem, Stage};
use crate::config::{PasswordSource, SmtpServer, Tls};
use crate::mask::mask_addresses;

/// A pooled connection idle longer than this is replaced rather than reused:
/// servers close idle sessions after a few minutes (RFC 5321: at least 5).
const IDLE_REUSE: Duration = Duration::from_secs(60);

/// How to reach and log in to one SMTP server.
pub struct SmtpSender {
    host: String,
    port: u16,
    tls: Tls,
    /// For STARTTLS (lettre's).
    tls_parameters: Option<TlsParameters>,
    /// For implicit TLS (ours, on our own socket).
    implicit: Option<Arc<rustls::ClientConfig>>,
    /// The user, and where its password is read from at each login.
    login: Option<(String, PasswordSource)>,
    timeout: Duration,
    hello: ClientId,
    /// Open connections not in use, and when each was last used: up to
    /// `outbox::CONNECTIONS` sends go side by side, each on its own.
    idle: std::sync::Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
}

/// Where in one transaction the server said no.
enum Failed {
    /// Before the server took the recipient: connect, TLS, login, MAIL FROM.
    Setup(SetupProblem),
    /// The answer to RCPT TO.
    Rcpt(Refusal),
    /// The answer to DATA or to the message's final dot.
    Data(Refusal),
}

/// A negative answer (or none) to one command.
struct Refusal {
    /// A 5xx: the server will say the same next time.
    permanent: bool,
    /// What it said, addresses masked.
    text: String,
}

impl Refusal {
    fn of(e: &lettre::transport::smtp::Error) -> Refusal {
        // A reply reads as the server wrote it: "554 5.7.1 Message rejected".
        let text = match (e.status(), std::error::Error::source(e)) {
            (Some(code), Some(said)) => format!("{code} {said}"),
            _ => super::describe_smtp_error(e),
        };
        Refusal {
            permanent: e.is_permanent(),
            text: mask_addresses(&text),
        }
    }

    fn silent(what: &str, timeout: Duration) -> Refusal {
        Refusal {
            permanent: false,
            text: format!("no answer to {what} within {} s", timeout.as_secs()),
        }
    }
}

impl SmtpSender {
    pub fn new(
        server: &SmtpServer,
        tls_parameters: Option<TlsParameters>,
        implicit: Option<Arc<rustls::ClientConfig>>,
        timeout: Duration,
    ) -> Arc<SmtpSender> {
        Arc::new(SmtpSender {
            host: server.host.clone(),
            port: server.port,
            tls: server.tls,
            tls_parameters,
            implicit,
            login: server.user.clone().zip(server.password.clone()),
            timeout,
            hello: ClientId::default(),
            idle: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// "host:port", for messages.
    pub fn server(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    fn setup(&self, stage: Stage, r: Refusal) -> SetupProblem {
        SetupProblem::new(stage, &self.server(), &r.text, r.permanent)
    }

    /// One command under the timeout.
    async fn timed<T>(
        &self,
        what: &str,
        f: impl Future<Output = Result<T, lettre::transport::smtp::Error>>,
    ) -> Result<T, Refusal> {
        match tokio::time::timeout(self.timeout, f).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(Refusal::of(&e)),
            Err(_) => Err(Refusal::silent(what, self.timeout)),
        }
    }

    /// A fresh, logged-in connection.
    pub async fn connect(&self) -> Result<AsyncSmtpConnection, SetupProblem> {
        let opened = tokio::time::timeout(self.timeout, self.open()).await;
        let mut conn = match opened {
            Ok(Ok(c)) => c,
            Ok(Err(problem)) => return Err(problem),
            Err(_) => {
                return Err(self.setup(
                    Stage::Connect,
                    Refusal::silent("the connection (no greeting)", self.timeout),
                ));
            }
        };
        if let (Tls::StartTls, Some(params)) = (self.tls, &self.tls_parameters) {
            let upgrade = conn.starttls(params.clone(), &self.hello);
            if let Err(e) = self.timed("STARTTLS", upgrade).await {
                conn.abort().await;
                return Err(self.setup(Stage::Tls, e));
            }
        }
        if let Some((user, password)) = &self.login {
            let password = match password.read() {
                Ok(p) => p,
                Err(e) => {
                    conn.abort().await;
                    let text = format!("{e:#}");
                    return Err(self.setup(
                        Stage::Login,
                        Refusal {
                            permanent: true,
                            text,
                        },
                    ));
                }
            };
            let credentials = Credentials::new(user.clone(), password.expose().to_string());
            let login = conn.auth(DEFAULT_MECHANISMS, &credentials);
            if let Err(e) = self.timed("AUTH", login).await {
                conn.abort().await;
                return Err(self.setup(Stage::Login, e));
            }
        }
        Ok(conn)
    }

    /// The TCP connection (with `TCP_NODELAY`), TLS for smtps, and the
    /// server's greeting and EHLO.
    async fn open(&self) -> Result<AsyncSmtpConnection, SetupProblem> {
        let io_problem = |stage: Stage, what: &str, e: &dyn std::fmt::Display| {
            self.setup(
                stage,
                Refusal {
                    permanent: false,
                    text: format!("{what}: {e}"),
                },
            )
        };
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| io_problem(Stage::Connect, "cannot connect", &e))?;
        tcp.set_nodelay(true)
            .map_err(|e| io_problem(Stage::Connect, "cannot set TCP_NODELAY", &e))?;
        let stream: Box<dyn AsyncTokioStream> = match (&self.tls, &self.implicit) {
            (Tls::Implicit, Some(config)) => {
                let name = ServerName::try_from(self.host.clone()).map_err(|_| {
                    io_problem(Stage::Tls, "not a valid TLS server name", &self.host)
                })?;
                let tls = tokio_rustls::TlsConnector::from(config.clone())
                    .connect(name, tcp)
                    .await
                    .map_err(|e| io_problem(Stage::Tls, "TLS handshake failed", &e))?;
                Box::new(Smtps(tls))
            }
            _ => Box::new(tcp),
        };
        AsyncSmtpConnection::connect_with_transport(stream, &self.hello)
            .await
            .map_err(|e| {
                let stage = if is_tls(&e) {
                    Stage::Tls
                } else {
                    Stage::Connect
                };
                self.setup(stage, Refusal::of(&e))
            })
    }

    /// Connect, log in and say goodbye: `rsvpd check`.
    pub async fn probe(&self) -> Result<(), SetupProblem> {
        let mut conn = self.connect().await?;
        let _ = self.timed("QUIT", conn.quit()).await;
        Ok(())
    }

    /// Send `raw` from `from` to the one recipient `to`.
    pub async fn send(
        &self,
        from: &Address,
        to: &Address,
        raw: &[u8],
    ) -> Result<super::Finishing, SendError> {
        let cached = self.idle_connection();
        let reused = cached.is_some();
        let mut conn = match cached {
            Some((c, _)) => c,
            None => self.connect().await.map_err(SendError::Setup)?,
        };
        let mut result = self.transaction(&mut conn, from, to, raw).await;
        // A kept connection the server has closed meanwhile fails at the first
        // command: that says nothing yet, so try once more on a fresh one.
        if reused && matches!(&result, Err(Failed::Setup(p)) if !p.permanent) {
            conn.abort().await;
            conn = self.connect().await.map_err(SendError::Setup)?;
            result = self.transaction(&mut conn, from, to, raw).await;
        }
        match result {
            Ok(turn) => {
                let mut idle = self.idle();
                if idle.len() < crate::outbox::CONNECTIONS {
                    idle.push((conn, Instant::now()));
                }
                Ok(turn)
            }
            Err(failed) => {
                conn.abort().await;
                Err(self.classify(failed))
            }
        }
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<(AsyncSmtpConnection, Instant)>> {
        // Pushing or popping cannot be left half-done by a panic.
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The most recently used open connection that is still good, if any;
    /// the stale ones are dropped.
    fn idle_connection(&self) -> Option<(AsyncSmtpConnection, Instant)> {
        let mut idle = self.idle();
        while let Some((c, used)) = idle.pop() {
            if !c.has_broken() && used.elapsed() < IDLE_REUSE {
                return Some((c, used));
            }
        }
        None
    }

    async fn transaction(
        &self,
        conn: &mut AsyncSmtpConnection,
        from: &Address,
        to: &Address,
        raw: &[u8],
    ) -> Result<super::Finishing, Failed> {
        let info = conn.server_info();
        let mut params = Vec::new();
        if !(AsRef::<str>::as_ref(from).is_ascii() && AsRef::<str>::as_ref(to).is_ascii()) {
            if !info.supports_feature(Extension::SmtpUtfEight) {
                return Err(Failed::Rcpt(Refusal {
                    permanent: true,
                    text: "the address is not ASCII and the server does not offer SMTPUTF8".into(),
                }));
            }
            params.push(MailParameter::SmtpUtfEight);
        }
        if !raw.is_ascii() {
            if !info.supports_feature(Extension::EightBitMime) {
                return Err(Failed::Setup(self.setup(
                    Stage::Data,
                    Refusal {
                        permanent: true,
                        text: "the server does not offer 8BITMIME, which rsvpd's mail needs".into(),
                    },
                )));
            }
            params.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        self.timed(
            "MAIL FROM",
            conn.command(Mail::new(Some(from.clone()), params)),
        )
        .await
        .map_err(|e| Failed::Setup(self.setup(Stage::Sender, e)))?;
        match tokio::time::timeout(self.timeout, conn.command(Rcpt::new(to.clone(), vec![]))).await
        {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(Failed::Rcpt(Refusal::of(&e))),
            Err(_) => return Err(Failed::Rcpt(Refusal::silent("RCPT TO", self.timeout))),
        }
        match tokio::time::timeout(self.timeout, conn.command(Data)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(Failed::Data(Refusal::of(&e))),
            Err(_) => return Err(Failed::Data(Refusal::silent("DATA", self.timeout))),
        }
        // The body may be large; give it time in proportion (1 s per 64 KiB extra).
        let body_time = self.timeout + Duration::from_secs(raw.len() as u64 / 65_536);
        // From the message to its record as sent, one mail at a time (see
        // `Transport::send`); the wait for the turn is not the server's time.
        let turn = super::Finishing::take().await;
        match tokio::time::timeout(body_time, conn.message(raw)).await {
            Ok(Ok(_)) => Ok(turn),
            Ok(Err(e)) => Err(Failed::Data(Refusal::of(&e))),
            Err(_) => Err(Failed::Data(Refusal::silent(
                "the end of the message",
                body_time,
            ))),
        }
    }

    fn classify(&self, failed: Failed) -> SendError {
        let server = self.server();
        match failed {
            Failed::Setup(p) => SendError::Setup(p),
            Failed::Rcpt(r) => {
                let text = format!("{server}: RCPT TO: {}", r.text);
                if r.permanent {
                    SendError::Recipient(text)
                } else {
                    SendError::Transient(text)
                }
            }
            Failed::Data(r) if r.permanent && about_recipient(&r.text) => {
                SendError::Recipient(format!("{server}: DATA: {}", r.text))
            }
            Failed::Data(r) if r.permanent => SendError::Setup(self.setup(Stage::Data, r)),
            Failed::Data(r) => SendError::Transient(format!("{server}: DATA: {}", r.text)),
        }
    }
}

/// Whether the connection failed in the TLS handshake. lettre reports a
/// handshake error of implicit TLS as a connection error; rustls' own error
/// in the chain (also inside an `io::Error`) tells.
fn is_tls(e: &lettre::transport::smtp::Error) -> bool {
    let mut next: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(err) = next {
        if err.is::<rustls::Error>() {
            return true;
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && io
                .get_ref()
                .is_some_and(|inner| inner.is::<rustls::Error>())
        {
            return true;
        }
        next = err.source();
    }
    e.is_tls()
}

/// Whether a 5xx to DATA names the recipient: enhanced status 5.1.x (bad
/// destination address) or 5.2.1 (mailbox disabled), as servers that check
/// recipients only after the message (some LMTP-backed ones) answer.
fn about_recipient(reply: &str) -> bool {
    static CODE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"\b5\.(\d{1,3})\.(\d{1,3})\b").expect("a valid regex")
    });
    CODE.captures(reply).is_some_and(|c| {
        let (subject, detail) = (&c[1], &c[2]);
        subject == "1" || (subject == "2" && detail == "1")
    })
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

#[cfg(test)]
mod tests {
    use super::about_recipient;

    #[test]
    fn a_5_1_x_at_data_is_about_the_recipient_other_5xx_are_not() {
        assert!(about_recipient(
            "permanent error (550): 5.1.1 <a***@example.net>: Recipient address rejected"
        ));
        assert!(about_recipient(
            "permanent error (550): 5.2.1 mailbox disabled"
        ));
        assert!(!about_recipient(
            "permanent error (554): 5.7.1 message rejected as spam"
        ));
        assert!(!about_recipient(
            "permanent error (500): 5.3.0 Error: command failed"
        ));
        assert!(!about_recipient("permanent error (552): message too large"));
    }
}
