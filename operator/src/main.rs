//! `notification-operator`: reconciles `NotificationCluster` objects into the
//! running service (DESIGN.md section 4).

use std::io::IsTerminal;
use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use operator::run::RunArgs;
use tokio_util::sync::CancellationToken;

/// The SaaSaparilla Notifications operator.
///
/// Watches NotificationCluster objects and makes, for each, the Deployments,
/// Services, autoscalers and Kafka topic of a running notification service.
#[derive(Parser, Debug)]
#[command(version, about, long_about)]
struct Cli {
    /// Log as text for people, or as JSON for log collectors.
    #[arg(long, env = "NOTIF_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Reconcile NotificationClusters (the operator itself).
    Run(RunArgs),
    /// Print the NotificationCluster CustomResourceDefinition as YAML (what `crds/` holds).
    Crd,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum LogFormat {
    Text,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Crd => print_crd(),
        Command::Run(args) => {
            init_tracing(cli.log_format);
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(runtime) => runtime,
                Err(e) => {
                    eprintln!("notification-operator: cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            runtime.block_on(async {
                let shutdown = CancellationToken::new();
                tokio::spawn(cancel_on_signal(shutdown.clone()));
                match args.run(shutdown).await {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        tracing::error!(error = %e, "notification-operator stops");
                        ExitCode::FAILURE
                    }
                }
            })
        }
    }
}

fn print_crd() -> ExitCode {
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

/// SIGTERM or Ctrl-C: finish in-flight reconciles, release the Lease, exit.
async fn cancel_on_signal(shutdown: CancellationToken) {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = terminate => {},
        _ = tokio::signal::ctrl_c() => {},
    }
    tracing::info!("stopping: finishing reconciles and releasing the Lease");
    shutdown.cancel();
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("NOTIF_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Colours only for a terminal, not in a container's or a file's log.
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
