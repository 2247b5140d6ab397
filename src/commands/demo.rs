//! `statectl demo`: the reference experiment end to end, through the same
//! code paths as the commands: train (model `demo`, replaced on a rerun),
//! then the five cases of DESIGN's table, each check shown passing or
//! failing. Leaves tags `case1`..`case5` on the states each case left.

use anyhow::Result;
use serde_json::json;

use super::context::Context;
use super::predict::{run_and_record, PredictReport};
use super::restore::restore_to;
use super::train::{record_training, reference_plan, run_training};
use super::EXIT_DIFFERENT;
use crate::tensors::Tensor;

fn bits(values: &[f32]) -> Vec<u32> {
    values.iter().map(|v| v.to_bits()).collect()
}

pub fn run(ctx: &Context) -> Result<i32> {
    let plan = reference_plan();
    ctx.out.status(
        "training the reference model: alphabet data, LSTM(16), batch 6, 2 epochs, stateful",
    );
    let report = run_training(ctx, &plan)?;
    let model = record_training(ctx, "demo", true, &plan, &report)?;
    let losses: Vec<String> = report.losses.iter().map(|l| format!("{l:.4}")).collect();
    ctx.out.status(format!(
        "model 'demo' weights {}, losses {}",
        model.record.weights.short(),
        losses.join(" -> ")
    ));

    // Six copies of the first window (0, 1/27, 2/27).
    let window = &plan.data.x.data[..3];
    let x = Tensor::new(vec![6, 3, 1], window.repeat(6));
    let out = model.config.output_size;
    let trained = ctx
        .head(&model, "main")?
        .ok_or_else(|| anyhow::anyhow!("training left no state"))?;
    let predict = |tag: &str| -> Result<PredictReport> {
        run_and_record(ctx, &model, "main", &x, None, true, Some((tag, true)))
    };

    let case1 = predict("case1")?;
    let case2 = predict("case2")?;
    ctx.store
        .write(|_| restore_to(ctx, &model, "main", trained, None))?;
    let case3 = predict("case3")?;
    ctx.store.write(|_| ctx.reset_to_zeros(&model, "main", 6))?;
    let case4 = predict("case4")?;
    ctx.store
        .write(|_| restore_to(ctx, &model, "main", trained, Some(vec![0; 6])))?;
    let case5 = predict("case5")?;

    let rows = |r: &PredictReport| -> Vec<Vec<u32>> {
        r.prediction.outputs.chunks(out).map(bits).collect()
    };
    let (r1, r2, r3, r4, r5) = (
        rows(&case1),
        rows(&case2),
        rows(&case3),
        rows(&case4),
        rows(&case5),
    );
    let all_distinct = (0..6).all(|i| (i + 1..6).all(|j| r1[i] != r1[j]));
    let checks = [
        ("case 1: the state training left gives six different rows", all_distinct),
        ("case 2: predicting again without a reset gives other numbers", r2 != r1),
        (
            "case 3: restoring the case-1 state reproduces case 1 bit for bit (outputs and new state)",
            r3 == r1 && bits(&case3.prediction.logits) == bits(&case1.prediction.logits) && case3.state_after == case1.state_after,
        ),
        ("case 4: from zeros all six rows are bit-identical", r4.iter().all(|r| *r == r4[0])),
        ("case 5: slot 0 broadcast to every slot gives case 1's row 0 in every row, bit for bit", r5.iter().all(|r| *r == r1[0])),
    ];
    let cases = [&case1, &case2, &case3, &case4, &case5];
    let class0 = |r: &PredictReport| -> Vec<f32> {
        r.prediction.outputs.chunks(out).map(|row| row[0]).collect()
    };
    let passed = checks.iter().all(|(_, ok)| *ok);
    let case_json: Vec<serde_json::Value> = cases
        .iter()
        .enumerate()
        .map(|(i, r)| {
            json!({
                "case": i + 1,
                "class0": class0(r),
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
    ctx.out.emit(
        json!({"model": "demo", "weights": model.record.weights.hex(), "losses": report.losses, "cases": case_json, "checks": check_json, "passed": passed}),
        || {
            let mut text = String::from("class-0 probability of each row:\n");
            for (i, r) in cases.iter().enumerate() {
                let p: Vec<String> = class0(r).iter().map(|v| format!("{v:.10}")).collect();
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
        ctx.out.status("\nall five checks pass. Next: `statectl log --model demo`, `statectl diff case1 case2`");
        Ok(0)
    } else {
        ctx.out
            .status("a check failed: the state handling above is not exact on this machine");
        Ok(EXIT_DIFFERENT)
    }
}
