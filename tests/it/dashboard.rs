//! The organizers' dashboard, driven like a person would: the real daemon with
//! `[web]` against a private Dovecot and smtp-sink, and headless Chromium
//! through its WebDriver. Log in (a wrong password first), see the list,
//! search, assign a review item with a corrected party size and see the
//! confirmation leave, download the CSV and the XLSX, print the sign-in sheet
//! to PDF and read it with pdftotext; a POST without its CSRF token and
//! another organizer's conference are refused.
//!
//! Screenshots of every page are kept in `target/web-screenshots/` (not
//! committed) for a person to look at.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};

use crate::app::{
    Backend, CONFERENCES, MAILBOX, Rsvpd, mail, on_both_backends, registration, servers,
    wait_answered,
};
use crate::support::chromium::Chromium;
use crate::support::{find_binary, free_port, wait_until};

const PASSWORD: &str = "Sommerfest 2099!";

/// Where the screenshots, the PDF and the downloads of a run are kept:
/// `target/web-screenshots/sqlite/` and `…/postgres/`.
fn artefacts(backend: Backend) -> PathBuf {
    let name = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target/web-screenshots")
        .join(name);
    std::fs::create_dir_all(&dir).expect("artefact dir");
    dir
}

/// `rsvpd hash-password` with the password on stdin.
fn hash_password(password: &str) -> String {
    let mut child = Command::new(crate::app::binary())
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("rsvpd hash-password");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{password}\n").as_bytes())
        .expect("write password");
    let out = child.wait_with_output().expect("hash-password output");
    assert!(out.status.success());
    let hash = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    hash
}

fn web_config(port: u16, hash: &str) -> String {
    format!(
        r#"{CONFERENCES}
[web]
listen = "127.0.0.1:{port}"

[[web.user]]
name = "orga"
password_hash = "{hash}"
conferences = ["miko-2027"]

[[web.user]]
name = "hainholz"
password_hash = "{hash}"
conferences = ["fishbowl-hainholz"]
"#
    )
}

/// A page as the browser shows it, plus a screenshot of it.
struct Browser {
    client: Client,
    base: String,
    artefacts: PathBuf,
}

impl Browser {
    async fn goto(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap_or_else(|e| panic!("open {path}: {e}"));
    }

    async fn text(&self) -> String {
        self.client
            .find(Locator::Css("body"))
            .await
            .expect("body")
            .text()
            .await
            .expect("text")
    }

    async fn path(&self) -> String {
        let url = self.client.current_url().await.expect("url");
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        }
    }

    async fn shot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("screenshot");
        std::fs::write(self.artefacts.join(format!("{name}.png")), png).expect("write screenshot");
    }

    async fn fill(&self, css: &str, value: &str) {
        let e = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"));
        e.clear().await.expect("clear");
        e.send_keys(value).await.expect("type");
    }

    async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .click()
            .await
            .expect("click");
    }

    /// Wait (at most 30 s: CI machines are shared) until the browser is at a
    /// path starting with `prefix`.
    async fn wait_at(&self, prefix: &str) {
        for _ in 0..300 {
            if self.path().await.starts_with(prefix) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the browser is at {}, not {prefix}", self.path().await);
    }

    /// `fetch` in the page (with its cookies): (status, content type, bytes).
    async fn fetch(&self, path: &str, method: &str, body: &str) -> (u16, String, Vec<u8>) {
        let script = r#"
            const [url, method, body, done] = arguments;
            const init = { method, credentials: 'same-origin', redirect: 'manual' };
            if (method === 'POST') {
              init.headers = { 'content-type': 'application/x-www-form-urlencoded' };
              init.body = body;
            }
            fetch(url, init)
              .then(async r => done({ status: r.status, type: r.headers.get('content-type') || '',
                                      bytes: Array.from(new Uint8Array(await r.arrayBuffer())) }))
              .catch(e => done({ status: 0, type: String(e), bytes: [] }));
        "#;
        let v = self
            .client
            .execute_async(script, vec![path.into(), method.into(), body.into()])
            .await
            .expect("fetch");
        let bytes = v["bytes"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|b| b.as_u64())
                    .map(|b| b as u8)
                    .collect()
            })
            .unwrap_or_default();
        (
            v["status"].as_u64().unwrap_or(0) as u16,
            v["type"].as_str().unwrap_or("").to_string(),
            bytes,
        )
    }
}

fn pdftotext(pdf: &std::path::Path) -> String {
    let out = Command::new(find_binary("pdftotext", "poppler-utils"))
        .arg("-layout")
        .arg(pdf)
        .arg("-")
        .output()
        .expect("pdftotext");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn pdf_to_png(pdf: &std::path::Path, out: &std::path::Path) {
    let status = Command::new(find_binary("pdftoppm", "poppler-utils"))
        .args(["-png", "-r", "60"])
        .arg(pdf)
        .arg(out)
        .status()
        .expect("pdftoppm");
    assert!(status.success());
}

fn xlsx_text(bytes: &[u8]) -> String {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("the XLSX is a zip");
    let mut all = String::new();
    for name in ["xl/sharedStrings.xml", "xl/worksheets/sheet1.xml"] {
        let mut f = zip.by_name(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        std::io::Read::read_to_string(&mut f, &mut all).expect("read");
    }
    all
}

on_both_backends!(organizers_use_the_dashboard_in_chromium);

/// The whole dashboard on each storage backend.
fn organizers_use_the_dashboard_in_chromium(backend: Backend) {
    let (dovecot, sink) = servers();
    let port = free_port();
    let hash = hash_password(PASSWORD);
    let app = Rsvpd::with_config_on(backend, &dovecot, &sink, "", &web_config(port, &hash));
    for (i, (name, addr)) in [
        ("Zeynep Kaya", "zeynep@example.org"),
        ("Şahin Demir", "sahin@example.org"),
        ("Özlem Arslan", "oezlem@example.org"),
        ("Anna Schmidt", "anna@example.org"),
    ]
    .iter()
    .enumerate()
    {
        dovecot.deliver(
            MAILBOX,
            &registration(name, addr, &format!("reg{i}@example.org")),
        );
    }
    // Another organizer's conference.
    dovecot.deliver(
        MAILBOX,
        &mail(
            "Geheim Person",
            "geheim@example.org",
            MAILBOX,
            "Anmeldung Fishbowl",
            "fish@example.org",
            "Hallo,\r\nich melde mich zur Fishbowl-Diskussion Hainholz an.\r\n\r\nGeheim Person",
        ),
    );
    // A mail rsvpd cannot place: it goes to review.
    dovecot.deliver(
        MAILBOX,
        &mail(
            "Ayşe Yılmaz",
            "ayse@example.org",
            MAILBOX,
            "Frage",
            "question@example.org",
            "Hallo,\r\nwir würden gerne kommen. Geht das noch?\r\n\r\nViele Grüße\r\nAyşe",
        ),
    );
    let mut daemon = app.spawn();
    wait_until(
        Duration::from_secs(60),
        "the six mails to be handled",
        || {
            (app.attendees("miko-2027", false).len() == 4
                && app.attendees("fishbowl-hainholz", false).len() == 1
                && app.review().len() == 1)
                .then_some(())
        },
        || daemon.log(),
    );
    let review = app.review();
    assert_eq!(review.len(), 1, "{review:?}\n{:?}", app.inbound());
    let review_id = review[0]["id"].as_i64().expect("review id");
    let browser_process = Chromium::start();

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(browser_process.capabilities())
            .connect(&browser_process.webdriver_url())
            .await
            .unwrap_or_else(|e| panic!("chromium: {e}\n{}", browser_process.log()));
        let b = Browser {
            client,
            base: format!("http://127.0.0.1:{port}"),
            artefacts: artefacts(backend),
        };

        // Not logged in: every page sends you to the login.
        b.goto("/conferences/miko-2027").await;
        b.wait_at("/login").await;
        b.shot("01-login").await;

        // A wrong password is refused.
        b.fill("#username", "orga").await;
        b.fill("#password", "sommerfest 2099!").await;
        b.click("button[type=submit]").await;
        b.wait_at("/login").await;
        assert!(
            b.text().await.contains("Passwort stimmt nicht"),
            "{}",
            b.text().await
        );
        b.shot("02-login-wrong-password").await;

        // The right one logs in.
        b.fill("#username", "orga").await;
        b.fill("#password", PASSWORD).await;
        b.click("button[type=submit]").await;
        b.wait_at("/").await;
        let overview = b.text().await;
        assert!(
            overview.contains("Vierte Migrationskonferenz"),
            "{overview}"
        );
        assert!(!overview.contains("Fishbowl"), "{overview}");
        assert!(
            overview.contains("1 E-Mails warten auf Ihre Prüfung"),
            "{overview}"
        );
        b.shot("03-overview").await;

        // The list, then a search.
        b.click("a.button.primary[href='/conferences/miko-2027']")
            .await;
        b.wait_at("/conferences/miko-2027").await;
        let list = b.text().await;
        for name in ["Zeynep Kaya", "Şahin Demir", "Özlem Arslan", "Anna Schmidt"] {
            assert!(list.contains(name), "{name} missing: {list}");
        }
        b.shot("04-list").await;
        b.fill("#q", "sahin").await;
        b.click("form.search button[type=submit]").await;
        b.wait_at("/conferences/miko-2027?q=sahin").await;
        let found = b.text().await;
        assert!(
            found.contains("Şahin Demir") && !found.contains("Zeynep Kaya"),
            "{found}"
        );
        b.shot("05-search").await;
        let (status, _, page) = b
            .fetch("/conferences/miko-2027?status=waitlisted", "GET", "")
            .await;
        assert_eq!(status, 200);
        let page = String::from_utf8_lossy(&page).into_owned();
        assert!(page.contains("Keine Anmeldung gefunden"), "{page}");
        b.click("table.list a").await;
        b.wait_at("/conferences/miko-2027/attendees/").await;
        let person = b.text().await;
        assert!(
            person.contains("sahin@example.org") && person.contains("Verlauf"),
            "{person}"
        );
        b.shot("06-attendee").await;

        // The review queue: correct the party size and assign.
        b.goto("/review").await;
        b.shot("07-review").await;
        b.click("a.card.item").await;
        b.wait_at(&format!("/review/{review_id}")).await;
        let item = b.text().await;
        assert!(item.contains("Geht das noch?"), "{item}");
        b.shot("08-review-item").await;
        b.fill("#party_size", "3").await;
        b.fill("#organization", "Frauentreff Linden").await;
        b.click("#assign button[type=submit]").await;
        b.wait_at("/conferences/miko-2027/attendees/ayse@example.org?ok=assigned")
            .await;
        let assigned = b.text().await;
        assert!(
            assigned.contains("zugeordnet") && assigned.contains("Frauentreff Linden"),
            "{assigned}"
        );
        b.shot("09-assigned").await;
        wait_answered(&sink, "ayse@example.org", Duration::from_secs(30), || {
            daemon.log()
        });
        let confirmation = sink
            .messages()
            .into_iter()
            .find(|m| m.rcpt_to == ["ayse@example.org"])
            .expect("confirmation");
        // The confirmation says the corrected party size.
        assert!(
            confirmation.text().contains("Personen: 3"),
            "{}",
            confirmation.text()
        );
        assert!(
            confirmation
                .header("In-Reply-To")
                .unwrap_or_default()
                .contains("question@example.org"),
            "the confirmation answers the attendee's mail"
        );
        let json = app.attendees("miko-2027", false);
        let ayse = json
            .iter()
            .find(|a| a["email"] == "ayse@example.org")
            .expect("ayse");
        assert_eq!(ayse["party_size"], 3);

        // Downloads, as the browser gets them.
        let (status, kind, csv) = b
            .fetch("/conferences/miko-2027/attendees.csv?sep=%3B", "GET", "")
            .await;
        assert_eq!(status, 200);
        assert!(kind.starts_with("text/csv"), "{kind}");
        std::fs::write(b.artefacts.join("attendees.csv"), &csv).expect("write csv");
        assert!(csv.starts_with("\u{feff}".as_bytes()), "the CSV has no BOM");
        let csv = String::from_utf8(csv).expect("UTF-8");
        assert!(csv.contains("Frauentreff Linden;3;"), "{csv}");
        assert!(csv.contains("Şahin Demir"), "{csv}");
        let (status, _, xlsx) = b
            .fetch("/conferences/miko-2027/attendees.xlsx", "GET", "")
            .await;
        assert_eq!(status, 200);
        std::fs::write(b.artefacts.join("attendees.xlsx"), &xlsx).expect("write xlsx");
        let sheet = xlsx_text(&xlsx);
        for word in [
            "Name",
            "Organisation",
            "Status",
            "Özlem Arslan",
            "Frauentreff Linden",
            "bestätigt",
        ] {
            assert!(sheet.contains(word), "{word} missing in the XLSX");
        }

        // The sign-in sheet, printed to PDF by Chromium.
        b.goto("/conferences/miko-2027/sign-in").await;
        b.shot("10-sign-in").await;
        let config = fantoccini::wd::PrintConfiguration::builder()
            .size(fantoccini::wd::PrintSize::A4)
            .shrink_to_fit(false)
            .background(true)
            .build()
            .expect("print config");
        let pdf = b.client.print(config).await.expect("print to PDF");
        let pdf_path = b.artefacts.join("sign-in.pdf");
        std::fs::write(&pdf_path, &pdf).expect("write pdf");
        pdf_to_png(&pdf_path, &b.artefacts.join("11-sign-in-printed"));
        let text = pdftotext(&pdf_path);
        assert!(
            text.contains("Unterschriftenliste") && text.contains("Unterschrift"),
            "{text}"
        );
        assert!(text.contains("Mosaiksaal"), "{text}");
        let pos = |n: &str| {
            text.find(n)
                .unwrap_or_else(|| panic!("{n} not in the PDF:\n{text}"))
        };
        assert!(pos("Anna Schmidt") < pos("Özlem Arslan"), "{text}");
        assert!(pos("Özlem Arslan") < pos("Şahin Demir"), "{text}");
        assert!(pos("Şahin Demir") < pos("Zeynep Kaya"), "{text}");
        assert!(!text.contains("Geheim Person"), "{text}");
        // One sheet per workshop session: nobody chose one here, so only empty rows.
        b.goto("/conferences/miko-2027/sign-in?workshop=w2").await;
        let w2 = b.text().await;
        assert!(
            w2.contains("Antidiskriminierung") && !w2.contains("Zeynep"),
            "{w2}"
        );
        b.shot("10b-sign-in-workshop").await;

        // A POST without the form's token, or with a made-up one, is refused.
        b.goto("/").await;
        let (status, _, _) = b.fetch("/logout", "POST", "").await;
        assert_eq!(status, 403);
        let (status, _, _) = b
            .fetch(
                &format!("/review/{review_id}/dismiss"),
                "POST",
                "csrf=made-up",
            )
            .await;
        assert_eq!(status, 403);
        // Another organizer's conference does not exist for orga.
        for path in [
            "/conferences/fishbowl-hainholz",
            "/conferences/fishbowl-hainholz/attendees.csv",
            "/conferences/fishbowl-hainholz/attendees/geheim@example.org",
            "/conferences/fishbowl-hainholz/sign-in",
        ] {
            let (status, _, body) = b.fetch(path, "GET", "").await;
            assert_eq!(status, 404, "{path}");
            assert!(!String::from_utf8_lossy(&body).contains("geheim"), "{path}");
        }
        b.goto("/conferences/fishbowl-hainholz").await;
        assert!(b.text().await.contains("gibt es nicht"));
        b.shot("12-other-conference").await;

        // The other pages, for a person to look at.
        b.goto("/outbox").await;
        b.shot("13-outbox").await;
        b.goto("/conferences/miko-2027/broadcast").await;
        b.shot("14-broadcast").await;
        b.fill("#subject", "Raumänderung").await;
        b.fill("#body", "Liebe/r {{ name }},\nwir treffen uns im Raum 2.")
            .await;
        b.click("form.form button[type=submit]").await;
        b.wait_at("/conferences/miko-2027/broadcast").await;
        let preview = b.text().await;
        assert!(preview.contains("5 E-Mails werden verschickt"), "{preview}");
        b.shot("15-broadcast-preview").await;
        b.goto("/conferences/miko-2027/add").await;
        b.shot("16-add").await;
        // On a phone.
        b.client.set_window_size(390, 844).await.expect("resize");
        b.goto("/conferences/miko-2027").await;
        b.shot("17-list-phone").await;
        b.goto("/").await;
        b.shot("18-overview-phone").await;

        // Logging out ends the session.
        b.click("header.top form.logout button").await;
        b.wait_at("/login").await;
        b.goto("/").await;
        b.wait_at("/login").await;
        b.client.close().await.expect("close the browser");
    });
    daemon.stop_cleanly(libc::SIGTERM);
}
