//! The job queue: FIFO, at most `max_concurrent` jobs running, at most `queue_limit`
//! waiting. Jobs run on blocking threads (`worker`); the scheduler records every state
//! change in the store. States and transitions: `hermetic_contract::wire::JobState`.
pub mod log;
pub mod metrics;
pub mod worker;

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::store::{Finish, Store, StoreError};
use hermetic::exit_code as exit;
use hermetic::sandbox::cancel::Cancel;
use hermetic_contract::wire::{Job, JobRequest, JobState};

use self::log::JobLog;
use self::metrics::{Gauges, Metrics};

/// How long shutdown waits for killed jobs to end.
const KILL_GRACE: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("the queue is full ({limit} jobs waiting); try again later")]
    Busy { limit: usize },
    #[error("the daemon is shutting down")]
    ShuttingDown,
    #[error("invalid job request: {0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "this daemon runs as uid {daemon_uid} and cannot act as uid {uid}: start your own \
         (hermetic does so when nothing answers on your socket) or use a root daemon"
    )]
    OtherUser { uid: u32, daemon_uid: u32 },
}

/// Who submitted a job, from the connection's SO_PEERCRED.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caller {
    pub uid: u32,
    pub gid: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum CancelError {
    #[error("no job {0}")]
    NotFound(u64),
    #[error("job {id} is already {}", state.as_str())]
    Finished { id: u64, state: JobState },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a running job is being stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    Cancel,
    Shutdown,
}

struct Handle {
    stop: watch::Sender<Option<Stop>>,
    /// Kills the job's sandboxes, including any started after the stop.
    cancel: Cancel,
}

struct Pending {
    id: u64,
    request: JobRequest,
    /// The user whose file access the job runs with, when it is not the daemon's own.
    acting_for: Option<Caller>,
    handle: Arc<Handle>,
    submitted: Instant,
}

#[derive(Default)]
struct State {
    accepting: bool,
    pending: VecDeque<Pending>,
    running: usize,
    handles: HashMap<u64, Arc<Handle>>,
}

struct Inner {
    config: Config,
    store: Store,
    metrics: Metrics,
    state: Mutex<State>,
    /// Signalled whenever a running job ends.
    ended: Notify,
}

/// The daemon's job queue. Cheap to clone.
#[derive(Clone)]
pub struct Scheduler {
    inner: Arc<Inner>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Scheduler {
    /// Takes over the store: jobs a previous daemon left queued or running are marked
    /// interrupted and their scratch directories removed (unless `keep_failed`).
    pub fn start(config: Config, store: Store) -> Result<Scheduler, StoreError> {
        let scheduler = Scheduler {
            inner: Arc::new(Inner {
                config,
                store,
                metrics: Metrics::default(),
                state: Mutex::new(State {
                    accepting: true,
                    ..State::default()
                }),
                ended: Notify::new(),
            }),
        };
        let logs = scheduler.inner.config.state_dir.join("logs");
        if let Err(err) = std::fs::create_dir_all(&logs) {
            // Every submission says so too, naming the log it could not create.
            tracing::error!("failed to create {}: {err}", logs.display());
        }
        for id in scheduler.inner.store.interrupt_unfinished(now_ms())? {
            tracing::warn!(job = id, "job interrupted by a daemon restart");
            scheduler.inner.move_legacy_log_out(id);
            scheduler
                .inner
                .settle_scratch(id, scheduler.inner.config.keep_failed);
        }
        Ok(scheduler)
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Whether job `id` is queued or running here: true until just after its end is
    /// recorded in the store (and `job_ended` signalled once more).
    pub fn is_active(&self, id: u64) -> bool {
        self.inner.lock().handles.contains_key(&id)
    }

    /// (queued, running)
    pub fn counts(&self) -> (usize, usize) {
        let state = self.inner.lock();
        (state.pending.len(), state.running)
    }

    pub fn is_accepting(&self) -> bool {
        self.inner.lock().accepting
    }

    pub fn metrics(&self) -> String {
        let (queued, running) = self.counts();
        self.inner.metrics.render(&Gauges {
            queued,
            running,
            max_concurrent: self.inner.config.max_concurrent,
            queue_limit: self.inner.config.queue_limit,
            drills: self.inner.store.last_drills().unwrap_or_else(|err| {
                tracing::warn!(
                    "/metrics without the drill history: {}",
                    hermetic::errors::Chain(&err)
                );
                Vec::new()
            }),
        })
    }

    /// The file holding job `id`'s log once the job has written to it (see `log::JobLog`).
    pub fn log_file(&self, id: u64) -> PathBuf {
        self.inner.final_log(id)
    }

    /// Completes when some job ends. Create (and `enable`) it before checking a job's
    /// state, so an end between the check and the wait is not missed.
    pub fn job_ended(&self) -> tokio::sync::futures::Notified<'_> {
        self.inner.ended.notified()
    }

    /// The index of job `id`'s log (see `log::index_path`).
    pub fn log_index_file(&self, id: u64) -> PathBuf {
        log::index_path(&self.inner.final_log(id))
    }

    /// Queues a job for `caller`. A job of another user than the daemon's reads and writes
    /// the host paths it names with that user's file access (root's jobs, and a non-root
    /// daemon's own, with the daemon's). Must be called inside the tokio runtime.
    pub fn submit(&self, request: JobRequest, caller: Caller) -> Result<Job, SubmitError> {
        validate(&request)?;
        let daemon_uid = nix::unistd::geteuid().as_raw();
        let acting_for = match caller.uid {
            uid if uid == daemon_uid || uid == 0 => None,
            uid if daemon_uid != 0 => return Err(SubmitError::OtherUser { uid, daemon_uid }),
            _ => Some(caller),
        };
        let inner = &self.inner;
        let mut state = inner.lock();
        if !state.accepting {
            return Err(SubmitError::ShuttingDown);
        }
        if state.pending.len() >= inner.config.queue_limit {
            inner.metrics.rejected_busy();
            return Err(SubmitError::Busy {
                limit: inner.config.queue_limit,
            });
        }
        let job = inner
            .store
            .insert(&request, now_ms(), |id| inner.final_log(id))?;
        let (stop, _) = watch::channel(None);
        let handle = Arc::new(Handle {
            stop,
            cancel: Cancel::default(),
        });
        state.handles.insert(job.id, handle.clone());
        state.pending.push_back(Pending {
            id: job.id,
            request,
            acting_for,
            handle,
            submitted: Instant::now(),
        });
        inner.metrics.submitted();
        Inner::dispatch(inner, &mut state);
        Ok(job)
    }

    /// Cancels a queued job, or kills a running job's sandbox.
    pub fn cancel(&self, id: u64) -> Result<Job, CancelError> {
        let inner = &self.inner;
        {
            let mut state = inner.lock();
            if let Some(index) = state.pending.iter().position(|job| job.id == id) {
                state.pending.remove(index);
                state.handles.remove(&id);
                drop(state);
                inner.finish(id, JobState::Cancelled, &Finish::default(), None, None);
            } else if let Some(handle) = state.handles.get(&id) {
                handle.stop.send_replace(Some(Stop::Cancel));
            }
        }
        match inner.store.get(id)? {
            None => Err(CancelError::NotFound(id)),
            Some(job) if job.state.is_terminal() && job.state != JobState::Cancelled => {
                Err(CancelError::Finished {
                    id,
                    state: job.state,
                })
            }
            Some(job) => Ok(job),
        }
    }

    /// Stops accepting jobs if none is queued or running; returns whether it did.
    pub fn retire_if_idle(&self) -> bool {
        let mut state = self.inner.lock();
        if state.handles.is_empty() {
            state.accepting = false;
        }
        !state.accepting
    }

    /// Stops accepting jobs, marks the queued ones interrupted, lets the running ones
    /// finish for up to `shutdown_timeout`, then kills their sandboxes and waits for them.
    pub async fn shutdown(&self) {
        let inner = &self.inner;
        let pending: Vec<Pending> = {
            let mut state = inner.lock();
            state.accepting = false;
            let pending: Vec<Pending> = state.pending.drain(..).collect();
            for job in &pending {
                state.handles.remove(&job.id);
            }
            pending
        };
        for job in pending {
            let finish = Finish {
                error: Some("the daemon stopped before the job started".into()),
                ..Finish::default()
            };
            inner.finish(job.id, JobState::Interrupted, &finish, None, None);
        }
        let deadline = tokio::time::Instant::now() + inner.config.shutdown_timeout;
        if !self.wait_idle(deadline).await {
            let handles: Vec<Arc<Handle>> = inner.lock().handles.values().cloned().collect();
            tracing::warn!(
                jobs = handles.len(),
                "shutdown timeout reached; killing the running jobs"
            );
            for handle in handles {
                handle.stop.send_replace(Some(Stop::Shutdown));
            }
            if !self
                .wait_idle(tokio::time::Instant::now() + KILL_GRACE)
                .await
            {
                tracing::error!("jobs still running after their sandboxes were killed");
            }
        }
    }

    /// Waits until no job runs; false at the deadline.
    async fn wait_idle(&self, deadline: tokio::time::Instant) -> bool {
        loop {
            let ended = self.inner.ended.notified();
            tokio::pin!(ended);
            ended.as_mut().enable();
            if self.inner.lock().running == 0 {
                return true;
            }
            tokio::select! {
                () = ended => {}
                () = tokio::time::sleep_until(deadline) => return self.inner.lock().running == 0,
            }
        }
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn scratch_dir(&self, id: u64) -> PathBuf {
        self.config.state_dir.join("scratch").join(id.to_string())
    }

    fn final_log(&self, id: u64) -> PathBuf {
        self.config.state_dir.join("logs").join(format!("{id}.log"))
    }

    /// Starts queued jobs, oldest first, while slots are free.
    fn dispatch(inner: &Arc<Inner>, state: &mut State) {
        while state.running < inner.config.max_concurrent {
            let Some(job) = state.pending.pop_front() else {
                break;
            };
            state.running += 1;
            // The job's thread starts here, not in its task: on the daemon's one async
            // thread that task would run only after the submission had been answered.
            // Its log is written where it stays (no move when the job ends); the files
            // are created at its first output (see `JobLog`). A job has no scratch
            // directory unless it is kept failed (`keep_failed`): the sandbox builds in a
            // tmpfs of its own.
            let log = JobLog::new(&inner.final_log(job.id), inner.config.log_limit_bytes);
            let keep_failed_in = inner.config.keep_failed.then(|| inner.scratch_dir(job.id));
            let Pending {
                id,
                request,
                acting_for,
                handle,
                submitted,
            } = job;
            let kill_switch = handle.clone();
            let thread = tokio::task::spawn_blocking(move || {
                worker::execute(
                    &request,
                    &log,
                    &kill_switch.cancel,
                    acting_for,
                    keep_failed_in.as_deref(),
                )
            });
            tokio::spawn(Inner::run(inner.clone(), id, handle, submitted, thread));
        }
    }

    async fn run(
        inner: Arc<Inner>,
        id: u64,
        handle: Arc<Handle>,
        submitted: Instant,
        thread: JoinHandle<worker::Outcome>,
    ) {
        let started = Instant::now();
        inner.metrics.started(submitted.elapsed());
        let (state, finish, setup) = Inner::execute(&inner, id, &handle, thread).await;
        if state != JobState::Succeeded && inner.config.keep_failed {
            // Before the end is recorded, so a reader that sees it finds the scratch dir;
            // on the blocking pool, as copying a log up to its cap is no work for the
            // daemon's one async thread.
            let keeper = inner.clone();
            let _ = tokio::task::spawn_blocking(move || keeper.keep_scratch(id)).await;
        }
        inner.finish(id, state, &finish, Some(started.elapsed()), setup);
        let mut guard = inner.lock();
        guard.running -= 1;
        guard.handles.remove(&id);
        Inner::dispatch(&inner, &mut guard);
        drop(guard);
        inner.ended.notify_waiters();
    }

    /// Follows a started job's thread to its end, passing a cancel or shutdown on to it.
    async fn execute(
        inner: &Arc<Inner>,
        id: u64,
        handle: &Handle,
        mut thread: JoinHandle<worker::Outcome>,
    ) -> (JobState, Finish, Option<Duration>) {
        let failed = |error: String| {
            let finish = Finish {
                exit_code: Some(exit::SANDBOX_FAILED),
                error: Some(error),
                ..Finish::default()
            };
            (JobState::Failed, finish, None)
        };
        let mut stop = handle.stop.subscribe();
        // A cancel or shutdown sent after the job left the queue but before this task got
        // here is already the current value, which `changed` would never report.
        let mut stopping = *stop.borrow_and_update();
        if stopping.is_some() {
            handle.cancel.cancel();
        }
        // Recorded while the job's thread starts its sandbox rather than before: the write
        // is not on the job's way. A job whose start cannot be recorded is stopped.
        if let Err(err) = inner.store.mark_running(id, now_ms()) {
            handle.cancel.cancel();
            let _ = thread.await;
            let finish = Finish {
                error: Some(hermetic::errors::error_chain(&err)),
                ..Finish::default()
            };
            return (JobState::Failed, finish, None);
        }
        let result = loop {
            tokio::select! {
                result = &mut thread => break result,
                changed = stop.changed(), if stopping.is_none() => {
                    if changed.is_err() {
                        continue;
                    }
                    stopping = *stop.borrow_and_update();
                    handle.cancel.cancel();
                }
            }
        };
        let outcome = match result {
            Ok(outcome) => outcome,
            Err(err) => return failed(format!("internal error: the job's thread failed: {err}")),
        };
        let state = match stopping {
            Some(Stop::Cancel) => JobState::Cancelled,
            Some(Stop::Shutdown) => JobState::Interrupted,
            None if outcome.finish.exit_code == Some(exit::SUCCESS) => JobState::Succeeded,
            None => JobState::Failed,
        };
        (state, outcome.finish, outcome.setup)
    }

    /// Records a job's end: the store, then the metrics.
    fn finish(
        &self,
        id: u64,
        state: JobState,
        finish: &Finish,
        duration: Option<Duration>,
        setup: Option<Duration>,
    ) {
        if let Err(err) = self.store.finish(id, state, now_ms(), finish) {
            tracing::error!(job = id, "{}", hermetic::errors::Chain(&err));
        }
        self.metrics
            .finished(state, finish.verdict, duration, setup);
        // Wakes clients following the job's log as well as shutdown.
        self.ended.notify_waiters();
    }

    /// At a restart, an interrupted job's scratch directory (one an older daemon made for
    /// every job, or a kept one): removed, or with `keep` kept with a copy of the log.
    fn settle_scratch(&self, id: u64, keep: bool) {
        if keep {
            self.keep_scratch(id);
            return;
        }
        let scratch = self.scratch_dir(id);
        if let Err(err) = remove_dir(&scratch) {
            tracing::warn!(job = id, "failed to remove {}: {err}", scratch.display());
        }
    }

    /// A failed job's scratch directory (where its failed build trees already are), kept
    /// with a copy of its log. Only for a job that started: one cancelled or interrupted
    /// while queued has nothing to keep.
    fn keep_scratch(&self, id: u64) {
        let scratch = self.scratch_dir(id);
        if let Err(err) = std::fs::create_dir_all(&scratch) {
            tracing::warn!(job = id, "failed to create {}: {err}", scratch.display());
            return;
        }
        let log = self.final_log(id);
        let copy = scratch.join("log");
        for (from, to) in [(log::index_path(&log), log::index_path(&copy)), (log, copy)] {
            match std::fs::copy(&from, &to) {
                // A run that printed nothing has no log (see `JobLog`).
                Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                    tracing::warn!(job = id, "failed to keep {}: {err}", from.display());
                }
                _ => {}
            }
        }
    }

    /// A job that an older daemon (one that kept a running job's log in its scratch
    /// directory) was running when it stopped: its log goes to the log directory.
    fn move_legacy_log_out(&self, id: u64) {
        let log = self.scratch_dir(id).join("log");
        let final_log = self.final_log(id);
        // The index first: a reader that finds the log in its final place finds its
        // index there too.
        for (from, to) in [
            (log::index_path(&log), log::index_path(&final_log)),
            (log.clone(), final_log.clone()),
        ] {
            if let Err(err) = std::fs::rename(&from, &to) {
                if err.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(job = id, "failed to keep {}: {err}", from.display());
                }
            }
        }
    }
}

fn remove_dir(dir: &Path) -> std::io::Result<()> {
    // A job's scratch directory is usually empty (its log is kept elsewhere): one rmdir.
    let removed = match std::fs::remove_dir(dir) {
        Err(err) if err.kind() == std::io::ErrorKind::DirectoryNotEmpty => {
            std::fs::remove_dir_all(dir)
        }
        other => other,
    };
    match removed {
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// What [`Scheduler::submit`] checks of a request before anything is stored or queued.
pub fn validate(request: &JobRequest) -> Result<(), SubmitError> {
    let invalid = |message: &str| Err(SubmitError::Invalid(message.to_owned()));
    let (profile, src, command) = match request {
        JobRequest::Run(run) => (&run.profile, &run.src, &run.command),
        JobRequest::Build(build) => {
            if !build.artifact.is_absolute() {
                return invalid("`artifact` must be an absolute path");
            }
            if build.extract.as_ref().is_some_and(|dir| !dir.is_absolute()) {
                return invalid("`extract` must be an absolute path");
            }
            (&build.profile, &build.src, &build.command)
        }
    };
    if profile.is_empty() {
        return invalid("`profile` is empty");
    }
    if !src.is_absolute() {
        return invalid("`src` must be an absolute path");
    }
    if command.is_empty() {
        return invalid("`command` is empty");
    }
    Ok(())
}
