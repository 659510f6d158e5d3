//! `notification-operator`: reconciles `NotificationCluster` objects into the
//! running service (DESIGN.md section 4).

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The SaaSaparilla Notifications operator.
///
/// Will watch NotificationCluster objects and make, for each, the Deployments,
/// Services, autoscalers and Kafka topic of a running notification service.
/// The controller is not built yet: for now the binary prints the CRD.
#[derive(Parser, Debug)]
#[command(version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print the NotificationCluster CustomResourceDefinition as YAML (what `crds/` holds).
    Crd,
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Some(Command::Crd) => {
            let yaml = match operator::crd::crd_yaml() {
                Ok(yaml) => yaml,
                Err(e) => {
                    eprintln!("notification-operator: cannot serialize the CRD: {e}");
                    return ExitCode::FAILURE;
                }
            };
            if let Err(e) = std::io::stdout().write_all(yaml.as_bytes()) {
                eprintln!("notification-operator: cannot write the CRD: {e}");
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        None => {
            eprintln!(
                "notification-operator: the controller is not built yet; this binary only answers `crd`, --help and --version"
            );
            ExitCode::from(2)
        }
    }
}
