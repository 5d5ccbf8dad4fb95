//! The README's examples work as written: the curl walkthrough, run twice against a real
//! server (the second run logs in instead of registering, and writes no file anywhere).

use std::path::Path;
use std::process::Command;

use banter_tests::{TestApp, TestBackend};

/// The shell block under `heading`, without its first line when that starts the server.
fn shell_block(readme: &str, heading: &str) -> String {
    let section = readme
        .split_once(heading)
        .unwrap_or_else(|| panic!("README has no {heading:?}"))
        .1;
    let block = section
        .split_once("```sh\n")
        .expect("a shell block")
        .1
        .split_once("\n```")
        .expect("a closed shell block")
        .0;
    block
        .lines()
        .filter(|l| !l.starts_with("cargo run"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_curl_walkthrough_runs_twice() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .expect("README.md");
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    let host = app.address.trim_start_matches("http://").to_owned();
    let script = shell_block(&readme, "## Try it with curl").replace("localhost:4000", &host);
    assert!(script.contains("curl"), "{script}");
    assert!(
        !script.contains("/tmp/"),
        "the walkthrough writes no fixed file:\n{script}"
    );
    let run = |script: String| {
        tokio::task::spawn_blocking(move || {
            Command::new("bash")
                .args(["-e", "-o", "pipefail", "-c", &script])
                .output()
                .expect("bash and curl are required: apt-get install curl (./scripts/test does)")
        })
    };
    for (round, seq) in [(1, 1), (2, 2)] {
        let out = run(script.clone()).await.unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "run {round} failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains(&format!("\"seq\":{seq}")) && stdout.contains("first!"),
            "run {round} posted comment {seq}:\n{stdout}"
        );
    }
}
