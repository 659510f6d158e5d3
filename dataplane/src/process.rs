//! How every `notifd` process runs, whatever roles it plays: its main work
//! (serving, routing, or both) and the tasks beside it (dependency checks,
//! the inbox's purge, announcements) under one cancellation token and one
//! task tracker, with its admin port (`/metrics`, `/healthz`, `/readyz`).
//! The token is cancelled when the process is asked to stop; the main work
//! drains while `/readyz` answers `draining`; then the other tasks get a
//! bounded grace period, and the process leaves without those not done.

use std::time::Duration;

use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::admin::{self, Ready};
use crate::dependencies::{self, Dependency};
use crate::metrics::DependencyMetrics;

/// How long the tasks beside the main work may take to finish after it.
pub const GRACE: Duration = Duration::from_secs(10);

pub struct Process {
    stop: CancellationToken,
    tracker: TaskTracker,
    ready: Ready,
    /// Where the roles register their metrics, served on the admin port.
    pub registry: Registry,
}

impl Process {
    /// A process asked to stop when `shutdown` completes.
    pub fn until(shutdown: impl Future<Output = ()> + Send + 'static) -> Process {
        let stop = CancellationToken::new();
        let signalled = stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = shutdown => signalled.cancel(),
                () = signalled.cancelled() => {}
            }
        });
        Process {
            ready: Ready::new(stop.clone()),
            stop,
            tracker: TaskTracker::new(),
            registry: Registry::default(),
        }
    }

    /// Cancelled when the process is asked to stop, or its main work ended.
    pub fn stop(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Runs `task` beside the main work; it should end on [`Process::stop`].
    pub fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.tracker.spawn(task);
    }

    /// Checks the shared servers the roles use, into `notif_dependency_up`.
    /// They do not count for readiness (see [`Ready`]).
    pub fn watch(&mut self, servers: Vec<Dependency>) {
        let metrics = DependencyMetrics::default().register(&mut self.registry);
        self.spawn(dependencies::watch(servers, metrics, self.stop()));
    }

    /// Ready once `started` completes, until the stop.
    pub fn ready_when(&self, started: impl Future<Output = ()> + Send + 'static) {
        let (ready, stop) = (self.ready.clone(), self.stop());
        self.spawn(async move {
            tokio::select! {
                () = started => ready.started(),
                () = stop.cancelled() => {}
            }
        });
    }

    /// Serves the admin port on `admin` and runs `main` to its end (it
    /// should drain on [`Process::stop`]); the admin port answers until
    /// then. Then stops the other tasks and waits for them, [`GRACE`] at
    /// most. Returns what `main` returned.
    pub async fn run(
        self,
        admin: TcpListener,
        main: impl Future<Output = anyhow::Result<()>>,
    ) -> anyhow::Result<()> {
        let done = CancellationToken::new();
        let admin = axum::serve(admin, admin::router(self.registry, self.ready))
            .with_graceful_shutdown(done.clone().cancelled_owned());
        self.tracker.spawn(async {
            if let Err(e) = admin.await {
                tracing::error!(error = %e, "the admin port failed");
            }
        });
        let result = main.await;
        self.stop.cancel();
        done.cancel();
        self.tracker.close();
        if tokio::time::timeout(GRACE, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                left = self.tracker.len(),
                grace_secs = GRACE.as_secs_f64(),
                "tasks did not finish within the grace period; leaving without them"
            );
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::sync::Notify;

    use super::*;

    async fn admin_port() -> (TcpListener, String) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let url = format!("http://{}", listener.local_addr().expect("an address"));
        (listener, url)
    }

    #[tokio::test]
    async fn while_the_main_work_drains_the_admin_port_answers_draining() {
        let (shutdown, asked) = tokio::sync::oneshot::channel::<()>();
        let process = Process::until(async move {
            let _ = asked.await;
        });
        process.ready_when(async {});
        let (admin, url) = admin_port().await;
        let (draining, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        let stop = process.stop();
        let main = {
            let (draining, release) = (draining.clone(), release.clone());
            async move {
                stop.cancelled().await;
                draining.notify_one();
                release.notified().await;
                anyhow::bail!("the main work's own error")
            }
        };
        let running = tokio::spawn(process.run(admin, main));

        let readyz = async || {
            let answer = reqwest::get(format!("{url}/readyz"))
                .await
                .expect("/readyz answers");
            (answer.status(), answer.text().await.expect("a body"))
        };
        // Ready as soon as it has started (the spawned check has run).
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(readyz().await, (reqwest::StatusCode::OK, "ok".into()));
        shutdown.send(()).expect("listening");
        draining.notified().await;
        assert_eq!(
            readyz().await,
            (reqwest::StatusCode::SERVICE_UNAVAILABLE, "draining".into())
        );
        release.notify_one();
        let result = running.await.expect("the process");
        assert_eq!(
            result.expect_err("main failed").to_string(),
            "the main work's own error"
        );
        assert!(
            reqwest::get(format!("{url}/healthz")).await.is_err(),
            "the admin port closes once the main work is done"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_that_does_not_end_is_left_after_the_grace_period() {
        let process = Process::until(std::future::pending());
        process.spawn(std::future::pending());
        let (admin, _) = admin_port().await;
        let started = tokio::time::Instant::now();
        process
            .run(admin, async { Ok(()) })
            .await
            .expect("main ended well");
        assert_eq!(started.elapsed(), GRACE);
    }

    #[tokio::test]
    async fn the_main_work_ending_by_itself_stops_the_others() {
        let process = Process::until(std::future::pending());
        let stop = process.stop();
        let (ended, mut told) = tokio::sync::mpsc::channel(1);
        process.spawn(async move {
            stop.cancelled().await;
            let _ = ended.send(()).await;
        });
        let (admin, _) = admin_port().await;
        process
            .run(admin, async { Ok(()) })
            .await
            .expect("main ended well");
        assert_eq!(told.try_recv(), Ok(()), "the task ended within the run");
    }

    #[tokio::test]
    async fn not_ready_until_started() {
        let process = Process::until(std::future::pending());
        let (admin, url) = admin_port().await;
        let (start, started) = tokio::sync::oneshot::channel::<()>();
        process.ready_when(async move {
            let _ = started.await;
        });
        let stop = process.stop();
        let running = tokio::spawn(process.run(admin, async move {
            stop.cancelled().await;
            Ok(())
        }));
        let answer = reqwest::get(format!("{url}/readyz"))
            .await
            .expect("answers");
        assert_eq!(answer.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(answer.text().await.expect("a body"), "starting");
        drop(start);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let answer = reqwest::get(format!("{url}/readyz"))
            .await
            .expect("answers");
        assert_eq!(answer.status(), reqwest::StatusCode::OK);
        running.abort();
    }
}
