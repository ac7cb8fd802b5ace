//! Handler tests: the router driven with `oneshot` over a fresh test `App`
//! (SQLite in a temp dir, mail written as files), logged in as a real user
//! with a real argon2id hash.

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use tokio::sync::watch;
use tower::ServiceExt as _;

use super::{WebState, router};
use crate::storage::Status;
use crate::test_support::{self, TestApp};

pub const PASSWORD: &str = "Sommerfest 2027!";

fn hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| super::auth::hash_password(PASSWORD).expect("hash"))
}

fn config() -> String {
    config_with("")
}

/// The test config with `web_extra` lines under `[web]`.
fn config_with(web_extra: &str) -> String {
    format!(
        r#"[[conference]]
id = "miko-2027"
title = "Vierte Migrationskonferenz"
aliases = ["Migrationskonferenz"]
starts = "2099-10-15T13:30"
ends = "2099-10-15T19:30"
location = "Mosaiksaal, Neues Rathaus"
capacity = 10
workshops = [{{ id = "w1", title = "Teilhabe in Gremien" }}, {{ id = "w2", title = "Antidiskriminierung" }}]

[[conference]]
id = "fishbowl"
title = "Fishbowl-Diskussion Hainholz"
aliases = ["Fishbowl"]
starts = "2099-11-04T18:00"
ends = "2099-11-04T20:30"

[web]
listen = "127.0.0.1:0"
{web_extra}

[[web.user]]
name = "orga"
password_hash = "{h}"
conferences = ["miko-2027"]

[[web.user]]
name = "admin"
password_hash = "{h}"
conferences = ["*"]
"#,
        h = hash()
    )
}

pub struct Client {
    pub t: TestApp,
    router: Router,
    cookie: Option<String>,
    pub csrf: String,
    lang: &'static str,
}

pub struct Page {
    pub status: StatusCode,
    pub location: Option<String>,
    pub set_cookies: Vec<String>,
    pub content_type: String,
    pub body: Vec<u8>,
}

impl Page {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn form_token(html: &str) -> Option<String> {
    let re = regex::Regex::new(r#"name="csrf" value="([^"]+)""#).expect("regex");
    re.captures(html).map(|c| c[1].to_string())
}

impl Client {
    pub async fn new() -> Client {
        let t = test_support::app(&config()).await;
        Client::on(t)
    }

    pub async fn with_web(web_extra: &str) -> Client {
        let t = test_support::app(&config_with(web_extra)).await;
        Client::on(t)
    }

    fn on(t: TestApp) -> Client {
        let (_tx, rx) = watch::channel(t.app.clone());
        // The sender may drop: the receiver keeps the last App.
        let router = router(WebState::new(rx));
        Client {
            t,
            router,
            cookie: None,
            csrf: String::new(),
            lang: "de-DE,de;q=0.9",
        }
    }

    async fn send(&self, request: Request<Body>) -> Page {
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("response");
        let status = response.status();
        let h = response.headers().clone();
        let location = h
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let set_cookies = h
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_string))
            .collect();
        let content_type = h
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body")
            .to_vec();
        Page {
            status,
            location,
            set_cookies,
            content_type,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Page {
        let mut r = Request::get(path).header(header::ACCEPT_LANGUAGE, self.lang);
        if let Some(c) = &self.cookie {
            r = r.header(header::COOKIE, c);
        }
        self.send(r.body(Body::empty()).expect("request")).await
    }

    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let body = serde_urlencoded::to_string(fields).expect("form");
        let mut r = Request::post(path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ACCEPT_LANGUAGE, self.lang);
        if let Some(c) = &self.cookie {
            r = r.header(header::COOKIE, c);
        }
        self.send(r.body(Body::from(body)).expect("request")).await
    }

    /// POST with the session's CSRF token added.
    pub async fn submit(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let mut all = vec![("csrf", self.csrf.as_str())];
        all.extend_from_slice(fields);
        self.post(path, &all).await
    }

    /// Log in through the form; returns the POST's answer.
    pub async fn login(&mut self, user: &str, password: &str) -> Page {
        let form = self.get("/login").await;
        assert_eq!(form.status, StatusCode::OK);
        let token = form_token(&form.text()).expect("the login form has a token");
        let login_cookie = form
            .set_cookies
            .iter()
            .find(|c| c.starts_with("rsvpd_login="))
            .and_then(|c| c.split(';').next())
            .expect("login cookie")
            .to_string();
        self.cookie = Some(login_cookie);
        let page = self
            .post(
                "/login",
                &[("username", user), ("password", password), ("csrf", &token)],
            )
            .await;
        if let Some(session) = page
            .set_cookies
            .iter()
            .find(|c| c.starts_with("rsvpd_session="))
            .and_then(|c| c.split(';').next())
        {
            self.cookie = Some(session.to_string());
            let home = self.get("/").await;
            self.csrf = form_token(&home.text()).expect("pages carry the CSRF token");
        }
        page
    }

    pub async fn logged_in(user: &str) -> Client {
        let mut c = Client::new().await;
        let page = c.login(user, PASSWORD).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.text());
        c
    }

    pub async fn register(&self, conference: &str, email: &str, name: &str, party: u32) {
        let conf = self
            .t
            .app
            .config
            .conference(conference)
            .expect("conf")
            .clone();
        let new = crate::manual::NewRegistration {
            email: email.into(),
            name: Some(name.into()),
            organization: Some("Verein Brückenbau".into()),
            party_size: party,
            workshops: if conference == "miko-2027" {
                vec!["w1".into()]
            } else {
                vec![]
            },
            ..Default::default()
        };
        crate::manual::add(
            &self.t.app,
            &conf,
            new,
            crate::register::Actor::Cli { message_id: None },
        )
        .await
        .expect("registered");
    }
}

#[tokio::test]
async fn an_unknown_path_is_404() {
    let c = Client::new().await;
    assert_eq!(c.get("/no-such-page").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn pages_without_a_session_send_you_to_the_login() {
    let c = Client::new().await;
    for path in [
        "/",
        "/conferences/miko-2027",
        "/review",
        "/outbox",
        "/conferences/miko-2027/attendees.csv",
    ] {
        let p = c.get(path).await;
        assert_eq!(p.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(p.location.as_deref(), Some("/login"), "{path}");
    }
    let p = c.post("/review/1/dismiss", &[("csrf", "x")]).await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert_eq!(c.get("/static/style.css").await.status, StatusCode::OK);
}

#[tokio::test]
async fn login_sets_a_strict_session_cookie_and_a_wrong_password_is_refused() {
    let mut c = Client::new().await;
    let wrong = c.login("orga", "sommerfest 2027!").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(
        wrong.text().contains("Passwort stimmt nicht"),
        "{}",
        wrong.text()
    );
    assert!(
        !wrong
            .set_cookies
            .iter()
            .any(|c| c.starts_with("rsvpd_session="))
    );
    let unknown = c.login("nobody", PASSWORD).await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    let ok = c.login("orga", PASSWORD).await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    assert_eq!(ok.location.as_deref(), Some("/"));
    let cookie = ok
        .set_cookies
        .iter()
        .find(|c| c.starts_with("rsvpd_session="))
        .expect("session cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    // No https public_url: the cookie must still work over plain http.
    assert!(!cookie.contains("Secure"), "{cookie}");
    let home = c.get("/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.text().contains("Vierte Migrationskonferenz"));
}

#[tokio::test]
async fn pages_with_personal_data_are_not_cached_nor_framed() {
    let c = Client::logged_in("orga").await;
    let r = c
        .router
        .clone()
        .oneshot(
            Request::get("/")
                .header(header::COOKIE, c.cookie.clone().unwrap_or_default())
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("response");
    let h = r.headers();
    assert_eq!(
        h.get(header::CACHE_CONTROL).map(|v| v.as_bytes()),
        Some(&b"no-store"[..])
    );
    assert_eq!(
        h.get(header::X_FRAME_OPTIONS).map(|v| v.as_bytes()),
        Some(&b"DENY"[..])
    );
    assert!(h.contains_key(header::CONTENT_SECURITY_POLICY));
}

#[tokio::test]
async fn a_login_post_without_the_form_token_is_403() {
    let c = Client::new().await;
    let p = c
        .post("/login", &[("username", "orga"), ("password", PASSWORD)])
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    assert!(
        !p.set_cookies
            .iter()
            .any(|c| c.starts_with("rsvpd_session="))
    );
}

#[tokio::test]
async fn logins_are_rate_limited_per_user() {
    let mut c = Client::new().await;
    for _ in 0..super::auth::MAX_FAILURES_PER_USER {
        assert_eq!(
            c.login("orga", "falsch").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    // Locked: even the right password is not checked now.
    let locked = c.login("orga", PASSWORD).await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(locked.text().contains("15 Minuten"), "{}", locked.text());
    // Another user is not locked by orga's failures.
    assert_eq!(
        c.login("admin", PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn a_post_without_the_csrf_token_is_403_and_changes_nothing() {
    let c = Client::logged_in("orga").await;
    c.register("miko-2027", "ayse@example.org", "Ayşe Yılmaz", 1)
        .await;
    let path = "/conferences/miko-2027/attendees/ayse@example.org/cancel";
    assert_eq!(c.post(path, &[]).await.status, StatusCode::FORBIDDEN);
    assert_eq!(
        c.post(path, &[("csrf", "guessed")]).await.status,
        StatusCode::FORBIDDEN
    );
    let reg =
        c.t.app
            .store
            .registration_of("miko-2027", "ayse@example.org")
            .await
            .expect("read")
            .expect("reg");
    assert_eq!(reg.status, Status::Confirmed);
    let p = c.submit(path, &[]).await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.text());
    let reg =
        c.t.app
            .store
            .registration_of("miko-2027", "ayse@example.org")
            .await
            .expect("read")
            .expect("reg");
    assert_eq!(reg.status, Status::Cancelled);
}

#[tokio::test]
async fn another_organizers_conference_is_404_everywhere() {
    let c = Client::logged_in("orga").await;
    c.register("fishbowl", "secret@example.org", "Geheim Person", 1)
        .await;
    for path in [
        "/conferences/fishbowl",
        "/conferences/fishbowl/attendees/secret@example.org",
        "/conferences/fishbowl/attendees.csv",
        "/conferences/fishbowl/attendees.xlsx",
        "/conferences/fishbowl/attendees.json",
        "/conferences/fishbowl/sign-in",
        "/conferences/fishbowl/broadcast",
        "/conferences/fishbowl/add",
        "/conferences/no-such",
    ] {
        let p = c.get(path).await;
        assert_eq!(p.status, StatusCode::NOT_FOUND, "{path}");
        assert!(
            !p.text().contains("secret@example.org") && !p.text().contains("Fishbowl"),
            "{path}"
        );
    }
    let p = c
        .submit(
            "/conferences/fishbowl/attendees/secret@example.org/cancel",
            &[],
        )
        .await;
    assert_eq!(p.status, StatusCode::NOT_FOUND);
    let home = c.get("/").await.text();
    assert!(!home.contains("Fishbowl"), "{home}");
    // admin sees both.
    let a = Client::on_same(&c, "admin").await;
    assert_eq!(a.get("/conferences/fishbowl").await.status, StatusCode::OK);
}

impl Client {
    /// Another browser logged in as `user` on the same App.
    async fn on_same(other: &Client, user: &str) -> Client {
        let (_tx, rx) = watch::channel(other.t.app.clone());
        let mut c = Client {
            t: TestApp {
                app: other.t.app.clone(),
                dir: tempfile::tempdir().expect("dir"),
            },
            router: router(WebState::new(rx)),
            cookie: None,
            csrf: String::new(),
            lang: "de",
        };
        assert_eq!(c.login(user, PASSWORD).await.status, StatusCode::SEE_OTHER);
        c
    }
}

#[tokio::test]
async fn sessions_survive_a_restart_and_logout_ends_them() {
    let c = Client::logged_in("orga").await;
    let cookie = c.cookie.clone();
    let csrf = c.csrf.clone();
    // The daemon restarts: a new App on the same database.
    let app: Arc<crate::app::App> = c.t.reopen().await;
    let (_tx, rx) = watch::channel(app);
    let restarted = Client {
        t: c.t,
        router: router(WebState::new(rx)),
        cookie,
        csrf,
        lang: "de",
    };
    assert_eq!(restarted.get("/").await.status, StatusCode::OK);
    let out = restarted.submit("/logout", &[]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(
        out.set_cookies
            .iter()
            .any(|c| c.starts_with("rsvpd_session=;")
                || c.starts_with("rsvpd_session=\"\"")
                || c.contains("Max-Age=0")),
        "{:?}",
        out.set_cookies
    );
    let after = restarted.get("/").await;
    assert_eq!(after.location.as_deref(), Some("/login"));
}

#[tokio::test]
async fn the_list_searches_name_email_organisation_and_filters_by_status() {
    let c = Client::logged_in("orga").await;
    c.register("miko-2027", "ayse@example.org", "Ayşe Yılmaz", 2)
        .await;
    c.register("miko-2027", "jan@example.org", "Jan Kowalski", 1)
        .await;
    c.register("miko-2027", "big@example.org", "Große Gruppe", 9)
        .await; // over capacity: waitlisted
    let all = c.get("/conferences/miko-2027").await.text();
    assert!(
        all.contains("Ayşe Yılmaz") && all.contains("Jan Kowalski") && all.contains("Große Gruppe")
    );
    let q = c.get("/conferences/miko-2027?q=yilmaz").await.text();
    assert!(
        q.contains("Ayşe Yılmaz") && !q.contains("Jan Kowalski"),
        "{q}"
    );
    let q = c.get("/conferences/miko-2027?q=jan%40example").await.text();
    assert!(q.contains("Jan Kowalski") && !q.contains("Ayşe"), "{q}");
    let w = c
        .get("/conferences/miko-2027?status=waitlisted")
        .await
        .text();
    assert!(
        w.contains("Große Gruppe") && !w.contains("Jan Kowalski"),
        "{w}"
    );
    let home = c.get("/").await.text();
    assert!(
        home.contains("<strong>3</strong> Personen bestätigt"),
        "{home}"
    );
    assert!(
        home.contains("<strong>9</strong> Personen auf der Warteliste"),
        "{home}"
    );
}

#[tokio::test]
async fn english_pages_for_an_english_browser() {
    let mut c = Client::logged_in("orga").await;
    c.lang = "en-GB,en;q=0.9";
    let home = c.get("/").await.text();
    assert!(
        home.contains("Your events") && home.contains("people confirmed"),
        "{home}"
    );
}

#[tokio::test]
async fn the_attendee_page_shows_fields_history_and_the_mails() {
    let c = Client::logged_in("orga").await;
    c.register("miko-2027", "ayse@example.org", "Ayşe Yılmaz", 2)
        .await;
    let p = c
        .get("/conferences/miko-2027/attendees/ayse%40example.org")
        .await;
    assert_eq!(p.status, StatusCode::OK);
    let html = p.text();
    assert!(html.contains("Verein Brückenbau"), "{html}");
    assert!(
        html.contains("angemeldet") && html.contains("Kommandozeile"),
        "{html}"
    );
    // The confirmation in the outbox, readable.
    assert!(
        html.contains("Vierte Migrationskonferenz") && html.contains("mailtext"),
        "{html}"
    );
    assert_eq!(
        c.get("/conferences/miko-2027/attendees/nobody%40example.org")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

const UNCLEAR: &str = "From: =?utf-8?q?Ay=C5=9Fe_Y=C4=B1lmaz?= <ayse@example.org>\r\n\
To: anmeldung@example.org\r\nSubject: Frage\r\nMessage-ID: <unclear-1@example.org>\r\n\
Date: Mon, 1 Mar 2027 10:00:00 +0100\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
Hallo, ich habe eine Frage zum Programm. Wann gibt es Mittagessen?\r\n\r\nAyşe\r\n";

async fn review_item(c: &Client) -> i64 {
    c.t.app
        .process(
            UNCLEAR.as_bytes(),
            "file:unclear",
            None,
            crate::storage::Fence::Unfenced,
        )
        .await
        .expect("processed");
    let items = c.t.app.store.review_items().await.expect("items");
    assert_eq!(items.len(), 1, "{items:?}");
    items[0].id
}

#[tokio::test]
async fn a_review_item_is_assigned_with_a_corrected_party_size() {
    let c = Client::logged_in("orga").await;
    let id = review_item(&c).await;
    let list = c.get("/review").await.text();
    assert!(list.contains("Frage"), "{list}");
    let item = c.get(&format!("/review/{id}")).await;
    assert_eq!(item.status, StatusCode::OK);
    let html = item.text();
    assert!(html.contains("Wann gibt es Mittagessen?"), "{html}");
    // orga has one conference: it is chosen, the form is there.
    assert!(
        html.contains(r#"action="/review/"#) && html.contains("party_size"),
        "{html}"
    );
    let p = c
        .submit(
            &format!("/review/{id}/assign"),
            &[
                ("conference", "miko-2027"),
                ("name", "Ayşe Yılmaz"),
                ("organization", "Stadtteilzentrum"),
                ("party_size", "3"),
                ("workshop", "w2"),
                ("notes", "Rollstuhl\nKinderbetreuung"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.text());
    assert_eq!(
        p.location.as_deref(),
        Some("/conferences/miko-2027/attendees/ayse@example.org?ok=assigned")
    );
    let reg =
        c.t.app
            .store
            .registration_of("miko-2027", "ayse@example.org")
            .await
            .expect("read")
            .expect("registered");
    assert_eq!(reg.party_size, 3);
    assert_eq!(reg.workshops, vec!["w2".to_string()]);
    assert_eq!(
        reg.notes,
        vec!["Rollstuhl".to_string(), "Kinderbetreuung".to_string()]
    );
    assert_eq!(reg.organization.as_deref(), Some("Stadtteilzentrum"));
    let queued = test_support::outbox_of_kind(&c.t.app, "confirmation").await;
    assert_eq!(queued.len(), 1);
    assert!(
        c.t.app
            .store
            .review_items()
            .await
            .expect("items")
            .is_empty()
    );
    // The source mail is kept with the registration and shown.
    let page = c.get(p.location.as_deref().unwrap_or("/")).await.text();
    assert!(
        page.contains("Wann gibt es Mittagessen?") && page.contains("zugeordnet"),
        "{page}"
    );
}

#[tokio::test]
async fn a_review_item_can_be_dismissed_and_not_by_someone_without_its_conference() {
    let c = Client::logged_in("orga").await;
    let id = review_item(&c).await;
    // Assigning to a conference orga may not see is a 404.
    let p = c
        .submit(
            &format!("/review/{id}/assign"),
            &[("conference", "fishbowl"), ("party_size", "1")],
        )
        .await;
    assert_eq!(p.status, StatusCode::NOT_FOUND);
    let p = c.submit(&format!("/review/{id}/dismiss"), &[]).await;
    assert_eq!(p.location.as_deref(), Some("/review?ok=dismissed"));
    assert!(
        c.t.app
            .store
            .review_items()
            .await
            .expect("items")
            .is_empty()
    );
    assert_eq!(
        c.get(&format!("/review/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn exports_csv_with_bom_and_semicolons_xlsx_and_json() {
    let c = Client::logged_in("orga").await;
    c.register("miko-2027", "ayse@example.org", "Ayşe Yılmaz", 2)
        .await;
    let csv = c.get("/conferences/miko-2027/attendees.csv?sep=%3B").await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(csv.content_type.starts_with("text/csv"));
    assert!(csv.body.starts_with("\u{feff}".as_bytes()), "no BOM");
    let text = csv.text();
    assert!(text.contains("email;name;organization"), "{text}");
    assert!(
        text.contains("ayse@example.org;Ayşe Yılmaz;Verein Brückenbau;2"),
        "{text}"
    );
    let comma = c.get("/conferences/miko-2027/attendees.csv").await.text();
    assert!(comma.contains("ayse@example.org,Ayşe Yılmaz"), "{comma}");
    let xlsx = c.get("/conferences/miko-2027/attendees.xlsx").await;
    assert_eq!(xlsx.status, StatusCode::OK);
    assert!(xlsx.body.starts_with(b"PK"), "not a zip");
    let json: serde_json::Value =
        serde_json::from_slice(&c.get("/conferences/miko-2027/attendees.json").await.body)
            .expect("json");
    let first = &json[0];
    for key in [
        "email",
        "name",
        "organization",
        "party_size",
        "companions",
        "workshops",
        "status",
        "language",
        "notes",
        "registered_at",
    ] {
        assert!(first.get(key).is_some(), "{key} missing in {first}");
    }
    assert_eq!(first["status"], "confirmed");
}

#[tokio::test]
async fn the_sign_in_sheet_sorts_names_and_splits_pages() {
    let c = Client::logged_in("orga").await;
    c.register("miko-2027", "z@example.org", "Zeynep Kaya", 1)
        .await;
    c.register("miko-2027", "s@example.org", "Şahin Demir", 1)
        .await;
    c.register("miko-2027", "o@example.org", "Özlem Arslan", 1)
        .await;
    c.register("miko-2027", "a@example.org", "Anna Schmidt", 1)
        .await;
    let sheet = c.get("/conferences/miko-2027/sign-in?rows=5").await;
    assert_eq!(sheet.status, StatusCode::OK, "{}", sheet.text());
    let html = sheet.text();
    // By surname as a German reader expects: Arslan, Demir, Kaya, Schmidt
    // (Ö with O, Ş with S).
    let order = |text: &str| {
        let pos = |n: &str| text.find(n).unwrap_or_else(|| panic!("{n} missing"));
        assert!(pos("Özlem Arslan") < pos("Şahin Demir"), "{text}");
        assert!(pos("Şahin Demir") < pos("Zeynep Kaya"), "{text}");
        assert!(pos("Zeynep Kaya") < pos("Anna Schmidt"), "{text}");
    };
    order(&html);
    // The list page and the exports list people in the same order.
    order(&c.get("/conferences/miko-2027").await.text());
    order(&c.get("/conferences/miko-2027/attendees.csv").await.text());
    order(&c.get("/conferences/miko-2027/attendees.json").await.text());
    assert!(html.contains("Unterschrift"));
    // 4 people + blank rows, 5 per page: two pages, each with its head.
    assert_eq!(
        html.matches(r#"<section class="sheet">"#).count(),
        2,
        "{html}"
    );
    assert_eq!(html.matches("<thead>").count(), 2);
    // Per workshop: only who chose it (everyone here chose w1; nobody w2).
    let w2 = c
        .get("/conferences/miko-2027/sign-in?workshop=w2")
        .await
        .text();
    assert!(
        w2.contains("Antidiskriminierung") && !w2.contains("Zeynep"),
        "{w2}"
    );
    assert_eq!(
        c.get("/conferences/miko-2027/sign-in?workshop=w9")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_failed_mail_is_retried_from_the_outbox() {
    let c = Client::logged_in("orga").await;
    c.register("miko-2027", "ayse@example.org", "Ayşe Yılmaz", 1)
        .await;
    let id = test_support::outbox(&c.t.app).await[0].id;
    c.t.app
        .store
        .mark_failed(id, "550 no such user", Some("ayse@example.org"))
        .await
        .expect("fail");
    let page = c.get("/outbox").await.text();
    assert!(
        page.contains("550 no such user") && page.contains("Noch einmal senden"),
        "{page}"
    );
    let p = c.submit(&format!("/outbox/{id}/retry"), &[]).await;
    assert_eq!(p.location.as_deref(), Some("/outbox?ok=retried"));
    let o = &test_support::outbox(&c.t.app).await[0];
    assert_eq!(o.state, "queued");
    assert_eq!(
        c.submit(&format!("/outbox/{id}/retry"), &[]).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_broadcast_is_previewed_with_its_count_then_sent() {
    let c = Client::logged_in("orga").await;
    c.register("miko-2027", "ayse@example.org", "Ayşe Yılmaz", 1)
        .await;
    c.register("miko-2027", "jan@example.org", "Jan Kowalski", 1)
        .await;
    let form = c.get("/conferences/miko-2027/broadcast").await;
    assert_eq!(form.status, StatusCode::OK);
    let fields = [
        ("subject", "Raumänderung {{ conference.title }}"),
        ("body", "Liebe/r {{ name }},\nwir sind im Raum 2."),
        ("status", "confirmed"),
    ];
    let mut preview_fields = fields.to_vec();
    preview_fields.push(("step", "preview"));
    let preview = c
        .submit("/conferences/miko-2027/broadcast", &preview_fields)
        .await;
    assert_eq!(preview.status, StatusCode::OK);
    let html = preview.text();
    assert!(html.contains("<strong>2</strong>"), "{html}");
    assert!(
        html.contains("r Ayşe Yılmaz,\nwir sind im Raum 2.")
            || html.contains("r Jan Kowalski,\nwir sind im Raum 2."),
        "{html}"
    );
    assert!(
        test_support::outbox_of_kind(&c.t.app, "broadcast")
            .await
            .is_empty()
    );
    let mut send_fields = fields.to_vec();
    send_fields.push(("step", "send"));
    let sent = c
        .submit("/conferences/miko-2027/broadcast", &send_fields)
        .await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.text());
    assert_eq!(
        test_support::outbox_of_kind(&c.t.app, "broadcast")
            .await
            .len(),
        2
    );
    // A placeholder that does not exist is named, nothing is queued.
    let bad = c
        .submit(
            "/conferences/miko-2027/broadcast",
            &[
                ("subject", "x"),
                ("body", "{{ nme }}"),
                ("status", "confirmed"),
                ("step", "preview"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn add_by_hand_checks_the_address_then_registers() {
    let c = Client::logged_in("orga").await;
    let form = c.get("/conferences/miko-2027/add").await;
    assert_eq!(form.status, StatusCode::OK);
    let bad = c
        .submit(
            "/conferences/miko-2027/add",
            &[("email", "kein at"), ("party_size", "1")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(
        bad.text().contains("keine gültige E-Mail-Adresse"),
        "{}",
        bad.text()
    );
    let ok = c
        .submit(
            "/conferences/miko-2027/add",
            &[
                ("email", "neu@example.org"),
                ("name", "Neue Person"),
                ("party_size", "2"),
                ("workshop", "w1"),
                ("language", "en"),
            ],
        )
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.text());
    let reg =
        c.t.app
            .store
            .registration_of("miko-2027", "neu@example.org")
            .await
            .expect("read")
            .expect("reg");
    assert_eq!(reg.party_size, 2);
    let trail = c.t.app.store.audit_trail(reg.id).await.expect("trail");
    assert_eq!(trail[0].by, "web:orga");
}

#[tokio::test]
async fn cookies_are_secure_under_an_https_public_url() {
    let mut c = Client::with_web(r#"public_url = "https://anmeldung.example.org/""#).await;
    let form = c.get("/login").await;
    assert!(
        form.set_cookies.iter().all(|c| c.contains("Secure")),
        "{:?}",
        form.set_cookies
    );
    let ok = c.login("orga", PASSWORD).await;
    let session = ok
        .set_cookies
        .iter()
        .find(|c| c.starts_with("rsvpd_session="))
        .expect("session cookie");
    assert!(
        session.contains("Secure") && session.contains("HttpOnly"),
        "{session}"
    );
}

#[tokio::test]
async fn logins_are_rate_limited_per_address() {
    let mut c = Client::new().await;
    // Different names from one address (oneshot has no peer: all the same).
    for i in 0..super::auth::MAX_FAILURES_PER_ADDRESS {
        let p = c.login(&format!("guess{i}"), "falsch").await;
        assert_eq!(p.status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        c.login("admin", PASSWORD).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn the_review_page_explains_in_the_readers_language() {
    let mut c = Client::logged_in("orga").await;
    let undecided = UNCLEAR.replace("unclear-1@", "undecided-1@").replace(
        "Hallo, ich habe eine Frage zum Programm. Wann gibt es Mittagessen?",
        "Hallo, vielleicht komme ich zur Migrationskonferenz, ich weiß es noch nicht genau.",
    );
    c.t.app
        .process(
            undecided.as_bytes(),
            "file:undecided",
            None,
            crate::storage::Fence::Unfenced,
        )
        .await
        .expect("processed");
    let items = c.t.app.store.review_items().await.expect("items");
    assert_eq!(items.len(), 1, "{items:?}");
    let (id, stored) = (items[0].id, items[0].reason.clone());
    assert!(
        stored.starts_with("would register only on a condition"),
        "{stored}"
    );
    for page in [
        c.get("/review").await.text(),
        c.get(&format!("/review/{id}")).await.text(),
    ] {
        assert!(
            page.contains("Möchte nur unter einer Bedingung kommen oder ist noch unentschlossen")
                && !page.contains("would register only"),
            "{page}"
        );
    }
    // The rules that fired, by their German names, with the sentence.
    let item = c.get(&format!("/review/{id}")).await.text();
    assert!(item.contains("Woran rsvpd das erkannt hat"), "{item}");
    assert!(item.contains("<strong>Unentschlossen</strong>"), "{item}");
    assert!(!item.contains("<strong>hedge</strong>"), "{item}");
    c.lang = "en-GB,en;q=0.9";
    let item = c.get(&format!("/review/{id}")).await.text();
    assert!(
        item.contains("would register only on a condition"),
        "{item}"
    );
    assert!(
        item.contains("What rsvpd went by") && item.contains("<strong>Undecided</strong>"),
        "{item}"
    );
}

#[tokio::test]
async fn the_attendee_page_says_what_became_of_each_mail_and_why() {
    let c = Client::logged_in("orga").await;
    let id = review_item(&c).await;
    let p = c
        .submit(
            &format!("/review/{id}/assign"),
            &[
                ("conference", "miko-2027"),
                ("name", "Ayşe Yılmaz"),
                ("party_size", "1"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.text());
    // A second mail from her, a registration the pipeline records.
    let again = UNCLEAR.replace("unclear-1@", "again-1@").replace(
        "Hallo, ich habe eine Frage zum Programm. Wann gibt es Mittagessen?",
        "Hallo, hiermit melde ich mich zur Migrationskonferenz an, mit 2 Personen.",
    );
    c.t.app
        .process(
            again.as_bytes(),
            "file:again",
            None,
            crate::storage::Fence::Unfenced,
        )
        .await
        .expect("processed");
    let page = c
        .get("/conferences/miko-2027/attendees/ayse%40example.org")
        .await
        .text();
    assert!(page.contains("(eingetragen)"), "{page}");
    assert!(page.contains("Woran rsvpd das erkannt hat"), "{page}");
    assert!(page.contains("<strong>Anmeldung</strong>"), "{page}");
}

#[tokio::test]
async fn expired_sessions_are_deleted_when_someone_logs_in() {
    let mut c = Client::new().await;
    let store = &c.t.app.store;
    let long_ago = chrono::Utc::now() - chrono::Duration::days(3);
    store
        .create_session(
            "old-hash",
            "orga",
            "old-csrf",
            long_ago,
            long_ago + super::auth::SESSION_IDLE,
        )
        .await
        .expect("an old session");
    assert_eq!(store.session_count().await.expect("count"), 1);
    let p = c.login("orga", PASSWORD).await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    // Only the new session is left.
    assert_eq!(c.t.app.store.session_count().await.expect("count"), 1);
    assert_eq!(
        c.t.app
            .store
            .delete_expired_sessions(chrono::Utc::now())
            .await
            .expect("delete"),
        0
    );
    assert_eq!(c.get("/").await.status, StatusCode::OK);
}
