//! Running service binaries (as the `postgres` user where needed) and the exit guard that cleans
//! up after the test process.

use std::path::Path;
use std::process::{Command, Stdio};

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc_geteuid() == 0 }
}

unsafe extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

/// A command that runs `program` as `user` when we are root, or as ourselves otherwise.
pub fn command_as(user: &str, program: &Path) -> Command {
    if is_root() {
        let mut cmd = Command::new("runuser");
        cmd.arg("-u").arg(user).arg("--").arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

/// Runs to completion; panics with the output on failure.
pub fn run(mut cmd: Command, what: &str) {
    let output = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: could not run {cmd:?}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Starts a detached shell that waits for this process to exit, then runs `cleanup`.
// The guard must outlive this process, so it is deliberately never waited for.
#[allow(clippy::zombie_processes)]
pub fn on_exit(cleanup: &str) {
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {cleanup}",
        pid = std::process::id()
    );
    Command::new("setsid")
        .arg("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting the cleanup guard (setsid, sh)");
}
