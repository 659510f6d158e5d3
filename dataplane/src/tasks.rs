//! How every role runs: its main work (serving, or routing) and the tasks
//! beside it (dependency checks, the inbox's purge, announcements, the admin
//! port), under one cancellation token and one task tracker. The token is
//! cancelled when the process is asked to stop; the main work drains; then
//! the other tasks get a bounded grace period, and the process leaves
//! without those that are not done.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long the tasks beside the main work may take to finish after it.
pub const GRACE: Duration = Duration::from_secs(10);

pub struct Tasks {
    stop: CancellationToken,
    /// Cancelled once the main work is done: for what must outlive the
    /// drain, as the admin port does (`/readyz` says `draining` meanwhile).
    done: CancellationToken,
    tracker: TaskTracker,
}

impl Tasks {
    /// Tasks asked to stop when `shutdown` completes.
    pub fn until(shutdown: impl Future<Output = ()> + Send + 'static) -> Tasks {
        let stop = CancellationToken::new();
        let signalled = stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = shutdown => signalled.cancel(),
                () = signalled.cancelled() => {}
            }
        });
        Tasks {
            stop,
            done: CancellationToken::new(),
            tracker: TaskTracker::new(),
        }
    }

    /// Cancelled when the process is asked to stop, or its main work ended.
    pub fn stop(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Cancelled once the main work is done.
    pub fn done(&self) -> CancellationToken {
        self.done.clone()
    }

    /// Runs `task` beside the main work; it should end on [`Tasks::stop`]
    /// or [`Tasks::done`].
    pub fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.tracker.spawn(task);
    }

    /// Runs `main` to its end (it should drain on [`Tasks::stop`]), then
    /// stops the other tasks and waits for them, `grace` at most. Returns
    /// what `main` returned.
    pub async fn run(
        self,
        main: impl Future<Output = anyhow::Result<()>>,
        grace: Duration,
    ) -> anyhow::Result<()> {
        let result = main.await;
        self.stop.cancel();
        self.done.cancel();
        self.tracker.close();
        if tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                left = self.tracker.len(),
                grace_secs = grace.as_secs_f64(),
                "tasks did not finish within the grace period; leaving without them"
            );
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_tasks_see_the_stop_then_the_end_of_the_main_work() {
        let (shutdown, asked) = tokio::sync::oneshot::channel::<()>();
        let tasks = Tasks::until(async move {
            let _ = asked.await;
        });
        let (stop, done) = (tasks.stop(), tasks.done());
        let drained_first = Arc::new(AtomicBool::new(false));
        let seen = drained_first.clone();
        tasks.spawn(async move {
            done.cancelled().await;
            seen.store(true, Ordering::SeqCst);
        });
        let main = async move {
            stop.cancelled().await;
            // Still draining: what waits for `done` has not ended.
            assert!(!drained_first.load(Ordering::SeqCst));
            anyhow::bail!("the main work's own error")
        };
        shutdown.send(()).expect("listening");
        let result = tasks.run(main, GRACE).await;
        assert_eq!(
            result.expect_err("main failed").to_string(),
            "the main work's own error"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_that_does_not_end_is_left_after_the_grace_period() {
        let tasks = Tasks::until(std::future::pending());
        tasks.spawn(std::future::pending());
        let started = tokio::time::Instant::now();
        tasks
            .run(async { Ok(()) }, GRACE)
            .await
            .expect("main ended well");
        assert_eq!(started.elapsed(), GRACE);
    }

    #[tokio::test]
    async fn the_main_work_ending_by_itself_stops_the_others() {
        let tasks = Tasks::until(std::future::pending());
        let stop = tasks.stop();
        let (ended, mut told) = tokio::sync::mpsc::channel(1);
        tasks.spawn(async move {
            stop.cancelled().await;
            let _ = ended.send(()).await;
        });
        tasks
            .run(async { Ok(()) }, GRACE)
            .await
            .expect("main ended well");
        assert_eq!(told.try_recv(), Ok(()), "the task ended within the run");
    }
}
