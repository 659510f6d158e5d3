//! The Pulumi program in `deploy/pulumi`, as a stack of a test's own.
//!
//! Its state, configuration and Pulumi home live in a directory of the
//! stack's own, with the passphrase secrets provider. The CLI and the
//! providers are those the test environment builds, and nothing is fetched.
//! The program runs through its Automation API driver (`python -m backing`),
//! where Python hosts it: the CLI's Python language host cannot be built here.

use std::path::{Path, PathBuf};

use serde_json::Value;
use tokio::process::Command;

/// The Pulumi project.
pub const PROGRAM: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/pulumi");

/// Any passphrase will do: the state is the test's own.
const PASSPHRASE: &str = "a-test-stack-passphrase";

pub struct Stack {
    pub name: String,
    dir: PathBuf,
}

impl Stack {
    /// A new stack named after `prefix`, in a directory of its own.
    pub async fn init(prefix: &str) -> Stack {
        let name = crate::unique_name(prefix);
        let dir = std::env::temp_dir().join(&name);
        for sub in ["state", "home"] {
            std::fs::create_dir_all(dir.join(sub)).expect("the stack's directories");
        }
        std::fs::copy(
            Path::new(PROGRAM).join("Pulumi.yaml"),
            dir.join("Pulumi.yaml"),
        )
        .expect("the project file");
        let stack = Stack { name, dir };
        stack
            .pulumi(&[
                "stack",
                "init",
                &stack.name,
                "--secrets-provider",
                "passphrase",
            ])
            .await;
        stack
    }

    /// `pulumi config set key value`.
    pub async fn set(&self, key: &str, value: &str) {
        self.pulumi(&["config", "set", key, value]).await;
    }

    /// `pulumi config set --secret key value`.
    pub async fn set_secret(&self, key: &str, value: &str) {
        self.pulumi(&["config", "set", "--secret", key, value])
            .await;
    }

    /// Runs the program; returns the stack's outputs, secrets shown as
    /// `[secret]`.
    pub async fn up(&self) -> Value {
        self.backing(&["up"]).await;
        let outputs = self.backing(&["outputs"]).await;
        serde_json::from_str(&outputs)
            .unwrap_or_else(|e| panic!("the stack's outputs are JSON ({e}): {outputs}"))
    }

    /// Fails the test if running the program again would change anything.
    pub async fn expect_no_changes(&self) {
        self.backing(&["preview", "--expect-no-changes"]).await;
    }

    /// Reads what the stack made back from where it runs, as `pulumi
    /// refresh` does: what is gone is gone from the state too.
    pub async fn refresh(&self) {
        self.backing(&["refresh"]).await;
    }

    /// The stack's state as `pulumi stack export` gives it.
    pub async fn state(&self) -> String {
        self.pulumi(&["stack", "export"]).await
    }

    /// Deletes everything the stack made, then the stack and its directory.
    pub async fn destroy(self) {
        self.backing(&["destroy", "--remove"]).await;
        std::fs::remove_dir_all(&self.dir).expect("the stack's directory is removed");
    }

    /// Runs the CLI in the stack's directory; returns its stdout.
    async fn pulumi(&self, args: &[&str]) -> String {
        run(self.command("pulumi").args(args).current_dir(&self.dir)).await
    }

    /// Runs the program's driver on the stack; returns its stdout.
    async fn backing(&self, args: &[&str]) -> String {
        let mut command = self.command(&python());
        command
            .args(["-m", "backing"])
            .args(args)
            .args(["--stack", &self.name, "--work-dir"])
            .arg(&self.dir)
            .current_dir(PROGRAM);
        run(&mut command).await
    }

    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command
            .env("PULUMI_HOME", self.dir.join("home"))
            .env(
                "PULUMI_BACKEND_URL",
                format!("file://{}", self.dir.join("state").display()),
            )
            .env("PULUMI_CONFIG_PASSPHRASE", PASSPHRASE)
            .env("PULUMI_SKIP_UPDATE_CHECK", "true")
            // A plugin that is missing fails at once instead of being downloaded.
            .env("PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION", "true")
            .kill_on_drop(true);
        command
    }
}

/// The Python of the program's virtual environment, which the test
/// environment makes.
pub fn python() -> String {
    std::env::var("NOTIF_PULUMI_PYTHON").unwrap_or_else(|_| {
        panic!("NOTIF_PULUMI_PYTHON is not set: run the tests with `just test`, or export the environment with `eval \"$(e2e/env/notif-env env)\"`")
    })
}

/// Runs `command` to its end; returns its stdout, or fails the test with
/// both of its outputs.
async fn run(command: &mut Command) -> String {
    let output = command.output().await.unwrap_or_else(|e| {
        panic!("cannot run {command:?} (the test environment puts it on PATH): {e}")
    });
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}
