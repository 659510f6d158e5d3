//! Each role refuses a flag that makes no sense at once, naming it, before
//! it opens, binds or connects to anything: here every server it would use
//! is a closed port, which it would otherwise wait for.

use std::process::Stdio;
use std::time::Duration;

const CLOSED: &str = "127.0.0.1:1";

#[tokio::test]
async fn every_role_names_a_bad_flag_before_it_connects_to_anything() {
    let data_path = std::env::temp_dir().join(dataplane::notification::new_id());
    std::fs::create_dir(&data_path).expect("a data directory");
    let data_dir = data_path.to_str().expect("a UTF-8 path");
    let postgres = format!("postgres://notif@{CLOSED}/notif");
    let redis = format!("redis://{CLOSED}");
    let cases: [(&str, Vec<&str>, &str); 4] = [
        (
            "receiver",
            vec![
                "--kafka-bootstrap-servers",
                CLOSED,
                "--allow-anonymous-publish",
                "--max-batch",
                "0",
            ],
            "--max-batch",
        ),
        (
            "director",
            vec![
                "--kafka-bootstrap-servers",
                CLOSED,
                "--postgres-url",
                &postgres,
                "--redis-url",
                &redis,
                "--delivery-window",
                "0",
            ],
            "--delivery-window",
        ),
        (
            "distributor",
            vec![
                "--jwt-secret",
                "a-secret",
                "--postgres-url",
                &postgres,
                "--redis-url",
                &redis,
                "--presence-ttl-secs",
                "1",
            ],
            "--presence-ttl-secs",
        ),
        (
            "standalone",
            vec![
                "--data-dir",
                data_dir,
                "--http-addr",
                "127.0.0.1:0",
                "--admin-addr",
                "127.0.0.1:0",
                "--delivery-attempts",
                "0",
            ],
            "--delivery-attempts",
        ),
    ];
    for (role, args, flag) in cases {
        let mut command = tokio::process::Command::from(testenv::notifd::bare_command(
            env!("CARGO_BIN_EXE_notifd").as_ref(),
            role,
        ));
        command.args(&args).stdout(Stdio::null()).kill_on_drop(true);
        let output = tokio::time::timeout(Duration::from_secs(10), command.output())
            .await
            .unwrap_or_else(|_| panic!("notifd {role} {args:?} exits at once"))
            .expect("notifd runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success(),
            "notifd {role} {args:?} is refused"
        );
        assert!(
            stderr.contains(flag),
            "notifd {role}: the error names {flag}: {stderr}"
        );
    }
    assert!(
        std::fs::read_dir(data_dir)
            .expect("the data directory")
            .next()
            .is_none(),
        "standalone opened nothing in its data directory"
    );
    std::fs::remove_dir(&data_path).expect("removed");
}
