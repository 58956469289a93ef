//! Running a job: [`Job`] (a validated topology, ready to start) and its
//! [`JobHandle`] (await completion, stop, checkpoint, read metrics).
//!
//! A job runs inside an actix `System`, its actor instances on Arbiters
//! (threads) placed by the job's [`crate::Placement`]. [`Job::start`]
//! starts it in the current System (an actix or actix-web application);
//! [`Job::run_blocking`] creates a System on the calling thread and runs the
//! job to completion, for a plain `main`; [`Job::spawn`] runs it on a System
//! of its own on a new thread, so that a plain tokio (or synchronous)
//! program can hold the handle.
//!
//! A job completes when every sink has seen the end of its input. Stopping
//! ([`JobHandle::stop`]) asks the sources to end early: what is in flight
//! drains through the job and every open window fires, so nothing that was
//! read is lost. A job fails — and [`JobHandle::wait`] returns the error —
//! at the first error or panic of any of its actors, or when its actors go
//! away because their actix System was stopped under them.

use std::fmt;
use std::sync::Arc;

use crate::error::{BuildError, JobError};
use crate::runtime::handle::JobHandle;
use crate::runtime::launch::launch;
use crate::runtime::JobReport;
use crate::topology::graph::Graph;
use crate::topology::{lock, JobBuilder};

/// A validated topology, ready to run. Built by
/// [`crate::JobBuilder::build`].
pub struct Job {
    pub(crate) graph: Graph,
}

impl fmt::Debug for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Job").field("name", &self.graph.config.name).finish()
    }
}

impl JobBuilder {
    /// Validates the topology.
    pub fn build(self) -> Result<Job, BuildError> {
        let graph = match Arc::try_unwrap(self.graph) {
            Ok(m) => m.into_inner().unwrap_or_else(|e| e.into_inner()),
            Err(shared) => {
                // Clones of the builder remain: take the graph out.
                let mut g = lock(&shared);
                let config = g.config.clone();
                std::mem::replace(&mut *g, Graph::new(config))
            }
        };
        let mut graph = graph;
        graph.validate()?;
        Ok(Job { graph })
    }
}

impl Job {
    /// Starts the job's actors in the current actix System. Fails without
    /// starting anything if the job cannot resume from the checkpoint it
    /// finds (see [`JobError::Restore`]).
    pub fn start(self) -> Result<JobHandle, JobError> {
        if actix::System::try_current().is_none() {
            return Err(JobError::NoSystem);
        }
        launch(self.graph)
    }

    /// Runs the job to completion on a new actix System on this thread.
    /// Must not be called from inside an async runtime.
    pub fn run_blocking(self) -> Result<JobReport, JobError> {
        let sys = actix::System::new();
        sys.block_on(async move {
            let handle = self.start()?;
            handle.wait().await
        })
    }

    /// Runs the job on a System of its own on a new thread; the handle works
    /// from any thread or async runtime.
    pub fn spawn(self) -> Result<JobHandle, JobError> {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name(format!("weir-{}", self.graph.config.name))
            .spawn(move || {
                let sys = actix::System::new();
                sys.block_on(async move {
                    match launch(self.graph) {
                        Ok(handle) => {
                            let waiter = handle.clone();
                            let _ = tx.send(Ok(handle));
                            // Keep this System alive until the job is over;
                            // the outcome is read by the user's handle.
                            waiter.finished().await;
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e));
                        }
                    }
                });
            })
            .map_err(|e| JobError::Runtime(e.to_string()))?;
        rx.recv().map_err(|_| JobError::Runtime("the job thread ended before starting".into()))?
    }
}
