//! The Pulumi program in deploy/pulumi, which manages the servers the
//! service runs on: its unit tests with Pulumi's mocks, and the Docker
//! target for real on the machine's Docker engine. The Kubernetes target
//! runs for real on the node (tests/node).

mod exclusive;

use std::process::Command;

use testenv::pulumi::{PROGRAM, python};

/// The program's pytest suite (tests/test_mocks.py): each target's
/// resources and inputs, secrets kept secret, and bad configuration refused
/// by name, with the engine mocked.
#[test]
fn the_programs_unit_tests_pass_with_pulumis_mocks() {
    let python = python();
    let output = Command::new(&python)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"])
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .current_dir(PROGRAM)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    let report = String::from_utf8_lossy(&output.stdout);
    println!("{report}");
    assert!(
        output.status.success(),
        "the program's unit tests failed:\n{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(report.contains(" passed"), "pytest ran tests: {report}");
}
