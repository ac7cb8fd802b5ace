//! Who is logged in: password check, sessions, cookies, CSRF tokens and the
//! login rate limit. The only module that touches secrets of the dashboard.
//!
//! - Passwords are argon2id PHC strings from `rsvpd hash-password`; an
//!   unknown user name is checked against a dummy hash, so the answer takes
//!   as long as for a known one.
//! - A session is a random token in an HttpOnly, SameSite=Lax cookie (Secure
//!   under an https `public_url`); the database keeps only its SHA-256, so
//!   sessions survive a restart and a copy of the database logs nobody in.
//!   A session lasts [`SESSION_IDLE`] after its last use; logout deletes it.
//! - Every form carries the session's CSRF token; [`require_login`] checks
//!   it on every POST before a handler runs, in constant time. The login form
//!   (no session yet) carries a token that must equal its own cookie.
//! - Failed logins are counted in the database per user name and per
//!   address; past the limits a login is refused without checking the password.

use std::net::{IpAddr, SocketAddr};
use std::sync::OnceLock;

use anyhow::anyhow;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::body::{Body, to_bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Duration, Utc};
use cookie::{Cookie, SameSite};
use subtle::ConstantTimeEq as _;

use super::{WebError, WebState};
use crate::config::WebUser;
use crate::pipeline::hex_sha256;

pub const SESSION_COOKIE: &str = "rsvpd_session";
pub const LOGIN_COOKIE: &str = "rsvpd_login";
/// A session ends this long after its last use (a working day).
pub const SESSION_IDLE: Duration = Duration::hours(10);
/// The window in which failed logins are counted.
pub const FAILURE_WINDOW: Duration = Duration::minutes(15);
/// Failed logins per user name in the window before that name is locked.
pub const MAX_FAILURES_PER_USER: i64 = 5;
/// Failed logins per address in the window (several people may share an
/// office's address, so this is larger).
pub const MAX_FAILURES_PER_ADDRESS: i64 = 20;
/// Largest form a POST may carry (a broadcast text is the biggest).
const MAX_FORM: usize = 256 * 1024;

/// `rsvpd hash-password`: an argon2id PHC string for `[[web.user]] password_hash`.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::encode_b64(uuid::Uuid::new_v4().as_bytes())
        .map_err(|e| anyhow!("cannot make a salt: {e}"))?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow!("cannot hash the password: {e}"))
}

/// Whether `password` matches the PHC string `hash` (constant time inside argon2).
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// Checked in place of a missing user's hash, so "no such user" and "wrong
/// password" take the same time.
fn dummy_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| hash_password("no user has this password").unwrap_or_default())
}

/// Check `name` / `password` against the configured users, always paying for
/// one argon2 verification.
pub fn check_login<'a>(users: &'a [WebUser], name: &str, password: &str) -> Option<&'a WebUser> {
    let user = users
        .iter()
        .find(|u| bool::from(u.name.as_bytes().ct_eq(name.as_bytes())));
    let hash = user
        .map(|u| u.password_hash.expose())
        .unwrap_or_else(|| dummy_hash());
    let ok = verify_password(password, hash);
    user.filter(|_| ok)
}

/// Equal in constant time (for the CSRF token).
pub fn same_token(a: &str, b: &str) -> bool {
    !a.is_empty() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// A fresh random token: two v4 UUIDs, 244 random bits from the OS, as hex.
pub fn new_token() -> String {
    let a = uuid::Uuid::new_v4().simple().to_string();
    let b = uuid::Uuid::new_v4().simple().to_string();
    format!("{a}{b}")
}

/// The logged-in organizer of a request.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: WebUser,
    pub csrf: String,
    token_hash: String,
}

impl Session {
    pub fn may_see(&self, conference: &str) -> bool {
        self.user.may_see(conference)
    }
}

/// Form fields of a POST, in order (a field may repeat, e.g. workshop boxes).
#[derive(Debug, Clone, Default)]
pub struct FormData(pub Vec<(String, String)>);

impl FormData {
    pub fn parse(body: &[u8]) -> Result<FormData, WebError> {
        serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
            .map(FormData)
            .map_err(|_| WebError::BadRequest("the form could not be read".into()))
    }
    /// The first value of `name`, trimmed; empty when missing.
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .unwrap_or("")
    }
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect()
    }
    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }
}

pub fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| Cookie::parse(c.trim()).ok())
        .find(|c| c.name() == name)
        .map(|c| c.value().to_string())
}

/// A Set-Cookie header value: HttpOnly, SameSite, Path=/, Secure when asked.
pub fn set_cookie(
    name: &str,
    value: &str,
    same_site: SameSite,
    secure: bool,
    max_age: Option<Duration>,
) -> HeaderValue {
    let mut c = Cookie::build((name.to_string(), value.to_string()))
        .path("/")
        .http_only(true)
        .same_site(same_site)
        .secure(secure);
    if let Some(age) = max_age {
        c = c.max_age(cookie::time::Duration::seconds(age.num_seconds()));
    }
    HeaderValue::from_str(&c.build().to_string()).unwrap_or(HeaderValue::from_static(""))
}

/// The address a request came from: the peer, or — when the peer is the
/// reverse proxy on this machine — the last address it put in X-Forwarded-For.
pub fn client_address(headers: &HeaderMap, peer: Option<SocketAddr>) -> String {
    let peer_ip = peer.map(|p| p.ip());
    if peer_ip.is_none_or(|ip| ip.is_loopback())
        && let Some(forwarded) = headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|v| v.trim().parse::<IpAddr>().ok())
    {
        return forwarded.to_string();
    }
    peer_ip.map(|ip| ip.to_string()).unwrap_or_default()
}

pub fn peer(request_extensions: &axum::http::Extensions) -> Option<SocketAddr> {
    request_extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
}

/// Start a session for `user`; the Set-Cookie header for it.
pub async fn start_session(
    state: &WebState,
    user: &WebUser,
    now: DateTime<Utc>,
) -> Result<HeaderValue, WebError> {
    let app = state.app();
    let token = new_token();
    app.store
        .create_session(
            &hex_sha256(token.as_bytes()),
            &user.name,
            &new_token(),
            now,
            now + SESSION_IDLE,
        )
        .await?;
    Ok(set_cookie(
        SESSION_COOKIE,
        &token,
        SameSite::Lax,
        state.secure_cookies(),
        None,
    ))
}

/// End the session of `session` (logout).
pub async fn end_session(state: &WebState, session: &Session) -> Result<HeaderValue, WebError> {
    state
        .app()
        .store
        .end_session(&session.token_hash, Utc::now())
        .await?;
    Ok(set_cookie(
        SESSION_COOKIE,
        "",
        SameSite::Lax,
        state.secure_cookies(),
        Some(Duration::zero()),
    ))
}

/// The session of a request, if its cookie names a live one of a user who
/// is still configured.
pub async fn current_session(
    state: &WebState,
    headers: &HeaderMap,
) -> Result<Option<Session>, WebError> {
    let Some(token) = cookie_value(headers, SESSION_COOKIE).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let app = state.app();
    let hash = hex_sha256(token.as_bytes());
    let now = Utc::now();
    let Some(stored) = app.store.session(&hash, now).await? else {
        return Ok(None);
    };
    let Some(user) = app
        .config
        .web
        .as_ref()
        .and_then(|w| w.users.iter().find(|u| u.name == stored.user))
    else {
        return Ok(None);
    };
    // Extending the session on every request would write on every click;
    // once a minute is enough for a ten-hour idle limit.
    if now - stored.last_seen_at > Duration::minutes(1) {
        app.store
            .touch_session(&hash, now, now + SESSION_IDLE)
            .await?;
    }
    Ok(Some(Session {
        user: user.clone(),
        csrf: stored.csrf,
        token_hash: hash,
    }))
}

/// Middleware of every page behind the login: no session → 303 to /login;
/// a POST without the session's CSRF token → 403. Puts the [`Session`] (and
/// for a POST the [`FormData`]) into the request for the handler.
pub async fn require_login(
    State(state): State<WebState>,
    request: Request,
    next: Next,
) -> Response {
    let session = match current_session(&state, request.headers()).await {
        Ok(Some(s)) => s,
        Ok(None) => return Redirect::to("/login").into_response(),
        Err(e) => return e.into_response(),
    };
    let (mut parts, body) = request.into_parts();
    let mut request = if parts.method == Method::POST {
        let bytes = match to_bytes(body, MAX_FORM).await {
            Ok(b) => b,
            Err(_) => {
                return WebError::BadRequest("the form is too large".into()).into_response();
            }
        };
        let form = match FormData::parse(&bytes) {
            Ok(f) => f,
            Err(e) => return e.into_response(),
        };
        if !same_token(form.get("csrf"), &session.csrf) {
            return WebError::Forbidden.into_response();
        }
        parts.extensions.insert(form);
        Request::from_parts(parts, Body::from(bytes))
    } else {
        Request::from_parts(parts, body)
    };
    request.extensions_mut().insert(session);
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let h = hash_password("Geheim 123!").expect("hash");
        assert!(h.starts_with("$argon2id$v=19$"), "{h}");
        assert!(verify_password("Geheim 123!", &h));
        assert!(!verify_password("geheim 123!", &h));
        assert!(!verify_password("Geheim 123!", "not a hash"));
        assert_ne!(h, hash_password("Geheim 123!").expect("hash"), "salted");
    }

    #[test]
    fn tokens_compare_whole_and_never_empty() {
        let t = new_token();
        assert_eq!(t.len(), 64);
        assert!(same_token(&t, &t.clone()));
        assert!(!same_token(&t, &t[..63]));
        assert!(!same_token("", ""));
    }

    #[test]
    fn the_address_behind_a_local_proxy_is_the_forwarded_one() {
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("10.0.0.1, 192.0.2.7"),
        );
        let local: SocketAddr = "127.0.0.1:5000".parse().expect("addr");
        let remote: SocketAddr = "198.51.100.3:5000".parse().expect("addr");
        assert_eq!(client_address(&h, Some(local)), "192.0.2.7");
        // A remote peer cannot choose its address by sending the header.
        assert_eq!(client_address(&h, Some(remote)), "198.51.100.3");
    }

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; rsvpd_session=abc123; b=2"),
        );
        assert_eq!(cookie_value(&h, SESSION_COOKIE).as_deref(), Some("abc123"));
        assert_eq!(cookie_value(&h, LOGIN_COOKIE), None);
        let c = set_cookie(SESSION_COOKIE, "x", SameSite::Lax, true, None);
        let c = c.to_str().expect("ascii");
        assert!(
            c.contains("HttpOnly") && c.contains("SameSite=Lax") && c.contains("Secure"),
            "{c}"
        );
    }
}
