//! Work that synchronous code hands to another thread and may wait for later (a job's log
//! relay, streaming a source too large for its pipe, reaping a sandbox's helper). Inside
//! the daemon it runs on the tokio runtime's blocking pool, whose idle threads are kept and
//! reused: a job does not pay for creating a thread (its stack, its malloc arena) and
//! tearing it down again for each of them. Elsewhere (the CLI runs no runtime) it gets a
//! thread of its own.

/// Work running in the background; [`Background::join`] waits for its result.
pub struct Background<T>(Running<T>);

enum Running<T> {
    Pooled(std::sync::mpsc::Receiver<T>),
    Thread(std::thread::JoinHandle<T>),
}

/// Whether this thread runs inside a tokio runtime (a blocking task counts): the daemon,
/// not the CLI.
pub fn in_runtime() -> bool {
    tokio::runtime::Handle::try_current().is_ok()
}

/// Starts `work` on the runtime's blocking pool when called from inside a tokio runtime
/// ([`in_runtime`]), else on a new thread named `name`.
pub fn spawn<T: Send + 'static>(
    name: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> std::io::Result<Background<T>> {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        let (result, receiver) = std::sync::mpsc::sync_channel(1);
        runtime.spawn_blocking(move || {
            // The receiver may have been dropped: nobody waits for the result.
            let _ = result.send(work());
        });
        return Ok(Background(Running::Pooled(receiver)));
    }
    std::thread::Builder::new()
        .name(name.into())
        .spawn(work)
        .map(|thread| Background(Running::Thread(thread)))
}

/// The blocking pool of the runtime a thread runs in, to hand on to the threads it starts:
/// a thread of its own is outside the runtime, and what it hands to the background (the
/// second run of a dual build reaping its helper) would otherwise get a thread, or in the
/// CLI's manner be left to the process's exit, which never comes in the daemon.
#[derive(Clone)]
pub struct Pool(Option<tokio::runtime::Handle>);

impl Pool {
    /// The current thread's pool, if it runs inside a runtime.
    pub fn current() -> Pool {
        Pool(tokio::runtime::Handle::try_current().ok())
    }

    /// Makes the calling thread use this pool until the guard is dropped.
    pub fn enter(&self) -> Option<tokio::runtime::EnterGuard<'_>> {
        self.0.as_ref().map(tokio::runtime::Handle::enter)
    }
}

impl<T> Background<T> {
    /// Waits for the work to end; its result, or None if it panicked.
    pub fn join(self) -> Option<T> {
        match self.0 {
            Running::Pooled(receiver) => receiver.recv().ok(),
            Running::Thread(thread) => thread.join().ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_runtime_the_work_gets_a_named_thread() {
        let work = spawn("hermetic-test", || {
            std::thread::current().name().map(String::from)
        });
        assert_eq!(work.unwrap().join(), Some(Some("hermetic-test".into())));
    }

    #[test]
    fn inside_a_runtime_the_blocking_pool_runs_it_and_reuses_its_thread() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let thread_of = || {
            let _inside = runtime.enter();
            spawn("unused", || std::thread::current().id())
                .unwrap()
                .join()
                .unwrap()
        };
        let first = thread_of();
        assert_ne!(first, std::thread::current().id());
        assert_eq!(thread_of(), first, "an idle pool thread is reused");
    }

    #[test]
    fn a_thread_started_inside_a_runtime_can_use_its_pool() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let _inside = runtime.enter();
        let pool = Pool::current();
        let in_runtime_on_a_new_thread = |pool: Option<Pool>| {
            std::thread::spawn(move || {
                let _entered = pool.as_ref().and_then(Pool::enter);
                in_runtime()
            })
            .join()
            .unwrap()
        };
        assert!(!in_runtime_on_a_new_thread(None));
        assert!(in_runtime_on_a_new_thread(Some(pool)));
    }

    #[test]
    fn a_panic_in_the_work_is_none() {
        let work = spawn("hermetic-test", || -> u8 { panic!("on purpose") }).unwrap();
        assert_eq!(work.join(), None);
    }
}
