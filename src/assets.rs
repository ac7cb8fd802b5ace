//! Files made from the command-line definition for the Debian package: the
//! man pages (clap_mangen) and the shell completions (clap_complete), written
//! by the hidden `rsvpd generate-assets DIR` that `scripts/package` runs, so
//! they always match the binary they ship with.

use std::path::Path;

use anyhow::Context as _;
use clap_complete::Shell;

/// Write `rsvpd.1`, a page `rsvpd-COMMAND.1` per command, and the bash, zsh
/// and fish completions of `cmd` into `dir`.
pub fn write(mut cmd: clap::Command, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let version = cmd.get_version().unwrap_or_default().to_string();
    let mut pages = vec![("rsvpd".to_string(), cmd.clone())];
    // One page per command, as git and cargo do: rsvpd-attendees(1), ...
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("rsvpd-{}", sub.get_name());
        let page = sub
            .clone()
            .name(name.clone())
            .bin_name(format!("rsvpd {}", sub.get_name()))
            .version(version.clone());
        pages.push((name, page));
    }
    for (name, page) in pages {
        let mut roff = Vec::new();
        clap_mangen::Man::new(page)
            .render(&mut roff)
            .with_context(|| format!("rendering the man page {name}"))?;
        let path = dir.join(format!("{name}.1"));
        std::fs::write(&path, roff).with_context(|| format!("cannot write {}", path.display()))?;
    }
    for (shell, name) in [
        (Shell::Bash, "rsvpd.bash"),
        (Shell::Zsh, "_rsvpd"),
        (Shell::Fish, "rsvpd.fish"),
    ] {
        let path = dir.join(name);
        let mut file = std::fs::File::create(&path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        clap_complete::generate(shell, &mut cmd, "rsvpd", &mut file);
    }
    Ok(())
}
