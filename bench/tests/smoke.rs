//! The benchmark runs end to end, at a low rate against standalone, so that
//! `just bench` does not rot. It checks that every accepted notification
//! was delivered and the figures were printed; how fast is for `just bench`.

use std::process::Command;

#[test]
fn the_benchmark_runs_and_prints_its_figures() {
    let output = Command::new(env!("CARGO_BIN_EXE_notif-bench"))
        .args(["standalone", "--clients", "20", "--rate", "200"])
        .args(["--duration-secs", "2", "--latency-clients", "10"])
        .args([
            "--latency-rate",
            "100",
            "--latency-secs",
            "2",
            "--idle",
            "50",
        ])
        .args([
            "--one-rate",
            "100",
            "--sse-clients",
            "20",
            "--sse-rate",
            "100",
        ])
        .args(["--silent-rate", "100"])
        .output()
        .expect("notif-bench runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    for figure in [
        "ceiling:",
        "one recipient:",
        "latency:",
        "silent clients:",
        "memory:",
    ] {
        assert!(stdout.contains(figure), "{figure} is printed: {stdout}");
    }
    assert!(
        stdout.contains("accepted 400 (200/s), refused 0; delivered")
            && stdout.contains("400 in all"),
        "the ceiling runs delivered all they published: {stdout}"
    );
}
