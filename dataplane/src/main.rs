//! `notifd`: the message path of SaaSaparilla Notifications.

use std::io::IsTerminal;

use clap::{Parser, Subcommand};
use dataplane::director::DirectorArgs;
use dataplane::distributor::DistributorArgs;
use dataplane::inbox::InboxCommand;
use dataplane::receiver::ReceiverArgs;
use dataplane::standalone::{StandaloneArgs, TokenArgs};

// The message path allocates and frees small buffers for every notification
// on many threads; glibc's allocator spends much of its time consolidating
// them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The SaaSaparilla Notifications server.
///
/// Product backends publish notifications to the receiver; the director routes
/// each to its recipient's connected clients or to their inbox; the distributor
/// holds the clients' WebSocket, SSE and long-poll connections. Every flag can
/// also be set by the environment variable shown with it.
#[derive(Parser, Debug)]
#[command(version, about, long_about)]
struct Cli {
    /// Log format: `text` for people, `json` for log collectors.
    #[arg(long, env = "NOTIF_LOG_FORMAT", default_value = "text", global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    role: Role,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
enum Role {
    /// The whole service in one process, on embedded storage in a data directory.
    Standalone(StandaloneArgs),
    /// Prints a client token (JWT) for a recipient, signed with the configured or the data directory's secret.
    Token(TokenArgs),
    /// The publish API: accepts notifications and writes them to Kafka.
    Receiver(ReceiverArgs),
    /// Routes notifications from Kafka to connected clients (through the distributors) or their inboxes.
    Director(DirectorArgs),
    /// Holds clients' WebSocket, SSE and long-poll connections: their inbox, then live notifications.
    Distributor(DistributorArgs),
    /// The inbox's schema on each shard, and stored notifications moved while shards are added (docs/scaling.md).
    #[command(subcommand)]
    Inbox(InboxCommand),
    /// Prints the OpenAPI document of the public API (receiver and distributor), as served at /v1/openapi.json.
    Openapi,
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

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    // Every client connection is an open file: allow as many as the hard
    // limit does (the soft one is often 1024).
    if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
        tracing::warn!(error = %e, "cannot raise the open-files limit");
    }
    let result = match cli.role {
        Role::Standalone(args) => args.run(dataplane::shutdown::signal()).await,
        Role::Token(args) => args
            .token()
            .map(|token| println!("{token}"))
            .map_err(Into::into),
        Role::Receiver(args) => args.run(dataplane::shutdown::signal()).await,
        Role::Director(args) => args.run(dataplane::shutdown::signal()).await,
        Role::Distributor(args) => args.run(dataplane::shutdown::signal()).await,
        Role::Inbox(command) => command.run().await,
        Role::Openapi => dataplane::openapi::document()
            .to_pretty_json()
            .map(|json| println!("{json}"))
            .map_err(Into::into),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("notifd: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
