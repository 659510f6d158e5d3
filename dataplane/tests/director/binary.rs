//! `notifd director` as a process: its flags and their errors.

use std::process::Command;

const NOTIFD: &str = env!("CARGO_BIN_EXE_notifd");

#[test]
fn help_documents_the_flags_and_a_missing_one_is_named() {
    let help = Command::new(NOTIFD)
        .args(["director", "--help"])
        .output()
        .expect("notifd runs");
    let help = String::from_utf8_lossy(&help.stdout);
    for expected in [
        "--postgres-url",
        "NOTIF_POSTGRES_URL",
        "--kafka-group",
        "[default: notif-director]",
        "--max-held",
    ] {
        assert!(help.contains(expected), "--help shows {expected}:\n{help}");
    }

    let output = Command::new(NOTIFD)
        .args(["director", "--kafka-bootstrap-servers", "127.0.0.1:1"])
        .env_remove("NOTIF_POSTGRES_URL")
        .output()
        .expect("notifd runs");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--postgres-url"));
}
