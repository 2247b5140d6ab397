//! gc beside other commands: a verify that runs while gc compacts packs
//! reads one consistent view and never reports a healthy store as broken;
//! writers that append while gc copies live slots outside the write lock
//! lose nothing; a second gc is refused while one runs.

use std::sync::atomic::{AtomicBool, Ordering};

use super::packs::bulk_file;
use super::util::*;

/// How many verifies run beside the gc loop (the bar is 500).
const VERIFIES: usize = 500;

#[test]
fn verify_in_a_loop_beside_gc_compaction_in_a_loop_finds_no_false_problem() {
    let env = Env::new();
    let live = bulk_file(&env, "live.safetensors", 40, 0.0);
    env.ok(&["import", s(&live), "--per-slot", "--tag-prefix", "keep/"]);
    let churn: Vec<_> = (0..4)
        .map(|k| bulk_file(&env, &format!("churn{k}.safetensors"), 120, 1.0 + k as f32))
        .collect();
    let done = AtomicBool::new(false);
    let (mut compactions, mut false_problems) = (0usize, Vec::new());
    std::thread::scope(|scope| {
        let gc_loop = scope.spawn(|| {
            let mut cycles = 0;
            let mut k = 0;
            while !done.load(Ordering::Relaxed) {
                // Untagged states live only through their import event:
                // dropping the journal makes them dead, and the pack that
                // holds them mostly dead, so each gc compacts it.
                env.ok(&["-q", "import", s(&churn[k % churn.len()]), "--per-slot"]);
                env.ok(&["-q", "gc", "--keep-events-since", "0s"]);
                cycles += 1;
                k += 1;
            }
            cycles
        });
        for _ in 0..VERIFIES {
            let run = env.run(&["verify"]);
            if run.code != 0 {
                false_problems.push(format!("{}{}", run.stdout, run.stderr));
            }
        }
        done.store(true, Ordering::Relaxed);
        compactions = gc_loop.join().unwrap();
    });
    println!(
        "{VERIFIES} verifies beside {compactions} import+gc cycles: {} false problem(s)",
        false_problems.len()
    );
    assert!(compactions >= 5, "gc ran only {compactions} times");
    assert!(
        false_problems.is_empty(),
        "{} of {VERIFIES} verifies failed; first:\n{}",
        false_problems.len(),
        false_problems[0]
    );
    // The tagged states came through every compaction.
    assert_eq!(env.json(&["verify"])["report"]["tags"], 40);
}

#[test]
fn imports_during_a_compaction_lose_nothing_and_gc_runs_one_at_a_time() {
    let env = Env::new();
    let live = bulk_file(&env, "live.safetensors", 200, 0.0);
    env.ok(&["import", s(&live), "--per-slot", "--tag-prefix", "keep/"]);
    let dead = bulk_file(&env, "dead.safetensors", 600, 7.0);
    let done = AtomicBool::new(false);
    // Stops the writer however the loop below ends (a failed assertion
    // must not leave the scope waiting for it).
    struct StopOnDrop<'a>(&'a AtomicBool);
    impl Drop for StopOnDrop<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }
    let mut written = Vec::new();
    let mut refused_second_gc = 0;
    std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            let mut k = 0;
            let mut tags = Vec::new();
            while !done.load(Ordering::Relaxed) || k < 5 {
                let file = bulk_file(&env, &format!("w{k}.safetensors"), 4, 100.0 + k as f32);
                let prefix = format!("w{k}/");
                env.ok(&[
                    "-q",
                    "import",
                    s(&file),
                    "--per-slot",
                    "--tag-prefix",
                    &prefix,
                ]);
                tags.push((file, prefix));
                k += 1;
            }
            tags
        });
        let stop = StopOnDrop(&done);
        for _ in 0..6 {
            // Dead bytes for the gc below to compact (untagged, and their
            // import event dropped by the gc).
            env.ok(&["-q", "import", s(&dead), "--per-slot"]);
            // Two gcs at once: one runs, the other is refused (or, if the
            // first finished already, runs after it).
            let first = scope.spawn(|| env.run(&["-q", "gc", "--keep-events-since", "0s"]));
            let second = env.run(&["-q", "gc", "--keep-events-since", "0s"]);
            let first = first.join().unwrap();
            let runs = [first, second];
            assert!(
                runs.iter().any(|r| r.code == 0),
                "no gc ran: {}",
                runs[0].stderr
            );
            for run in runs.iter().filter(|r| r.code != 0) {
                assert!(
                    run.stderr.contains("another gc is running"),
                    "{}",
                    run.stderr
                );
                refused_second_gc += 1;
            }
        }
        drop(stop);
        written = writer.join().unwrap();
    });
    println!(
        "{} imports beside 6 compacting gcs; {refused_second_gc} second gc(s) refused while one ran",
        written.len()
    );
    let verify = env.json(&["verify"]);
    assert_eq!(verify["ok"], true, "{verify}");
    for (file, prefix) in &written {
        let out = env.path("back.safetensors");
        env.ok(&["export", &format!("{prefix}3"), "-o", s(&out)]);
        let back = statectl::tensors::TensorFile::decode(&std::fs::read(&out).unwrap()).unwrap();
        let source = statectl::tensors::TensorFile::decode(&std::fs::read(file).unwrap()).unwrap();
        let row = |t: &statectl::tensors::Tensor| t.data[3 * 256..4 * 256].to_vec();
        assert_eq!(
            back.tensors["l0.h"].data,
            row(&source.tensors["l0.h"]),
            "{prefix}"
        );
    }
    for i in [0, 99, 199] {
        let out = env.path("keep.safetensors");
        env.ok(&["export", &format!("keep/{i}"), "-o", s(&out)]);
    }
}
