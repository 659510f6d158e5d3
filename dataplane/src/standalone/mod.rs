//! `notifd standalone`: the whole service in one process. The receiver,
//! director and distributor are the same code as in the distributed
//! service, over embedded backends: the log and the inbox in one SQLite
//! database in the data directory, and presence in process. The director
//! hands notifications to the distributor directly instead of over the
//! forwarding stream.

mod credentials;
mod data_dir;
mod demo;
mod token;

pub use credentials::Credentials;
pub use data_dir::DataDir;
pub use token::TokenArgs;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crate::auth::config::{JwtArgs, PublisherAuthArgs};
use crate::compose::{self, AllRoles, Backends, Metrics, Settings};
use crate::director::RoutingArgs;
use crate::distributor::ConnectionArgs;
use crate::inbox::{Inbox, SqliteInbox};
use crate::listen;
use crate::log::SqliteLog;
use crate::presence::MemoryPresence;
use crate::process::Process;
use crate::receiver::LimitArgs;

#[derive(clap::Args, Debug, Clone)]
pub struct StandaloneArgs {
    /// Where the database and the generated development credentials are kept.
    #[arg(long, env = "NOTIF_DATA_DIR", default_value_os_t = data_dir::default_path())]
    pub data_dir: PathBuf,
    /// Address of the publish and connect endpoints, and the demo page.
    #[arg(long, env = "NOTIF_HTTP_ADDR", default_value = "127.0.0.1:8080")]
    pub http_addr: SocketAddr,
    #[command(flatten)]
    pub listen: crate::listen::ListenArgs,
    /// Address of the admin port: /metrics, /healthz and /readyz.
    #[arg(long, env = "NOTIF_ADMIN_ADDR", default_value = "127.0.0.1:9090")]
    pub admin_addr: SocketAddr,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[command(flatten)]
    pub routing: RoutingArgs,
    #[command(flatten)]
    pub connections: ConnectionArgs,
    #[command(flatten)]
    pub publisher: PublisherAuthArgs,
    #[command(flatten)]
    pub jwt: JwtArgs,
}

impl StandaloneArgs {
    /// Serves everything until `shutdown`, then drains: connections close,
    /// routing finishes or leaves for the next start what is not done.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let settings = Settings {
            limits: self.limits,
            routing: self.routing,
            connections: self.connections,
        };
        settings.check()?;
        let data = DataDir::lock(&self.data_dir)?;
        let credentials = Credentials::resolve(&data.path, &self.jwt, &self.publisher)?;
        let database = data.database().await?;
        let mut process = Process::until(shutdown);
        let metrics = Metrics::register(&mut process.registry);
        let log =
            Arc::new(SqliteLog::open(database.clone(), &metrics.director.consumer_lag).await?);
        let inbox: Arc<dyn Inbox> = Arc::new(SqliteInbox::new(database));

        let roles = AllRoles::build(
            &settings,
            Backends {
                log: log.clone(),
                reader: log,
                inbox: inbox.clone(),
                presence: Arc::new(MemoryPresence::default()),
            },
            compose::Credentials {
                publisher: credentials.publisher.clone(),
                jwt: credentials.jwt.clone(),
            },
            metrics,
            process.stop(),
            |distributor| distributor,
        )?;

        let public = listen::bind("--http-addr", self.http_addr).await?;
        let admin = listen::bind("--admin-addr", self.admin_addr).await?;
        print_welcome(
            &data,
            &credentials,
            public.local_addr()?,
            admin.local_addr()?,
        );

        let served_at = public.local_addr()?;
        if credentials.is_development() && !served_at.ip().is_loopback() {
            tracing::warn!(
                address = %served_at,
                "the development credentials are served beyond this machine: anyone who reaches the address can publish with the generated API key; configure credentials (--api-key-hashes, --jwt-secret) before exposing it"
            );
        }
        let demo_tokens = credentials
            .is_development()
            .then(|| credentials.jwt_secret.clone())
            .flatten()
            .map(|secret| demo::DemoTokens {
                secret,
                checks: self.jwt.checks(),
            });
        let public_router = roles.router().merge(demo::router(demo_tokens));
        process.spawn(settings.routing.purge(inbox, process.stop()));
        // No `notif_dependency_up`: the log and the inbox are in this
        // process, and have no server to lose.
        process.ready_when(async {});
        // Serving and routing (a task of its own) drain together; the
        // process leaves when both are done.
        let routing = tokio::spawn(roles.routing.run(process.stop().cancelled_owned()));
        let serving = listen::serve(public, public_router, &self.listen, process.stop());
        let main = async {
            serving.await?;
            routing.await?;
            Ok(())
        };
        process.run(admin, main).await?;
        tracing::info!("standalone stopped");
        Ok(())
    }
}

/// What a newcomer needs: where to publish and connect, and with what.
fn print_welcome(data: &DataDir, credentials: &Credentials, http: SocketAddr, admin: SocketAddr) {
    let http = shown(http);
    let admin = shown(admin);
    let notifd = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "notifd".into());
    let data_flag = format!("--data-dir '{}'", data.path.display());
    println!("SaaSaparilla Notifications (standalone) is running.");
    println!("  data:     {}", data.path.display());
    println!("  publish:  POST http://{http}/v1/notifications");
    println!(
        "  connect:  ws://{http}/v1/connect/ws  http://{http}/v1/connect/sse  http://{http}/v1/connect/poll"
    );
    println!("  demo:     http://{http}/");
    println!("  admin:    http://{admin}/metrics /healthz /readyz");
    match &credentials.api_key {
        Some(key) => println!(
            "  API key:  {key}  (development; kept in {})",
            credentials::api_key_path(&data.path).display()
        ),
        None => println!("  API key:  as configured"),
    }
    let api_key = match &credentials.api_key {
        Some(_) => format!(
            "$(cat '{}')",
            credentials::api_key_path(&data.path).display()
        ),
        None => "<your API key>".into(),
    };
    let token = match &credentials.jwt_secret {
        Some(_) => format!("$({notifd} token --recipient alice {data_flag})"),
        None => "<a client token for alice>".into(),
    };
    println!();
    println!("Subscribe as alice:");
    println!("  curl -N \"http://{http}/v1/connect/sse?token={token}\"");
    println!("Publish to alice:");
    println!(
        "  curl -X POST http://{http}/v1/notifications -H \"Authorization: Bearer {api_key}\" -H 'Content-Type: application/json' -d '{{\"recipient\":\"alice\",\"payload\":{{\"text\":\"hello\"}}}}'"
    );
    println!();
}

/// An address to show: a wildcard listener is reached on loopback.
fn shown(address: SocketAddr) -> SocketAddr {
    match address.ip().is_unspecified() {
        true => SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), address.port()),
        false => address,
    }
}
