//! `statectl diff A B`: compare two states of one layout and batch size.

use anyhow::{bail, Result};
use serde_json::json;

use super::context::Context;
use super::EXIT_DIFFERENT;
use crate::cli::DiffArgs;
use crate::input::read_input;
use crate::model::predict;
use crate::ops::predict::check_batch;
use crate::replay::staleness;
use crate::state::compare;

pub fn run(ctx: &Context, args: DiffArgs) -> Result<i32> {
    let model = ctx.optional_model(args.stream.model.as_deref())?;
    let stream = &args.stream.stream;
    // `zeros` takes the batch size of the state it is compared with.
    let (a, b) = if args.a == "zeros" {
        let b = ctx.resolve(&args.b, model.as_ref(), stream, None)?;
        let batch = b.value.batch();
        (
            ctx.resolve(&args.a, model.as_ref(), stream, Some(batch))?,
            b,
        )
    } else {
        let a = ctx.resolve(&args.a, model.as_ref(), stream, None)?;
        let batch = a.value.batch();
        (
            a,
            ctx.resolve(&args.b, model.as_ref(), stream, Some(batch))?,
        )
    };
    let (a_id, b_id, a, b) = (a.id, b.id, a.value, b.value);
    if a.layout != b.layout {
        bail!(
            "cannot compare: {} has layout {} but {} has {}",
            args.a,
            a.layout,
            args.b,
            b.layout
        );
    }
    if a.batch() != b.batch() {
        bail!(
            "cannot compare: {} has {} slot(s) but {} has {}; restore a selection with --slots to compare like with like",
            args.a,
            a.batch(),
            args.b,
            b.batch()
        );
    }
    let cmp = compare(&a, &b);
    let outputs = match &args.input {
        None => None,
        Some(input) => {
            let model = model.as_ref().ok_or_else(|| {
                anyhow::anyhow!(
                    "diff --input runs a model; this store has none: import or train one first"
                )
            })?;
            model.check_layout(&a, &a_id.short())?;
            let x = read_input(input, model.config.input_size)?;
            check_batch(&a, &a_id.short(), x.shape[0])?;
            let weights = ctx.weights(model)?;
            let ya = predict(&weights, &x, &a)?;
            let yb = predict(&weights, &x, &b)?.outputs;
            // Per-step outputs are compared at every step.
            let steps = if ya.shape.len() == 3 { ya.shape[1] } else { 1 };
            Some(staleness(&ya.outputs, &yb, model.config.output_size, steps))
        }
    };
    let different = match args.tolerance {
        Some(t) => cmp.max_abs > t,
        None => !cmp.bit_equal,
    };
    let mut json = json!({
        "a": a_id.hex(),
        "b": b_id.hex(),
        "layout": a.layout.to_string(),
        "batch": cmp.batch,
        "bit_equal": cmp.bit_equal,
        "max_abs": cmp.max_abs,
        "tolerance": args.tolerance,
        "different": different,
        "layers": cmp.layers,
    });
    if args.per_slot {
        json["slots"] = serde_json::to_value(&cmp.slots)?;
    }
    if let Some(o) = &outputs {
        json["outputs"] = serde_json::to_value(o)?;
    }
    ctx.emit(json, || {
        let mut text = format!(
            "{} ({}) vs {} ({}): {}, batch {}\n{:<6} {:>12} {:>12} {:>12} {:>10} {:>10}\n",
            args.a,
            a_id.short(),
            args.b,
            b_id.short(),
            a.layout,
            cmp.batch,
            "TENSOR",
            "MAX|A-B|",
            "MEAN|A-B|",
            "RMS",
            "COSINE",
            "BIT-EQUAL"
        );
        for l in &cmp.layers {
            text.push_str(&format!(
                "l{}.{:<3} {:>12.4e} {:>12.4e} {:>12.4e} {:>10.6} {:>6}/{}\n",
                l.layer,
                l.tensor,
                l.max_abs,
                l.mean_abs,
                l.rms,
                l.cosine,
                l.bit_equal_slots,
                cmp.batch
            ));
        }
        if args.per_slot {
            for s in &cmp.slots {
                text.push_str(&format!(
                    "slot {:>4}  max|a-b| {:.4e}  {}\n",
                    s.slot,
                    s.max_abs,
                    if s.bit_equal { "bit-equal" } else { "differs" }
                ));
            }
        }
        if let Some(o) = &outputs {
            let over = if o.steps > 1 {
                format!(" over {} steps", o.steps)
            } else {
                String::new()
            };
            text.push_str(&format!(
                "outputs on the input{over}: staleness max|y_a - y_b| / max|y_a| = {:.4e} (max |y_a - y_b| {:.4e}); per slot: mean {:.4e}, max {:.4e}\n",
                o.overall, o.max_abs, o.mean_over_slots, o.max_over_slots
            ));
            if args.per_slot {
                for (slot, v) in o.per_slot.iter().enumerate() {
                    let mean = if o.steps > 1 {
                        format!(" (mean over steps {:.4e})", o.per_slot_mean_over_steps[slot])
                    } else {
                        String::new()
                    };
                    text.push_str(&format!("slot {slot:>4}  staleness {v:.4e}{mean}\n"));
                }
            }
        }
        let changed: Vec<String> = cmp
            .slots
            .iter()
            .filter(|s| !s.bit_equal)
            .map(|s| s.slot.to_string())
            .collect();
        // The verdict agrees with `different` and the exit code.
        text.push_str(&match (cmp.bit_equal, different, args.tolerance) {
            (true, _, _) => "bit-equal\n".to_string(),
            (false, false, Some(t)) => format!(
                "equal within tolerance {t:e} (largest difference {:.4e}; not bit-equal in slot(s) {})\n",
                cmp.max_abs,
                changed.join(", ")
            ),
            _ => format!("differ in slot(s) {}\n", changed.join(", ")),
        });
        text
    });
    Ok(if args.exit_code && different {
        EXIT_DIFFERENT
    } else {
        0
    })
}
