//! Bounds a user can rely on: a state wider than the documented 4,096
//! units is refused, a state of 65,536 slots plots to a chart of bounded
//! size, and a chart of a state holding NaN or infinities says so.

use statectl::tensors::Tensor;

use super::util::*;

#[test]
fn a_layer_wider_than_4096_units_is_refused_and_changes_nothing() {
    let env = Env::new();
    env.ok(&["init"]);
    let wide = env.write_tensors(
        "wide.safetensors",
        &[("l0.h", Tensor::new(vec![1, 100_000], vec![0.5; 100_000]))],
    );
    env.fails(
        &["import", s(&wide)],
        1,
        "more than the 4096 a layer may have",
    );
    let ok = env.write_tensors(
        "ok.safetensors",
        &[("l0.h", Tensor::new(vec![1, 4096], vec![0.5; 4096]))],
    );
    env.ok(&["import", s(&ok)]);
}

#[test]
fn a_huge_state_plots_in_blocks_and_the_file_stays_small() {
    let env = Env::new();
    env.ok(&["init"]);
    let (rows, units) = (65_536, 256);
    let values: Vec<f32> = (0..rows * units)
        .map(|i| ((i % 977) as f32 * 0.01).sin())
        .collect();
    let big = env.write_tensors(
        "big.safetensors",
        &[("l0.h", Tensor::new(vec![rows, units], values))],
    );
    env.ok(&["import", s(&big), "--tag", "big"]);
    let svg = env.path("big.svg");
    env.ok(&["plot", "state", "big", "-o", s(&svg)]);
    let size = std::fs::metadata(&svg).unwrap().len();
    assert!(
        size < 64 << 20,
        "the SVG of a 65536 x 256 state is {size} bytes"
    );
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(
        text.contains("a cell = 128 slot(s) x 1 unit(s)"),
        "no block note"
    );
}

#[test]
fn a_chart_of_a_state_with_nan_and_inf_counts_them() {
    let env = Env::new();
    env.ok(&["init"]);
    let mut values = vec![0.25f32; 2 * 8];
    values[3] = f32::NAN;
    values[9] = f32::INFINITY;
    values[10] = f32::NEG_INFINITY;
    let odd = env.write_tensors(
        "odd.safetensors",
        &[("l0.h", Tensor::new(vec![2, 8], values))],
    );
    env.ok(&["import", s(&odd), "--tag", "odd", "--allow-nonfinite"]);
    let svg = env.path("odd.svg");
    env.ok(&["plot", "state", "odd", "-o", s(&svg)]);
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(
        text.contains("|max| 0.250 of finite values; 1 NaN, 2 inf in grey"),
        "caption lacks the count"
    );
}

#[test]
fn predict_with_an_output_that_cannot_be_moved_into_place_records_nothing() {
    // An immutable target (chattr +i) lets the checks and the temp file
    // through and refuses only the final rename, even to root.
    let env = Env::new();
    env.ok(&["demo"]);
    let x = env.path("x.csv");
    std::fs::write(&x, "0,0.1,0.2\n".repeat(6)).unwrap();
    let target = env.path("out.safetensors");
    std::fs::write(&target, b"old").unwrap();
    let immutable = std::process::Command::new("chattr")
        .arg("+i")
        .arg(&target)
        .status()
        .is_ok_and(|s| s.success());
    if !immutable {
        println!("skipped: chattr +i is not available on this file system, so no rename can be made to fail");
        return;
    }
    let before = env.fingerprint();
    let run = env.run(&["predict", "--input", s(&x), "-o", s(&target)]);
    let _ = std::process::Command::new("chattr")
        .arg("-i")
        .arg(&target)
        .status();
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains("cannot move the finished file into place"),
        "{}",
        run.stderr
    );
    assert_eq!(env.fingerprint(), before, "the prediction was recorded");
    assert_eq!(std::fs::read(&target).unwrap(), b"old");
    let leftovers: Vec<_> = std::fs::read_dir(env.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn huge_patterns_match_without_a_stack_overflow_and_are_shortened_in_errors() {
    let env = Env::new();
    env.ok(&["demo"]);
    let stars = env.path("stars.txt");
    std::fs::write(&stars, "*".repeat(300_000) + "\n").unwrap();
    let out = env.path("all.safetensors");
    env.ok(&["export", "--refs-from", s(&stars), "-o", s(&out)]);
    let nothing = env.path("nothing.txt");
    std::fs::write(&nothing, "x".repeat(1 << 20) + "*\n").unwrap();
    env.fails(
        &["export", "--refs-from", s(&nothing), "-o", s(&out)],
        1,
        "(1048577 characters)",
    );
    let run = env.run(&["export", "--refs-from", s(&nothing), "-o", s(&out)]);
    assert!(
        run.stderr.len() < 1000,
        "the error echoed {} bytes",
        run.stderr.len()
    );
}
