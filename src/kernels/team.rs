//! A team of threads that run the tasks of one time step together, a
//! hundred steps a batch.
//!
//! rayon suits work that comes in large pieces. A recurrent step is a few
//! hundred microseconds, and between two steps the calling thread has a
//! little serial work; rayon's idle workers go to sleep after a few dozen
//! microseconds, and waking one (a futex, then the VM's CPU) took long
//! enough that in a quarter of training's forward steps the calling thread
//! had run every task itself before the worker arrived. A team's helpers
//! spin (then yield) between steps instead, for as long as the loop that
//! made them runs, so they are at hand when the next step's tasks come.
//!
//! Which thread runs a task never changes what it computes: each task
//! writes its own rows or columns, so the bits are the same.

use std::any::Any;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Spins of a waiting thread before it starts yielding its CPU.
const SPINS_BEFORE_YIELD: u32 = 1 << 14;

/// A set of threads (the caller and `helpers`) for [`Team::run`].
pub struct Team<'a> {
    shared: &'a Shared,
}

/// What the caller and the helpers see.
struct Shared {
    /// Bumped once per [`Team::run`]: a helper that sees it change takes
    /// the job in `job`.
    round: AtomicUsize,
    job: Mutex<Option<Arc<Job>>>,
    stop: AtomicBool,
}

/// One run's tasks.
struct Job {
    /// `task(i)` for a claimed `i < n` (its lifetime erased: the caller
    /// keeps the closure alive until every claimed task is done).
    task: *const (dyn Fn(usize) + Sync),
    n: usize,
    next: AtomicUsize,
    done: AtomicUsize,
    panic: Mutex<Option<Box<dyn Any + Send>>>,
}

// SAFETY: `task` points to a `Sync` closure, called only while the thread
// that made the job waits for it (see `Job::work`) ...
unsafe impl Send for Job {}
// SAFETY: ... so sharing the job shares only that `Sync` closure and
// atomics.
unsafe impl Sync for Job {}

impl Job {
    /// Claims and runs tasks until none is left.
    fn work(&self) {
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            if i >= self.n {
                return;
            }
            // SAFETY: i < n was claimed, so the caller of `run` is still
            // waiting for this task (`done` has not reached n): the
            // closure is alive.
            let task = unsafe { &*self.task };
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| task(i)));
            if let Err(panic) = result {
                self.panic
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get_or_insert(panic);
            }
            self.done.fetch_add(1, Ordering::Release);
        }
    }
}

/// Waits until `ready()`, spinning first, then yielding the CPU.
fn wait_for(mut ready: impl FnMut() -> bool) {
    let mut spins = 0u32;
    while !ready() {
        if spins < SPINS_BEFORE_YIELD {
            spins += 1;
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
}

/// Runs `body` with a team of `threads` threads (the caller and
/// `threads - 1` helpers, which end when `body` returns).
pub fn with_team<R>(threads: usize, body: impl FnOnce(&Team) -> R) -> R {
    let shared = Shared {
        round: AtomicUsize::new(0),
        job: Mutex::new(None),
        stop: AtomicBool::new(false),
    };
    std::thread::scope(|scope| {
        for _ in 1..threads.max(1) {
            // A helper the system refuses only costs speed: the caller
            // runs every task no helper claims.
            let _ = std::thread::Builder::new().spawn_scoped(scope, || helper(&shared));
        }
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            body(&Team { shared: &shared })
        }));
        shared.stop.store(true, Ordering::Release);
        result.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// A helper: takes each round's job until the team stops.
fn helper(shared: &Shared) {
    let mut seen = 0;
    loop {
        let mut round = seen;
        wait_for(|| {
            round = shared.round.load(Ordering::Acquire);
            round != seen || shared.stop.load(Ordering::Acquire)
        });
        if round == seen {
            return;
        }
        seen = round;
        let job = shared.job.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(job) = job {
            job.work();
        }
    }
}

impl Team<'_> {
    /// Runs `task(i)` for every `i` in `0..n` on the team's threads and
    /// returns when all have run. A task's panic is raised here.
    pub fn run<F: Fn(usize) + Sync>(&self, n: usize, task: F) {
        let task: &(dyn Fn(usize) + Sync) = &task;
        // SAFETY: only the lifetime is erased; this function waits below
        // until every claimed task has run, so no call outlives `task`.
        let task: *const (dyn Fn(usize) + Sync) = unsafe { std::mem::transmute(task) };
        let job = Arc::new(Job {
            task,
            n,
            next: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
            panic: Mutex::new(None),
        });
        *self.shared.job.lock().unwrap_or_else(|p| p.into_inner()) = Some(job.clone());
        self.shared.round.fetch_add(1, Ordering::Release);
        job.work();
        wait_for(|| job.done.load(Ordering::Acquire) >= n);
        let panic = job.panic.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(panic) = panic {
            std::panic::resume_unwind(panic);
        }
    }
}

impl Team<'_> {
    /// Runs `f` on every item, on the team's threads (each item is its own
    /// task: disjoint rows or columns).
    pub fn for_each<T: Send>(&self, items: &mut [T], f: impl Fn(&mut T) + Sync) {
        let items: Vec<Mutex<&mut T>> = items.iter_mut().map(Mutex::new).collect();
        self.run(items.len(), |i| {
            f(&mut items[i].lock().unwrap_or_else(|p| p.into_inner()))
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_task_runs_once_per_run_whoever_runs_it() {
        for threads in 1..=3 {
            let counts: Vec<AtomicUsize> = (0..7).map(|_| AtomicUsize::new(0)).collect();
            with_team(threads, |team| {
                for _ in 0..200 {
                    team.run(counts.len(), |i| {
                        counts[i].fetch_add(1, Ordering::Relaxed);
                    });
                }
            });
            assert!(counts.iter().all(|c| c.load(Ordering::Relaxed) == 200));
        }
    }

    #[test]
    fn a_tasks_panic_reaches_the_caller_and_the_helpers_end() {
        let caught = std::panic::catch_unwind(|| {
            with_team(2, |team| {
                team.run(4, |i| assert!(i != 2, "task two fails"));
            })
        });
        assert!(caught.is_err());
    }
}
