//! Headless Chromium behind its WebDriver (Debian's `chromium` and
//! `chromium-driver`), started per test on a free loopback port with a fresh
//! profile, stopped with the handle (the browser is in chromedriver's process
//! group, so it goes with it).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

use super::process::ServerProcess;
use super::{HOST, find_binary, free_port, wait_until};

pub struct Chromium {
    process: ServerProcess,
    port: u16,
    dir: TempDir,
}

impl Chromium {
    pub fn start() -> Chromium {
        let driver = find_binary("chromedriver", "chromium-driver");
        let dir = tempfile::Builder::new()
            .prefix("rsvpd-chromium.")
            .tempdir()
            .expect("temp dir");
        let port = free_port();
        let mut command = Command::new(driver);
        command
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .env("HOME", dir.path());
        let process = ServerProcess::spawn(
            "chromedriver",
            command,
            &dir.path().join("chromedriver.log"),
            dir.path(),
        );
        let browser = Chromium { process, port, dir };
        wait_until(
            Duration::from_secs(20),
            "chromedriver to listen",
            || std::net::TcpStream::connect((HOST, port)).ok(),
            || browser.process.output(),
        );
        browser
    }

    pub fn webdriver_url(&self) -> String {
        format!("http://{HOST}:{}", self.port)
    }

    /// The capabilities of a headless Chromium that needs no network, in a
    /// fresh profile (the closed network otherwise makes it hang on lookups).
    pub fn capabilities(&self) -> serde_json::Map<String, serde_json::Value> {
        let chromium = find_binary("chromium", "chromium");
        let profile: PathBuf = self.dir.path().join("profile");
        let caps = serde_json::json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--no-first-run", "--no-default-browser-check", "--lang=de-DE",
                    "--window-size=1280,1400",
                    format!("--user-data-dir={}", profile.display()),
                ],
                "prefs": { "intl.accept_languages": "de-DE,de" },
            }
        });
        caps.as_object().cloned().unwrap_or_default()
    }

    pub fn log(&self) -> String {
        self.process.output()
    }
}
