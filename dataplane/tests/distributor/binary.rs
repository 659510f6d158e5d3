//! `notifd distributor` as a process: where its forward port listens, and
//! that it does not listen beyond this machine without the shared secret.

const NOTIFD: &str = env!("CARGO_BIN_EXE_notifd");

fn distributor(args: &[&str]) -> std::process::Command {
    let mut command = testenv::notifd::bare_command(NOTIFD.as_ref(), "distributor");
    command
        .args(["--jwt-secret", "a-secret-for-this-test-only"])
        .args(args);
    command
}

#[test]
fn the_forward_port_listens_on_loopback_unless_told_otherwise() {
    let output = distributor(&["--help"]).output().expect("notifd runs");
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(help.contains("[default: 127.0.0.1:8082]"), "{help}");
}

#[test]
fn a_forward_port_beyond_loopback_without_the_secret_is_refused_at_start() {
    for address in ["0.0.0.0:0", "[::]:0"] {
        let output = distributor(&[
            "--forward-addr",
            address,
            "--postgres-url",
            "postgres://127.0.0.1:1/none",
            "--redis-url",
            "redis://127.0.0.1:1",
        ])
        .output()
        .expect("notifd runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{address}: refused");
        assert!(
            stderr.contains("--forward-secret") && stderr.contains("beyond this machine"),
            "{address}: the error names the flag and why: {stderr}"
        );
    }
}
