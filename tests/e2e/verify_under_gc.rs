//! `verify` beside gc: gc compacts packs and deletes the old ones once its
//! transaction commits; a verify that runs meanwhile reads one consistent
//! view and never reports a healthy store as broken.

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
