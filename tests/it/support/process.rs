//! A child server process that cannot outlive its test.
//!
//! [`ServerProcess::spawn`] starts the server in a new process group with its
//! stdout and stderr in a file, and puts a watchdog (`sh`, blocked reading a
//! pipe from us) into that same group. `stop` sends SIGTERM, waits up to 10 s,
//! then SIGKILLs the group; `kill` — what `Drop` does, so it also runs during
//! a panic's unwinding — SIGKILLs the group at once. Both reap everything
//! and return only when no process of the group is left. If the test process
//! dies without unwinding (SIGKILL, abort, Ctrl-C — the group is not the
//! terminal's, so Ctrl-C reaches neither server nor watchdog) the kernel
//! closes the pipe, the watchdog's `read` returns, and it deletes the
//! server's temp dir and SIGKILLs the group.

use std::fs::File;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The watchdog: waits for a line on stdin; "stop" means we stopped the
/// server ourselves; anything else (EOF: the test process is gone) also
/// removes the scratch dir `$1`. Then it SIGKILLs its group, itself included.
const WATCHDOG: &str = r#"read reason
if [ "$reason" != stop ] && [ -n "$1" ] && [ -d "$1" ]; then rm -rf -- "$1"; fi
kill -s KILL 0"#;

/// How long a server gets to exit after SIGTERM before the group is killed.
const TERM_GRACE: Duration = Duration::from_secs(10);

/// A running (or exited, not yet stopped) server process.
pub struct ServerProcess {
    name: String,
    child: Child,
    watchdog: Option<(Child, ChildStdin)>,
    output_path: PathBuf,
    stopped: bool,
}

impl ServerProcess {
    /// Spawns `command` as `name` (used in messages), its stdout and stderr
    /// appended to `output_path`. Panics if it cannot be spawned.
    /// If the test process dies without stopping it, the watchdog also
    /// deletes `scratch_dir` (the server's temp dir, which `Drop` of a
    /// `TempDir` would have removed).
    pub fn spawn(
        name: &str,
        mut command: Command,
        output_path: &Path,
        scratch_dir: &Path,
    ) -> ServerProcess {
        let output = File::options()
            .create(true)
            .append(true)
            .open(output_path)
            .unwrap_or_else(|e| panic!("{name}: cannot open {}: {e}", output_path.display()));
        let stderr = output
            .try_clone()
            .unwrap_or_else(|e| panic!("{name}: cannot duplicate output file: {e}"));
        command
            .stdin(Stdio::null())
            .stdout(output)
            .stderr(stderr)
            .process_group(0);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("{name}: cannot spawn {command:?}: {e}"));
        let mut process = ServerProcess {
            name: name.to_string(),
            child,
            watchdog: None,
            output_path: output_path.to_path_buf(),
            stopped: false,
        };
        // From here on `process` is dropped (and the server stopped) if we panic.
        let group = process.child.id();
        let mut watchdog = Command::new("sh")
            .arg("-c")
            .arg(WATCHDOG)
            .arg("rsvpd-test-watchdog")
            .arg(scratch_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(group as i32)
            .spawn()
            .unwrap_or_else(|e| panic!("{name}: cannot spawn its watchdog `sh`: {e}"));
        let pipe = watchdog
            .stdin
            .take()
            .unwrap_or_else(|| panic!("{name}: watchdog has no stdin pipe"));
        process.watchdog = Some((watchdog, pipe));
        process
    }

    /// The server's process id (also its process group id).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Some(status)` once the server has exited.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// What the server printed on stdout and stderr so far.
    pub fn output(&self) -> String {
        std::fs::read(&self.output_path)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_else(|e| format!("(cannot read {}: {e})", self.output_path.display()))
    }

    /// Stops the server gracefully: SIGTERM, up to 10 s to exit, then SIGKILL
    /// for everything left in its process group; reaps them all. Idempotent
    /// and never panics.
    pub fn stop(&mut self) {
        self.finish(true);
    }

    /// Kills the server and everything in its process group at once with
    /// SIGKILL and reaps them (what `Drop` does: the data is thrown away).
    /// Idempotent and never panics.
    pub fn kill(&mut self) {
        self.finish(false);
    }

    fn finish(&mut self, graceful: bool) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        let pid = self.child.id() as i32;
        if graceful && self.exit_status().is_none() {
            // SAFETY: kill(2) with a pid we spawned and have not reaped yet.
            unsafe { libc::kill(pid, libc::SIGTERM) };
            let deadline = Instant::now() + TERM_GRACE;
            while self.exit_status().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if self.exit_status().is_none() {
                eprintln!(
                    "{}: still running {TERM_GRACE:?} after SIGTERM; killing its group",
                    self.name
                );
            }
        }
        if self.exit_status().is_none() {
            // SAFETY: the group exists: its leader is not reaped yet.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
            if let Err(e) = self.child.wait() {
                eprintln!("{}: waiting for it failed: {e}", self.name);
            }
        }
        // Closing the pipe makes the watchdog SIGKILL whatever is left in the
        // group (workers of the server), then itself.
        if let Some((mut watchdog, mut pipe)) = self.watchdog.take() {
            let _ = pipe.write_all(b"stop\n");
            drop(pipe);
            if let Err(e) = watchdog.wait() {
                eprintln!("{}: waiting for its watchdog failed: {e}", self.name);
            }
        }
        // SIGKILL is delivered asynchronously: wait until the group is gone.
        let deadline = Instant::now() + TERM_GRACE;
        while !group_members(pid as u32).is_empty() {
            if Instant::now() >= deadline {
                eprintln!(
                    "{}: processes {:?} of its group survive SIGKILL",
                    self.name,
                    group_members(pid as u32)
                );
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Ids of the live (non-zombie) processes in process group `pgid`, read from
/// `/proc/*/stat`, to check that nothing of a stopped server is left.
pub fn group_members(pgid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            // "pid (comm) state ppid pgrp ..."; comm may contain spaces.
            let after_comm = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
            let mut fields = after_comm.split_whitespace();
            let state = fields.next();
            let group = fields.nth(1);
            // A zombie has released everything; its new parent reaps it.
            state != Some("Z") && group == Some(pgid.to_string().as_str())
        })
        .collect()
}

/// A helper process a test starts for a moment (not a server): killed and
/// reaped when dropped, so a failing test does not leave it running.
pub struct KillOnDrop(pub std::process::Child);

impl std::ops::Deref for KillOnDrop {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for KillOnDrop {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}
