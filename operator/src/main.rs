//! `notification-operator`: reconciles `NotificationCluster` objects into the
//! running service (DESIGN.md section 4).

use clap::Parser;

/// The SaaSaparilla Notifications operator.
///
/// Watches NotificationCluster objects and makes, for each, the Deployments,
/// Services, autoscalers and Kafka topic of a running notification service.
#[derive(Parser, Debug)]
#[command(version, about, long_about)]
struct Cli {}

fn main() {
    let Cli {} = Cli::parse();
    eprintln!(
        "notification-operator: the controller is not built yet; this binary only answers --help and --version"
    );
    std::process::exit(2);
}
