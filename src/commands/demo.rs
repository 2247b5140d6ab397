//! `statectl demo`: the reference experiment end to end (the operation is
//! `ops::demo`): train model `demo`, then the five cases of DESIGN's table,
//! each check shown passing or failing. Tags `trained`, `caseN/start` and
//! `caseN/end`.

use anyhow::Result;
use serde_json::json;

use super::context::Context;
use super::progress::TrainingProgress;
use super::EXIT_DIFFERENT;
use crate::cli::DemoArgs;
use crate::ops::demo;
use crate::ops::train::reference_plan;

pub fn run(ctx: &Context, args: DemoArgs) -> Result<i32> {
    demo::check_free(&ctx.store, args.force)?;
    let cell = args.cell.into();
    ctx.out.status(format!(
        "training the reference model: alphabet data, {}(16), batch 6, 2 epochs, stateful",
        crate::state::Cell::name(&cell).to_uppercase()
    ));
    let mut progress = TrainingProgress::new(ctx.out.quiet, &reference_plan(cell));
    let report = demo::run(&ctx.store, cell, args.force, &mut |p| progress.tick(p))?;
    progress.finish();
    let model = &report.model;
    let losses: Vec<String> = report
        .training
        .losses
        .iter()
        .map(|l| format!("{l:.4}"))
        .collect();
    ctx.out.status(format!(
        "model 'demo' weights {}, losses {}",
        model.record.weights.short(),
        losses.join(" -> ")
    ));
    let checks: Vec<(&str, bool)> = report.checks.iter().map(|c| (c.name, c.passed)).collect();
    let cases = &report.cases;
    let class0 = |i: usize| report.class0(i);
    let passed = checks.iter().all(|(_, ok)| *ok);
    let case_json: Vec<serde_json::Value> = cases
        .iter()
        .enumerate()
        .map(|(i, r)| {
            json!({
                "case": i + 1,
                "class0": class0(i),
                "state_before": r.state_before.hex(),
                "state_after": r.state_after.hex(),
                "event": r.event,
            })
        })
        .collect();
    let check_json: Vec<serde_json::Value> = checks
        .iter()
        .map(|(name, ok)| json!({"name": name, "passed": ok}))
        .collect();
    ctx.emit(
        json!({"model": "demo", "weights": model.record.weights.hex(), "losses": report.training.losses, "cases": case_json, "checks": check_json, "passed": passed}),
        || {
            let mut text = String::from("class-0 probability of each row:\n");
            for i in 0..cases.len() {
                let p: Vec<String> = class0(i).iter().map(|v| format!("{v:.10}")).collect();
                text.push_str(&format!("case{} {}\n", i + 1, p.join(" ")));
            }
            text.push('\n');
            for (name, ok) in &checks {
                text.push_str(&format!("[{}] {name}\n", if *ok { "pass" } else { "FAIL" }));
            }
            text
        },
    );
    if passed {
        ctx.out.status("\nall five checks pass. Next: `statectl log --model demo`, `statectl diff case1/end case2/end`, `statectl restore trained`");
        Ok(0)
    } else {
        ctx.out
            .status("a check failed: the state handling above is not exact on this machine");
        Ok(EXIT_DIFFERENT)
    }
}
