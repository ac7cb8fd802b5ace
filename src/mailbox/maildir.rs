//! The Maildir source: a local mailbox folder with `new/`, `cur/` and `tmp/`.
//!
//! For a daemon that runs on the mail server itself, and for the demo. Messages
//! in `new/` and `cur/` are waiting; a handled one is renamed into the Maildir++
//! subfolder of `processed_folder` or `review_folder` (`.rsvpd.processed/cur/`),
//! marked seen. A rename within one file system is atomic, so a message is always
//! in exactly one place. Files are deleted only on a person's request
//! (`erase`), and only the files of their own mail.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

use super::{Key, Pending};

pub struct Maildir {
    root: PathBuf,
    processed: PathBuf,
    review: PathBuf,
    max_size: u64,
}

/// "rsvpd/processed" → ".rsvpd.processed" (Maildir++).
fn subfolder(root: &Path, folder: &str) -> PathBuf {
    let name: Vec<&str> = folder.split('/').filter(|p| !p.is_empty()).collect();
    root.join(format!(".{}", name.join(".")))
}

/// The header of a message file: up to the first empty line, at most 256 KB.
fn read_header(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut head = Vec::new();
    std::fs::File::open(path)?
        .take(256 * 1024)
        .read_to_end(&mut head)?;
    let end = head
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4)
        .or_else(|| head.windows(2).position(|w| w == b"\n\n").map(|p| p + 2));
    if let Some(end) = end {
        head.truncate(end);
    }
    Ok(head)
}

/// The unique part of a Maildir file name (before the `:2,` info).
fn base_name(name: &str) -> &str {
    name.split(':').next().unwrap_or(name)
}

impl Maildir {
    pub fn new(
        root: PathBuf,
        processed_folder: &str,
        review_folder: &str,
        max_size: u64,
    ) -> Maildir {
        Maildir {
            processed: subfolder(&root, processed_folder),
            review: subfolder(&root, review_folder),
            root,
            max_size,
        }
    }

    fn ensure_root(&self) -> anyhow::Result<()> {
        if !self.root.join("new").is_dir() || !self.root.join("cur").is_dir() {
            bail!(
                "{} is not a Maildir (it needs the folders new/ and cur/); check [mailbox] url",
                self.root.display()
            );
        }
        Ok(())
    }

    pub fn check(&self) -> anyhow::Result<String> {
        self.ensure_root()?;
        let n = self.waiting()?.len();
        Ok(format!(
            "Maildir {} holds {n} new message(s)",
            self.root.display()
        ))
    }

    fn waiting(&self) -> anyhow::Result<Vec<PathBuf>> {
        let mut files = Vec::new();
        for sub in ["new", "cur"] {
            let dir = self.root.join(sub);
            for entry in
                std::fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))?
            {
                let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if name.starts_with('.') || !entry.file_type().map(|t| t.is_file()).unwrap_or(false)
                {
                    continue;
                }
                files.push(entry.path());
            }
        }
        // Maildir names start with the delivery time: sorting by name is arrival order.
        files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
        Ok(files)
    }

    pub fn next_message(&mut self) -> anyhow::Result<Option<Pending>> {
        self.ensure_root()?;
        for path in self.waiting()? {
            let read = std::fs::metadata(&path).and_then(|meta| {
                if meta.len() > self.max_size {
                    read_header(&path).map(|h| (h, Some(meta.len())))
                } else {
                    std::fs::read(&path).map(|raw| (raw, None))
                }
            });
            let (raw, oversize) = match read {
                Ok(r) => r,
                // Taken by someone else meanwhile.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
            };
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            return Ok(Some(Pending {
                location: format!("maildir:{}", base_name(&name)),
                raw,
                oversize,
                key: Key::File(path),
            }));
        }
        Ok(None)
    }

    pub fn file_away(&mut self, path: &Path, review: bool) -> anyhow::Result<()> {
        let folder = if review {
            &self.review
        } else {
            &self.processed
        };
        for sub in ["cur", "new", "tmp"] {
            let d = folder.join(sub);
            std::fs::create_dir_all(&d)
                .with_context(|| format!("cannot create {}", d.display()))?;
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let target = folder.join("cur").join(format!("{}:2,S", base_name(&name)));
        std::fs::rename(path, &target)
            .with_context(|| format!("cannot move {} to {}", path.display(), target.display()))
    }
}

impl Maildir {
    /// Delete the copies of the message that arrived as `name` (the NAME of a
    /// `maildir:NAME` location) from the processed and review folders;
    /// returns "FOLDER: FILE" for each file deleted.
    pub fn erase(&self, name: &str) -> anyhow::Result<Vec<String>> {
        let mut deleted = Vec::new();
        for folder in [&self.processed, &self.review] {
            let label = folder
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            for sub in ["cur", "new"] {
                let dir = folder.join(sub);
                let entries = match std::fs::read_dir(&dir) {
                    Ok(e) => e,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => {
                        return Err(e).with_context(|| format!("cannot read {}", dir.display()));
                    }
                };
                for entry in entries {
                    let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
                    let file = entry.file_name().to_string_lossy().into_owned();
                    if base_name(&file) != name {
                        continue;
                    }
                    std::fs::remove_file(entry.path())
                        .with_context(|| format!("cannot delete {}", entry.path().display()))?;
                    deleted.push(format!("{label}: {file}"));
                }
            }
        }
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            subfolder(Path::new("/m"), "rsvpd/processed"),
            Path::new("/m/.rsvpd.processed")
        );
        assert_eq!(
            base_name("1700000000.M1P2.host:2,S"),
            "1700000000.M1P2.host"
        );
        assert_eq!(base_name("plain"), "plain");
    }

    #[test]
    fn moves_handled_mail() {
        let dir = tempfile::tempdir().unwrap();
        for d in ["new", "cur", "tmp"] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        std::fs::write(dir.path().join("new/1.a.host"), b"Subject: x\r\n\r\nhi").unwrap();
        let mut m = Maildir::new(
            dir.path().to_path_buf(),
            "rsvpd/processed",
            "rsvpd/review",
            1 << 20,
        );
        let p = m.next_message().unwrap().expect("one message");
        assert_eq!(p.location, "maildir:1.a.host");
        let Key::File(path) = p.key else { panic!() };
        m.file_away(&path, true).unwrap();
        assert!(dir.path().join(".rsvpd.review/cur/1.a.host:2,S").exists());
        assert!(m.next_message().unwrap().is_none());
        std::fs::write(dir.path().join(".rsvpd.review/cur/1.a.hostx:2,S"), b"other").unwrap();
        assert_eq!(
            m.erase("1.a.host").unwrap(),
            vec![".rsvpd.review: 1.a.host:2,S".to_string()]
        );
        assert!(!dir.path().join(".rsvpd.review/cur/1.a.host:2,S").exists());
        assert!(
            dir.path().join(".rsvpd.review/cur/1.a.hostx:2,S").exists(),
            "only that message"
        );
    }
}
