//! `notifd`: the message path of SaaSaparilla Notifications (DESIGN.md section 3).

use clap::Parser;

/// The SaaSaparilla Notifications server.
///
/// Product backends publish notifications to the receiver; the director routes
/// each to its recipient's connected clients or to their inbox; the distributor
/// holds the clients' WebSocket, SSE and long-poll connections.
#[derive(Parser, Debug)]
#[command(version, about, long_about)]
struct Cli {}

fn main() {
    let Cli {} = Cli::parse();
    eprintln!("notifd: no role is built yet; this binary only answers --help and --version");
    std::process::exit(2);
}
