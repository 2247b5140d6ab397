//! `statectl diff A B`: compare two states of one layout and batch size.

use anyhow::{anyhow, Result};

use super::context::Context;
use super::{Output, EXIT_DIFFERENT};
use crate::cli::DiffArgs;
use crate::input::read_input;
use crate::ops::backend::Backend;
use crate::ops::diff::{self, DiffReport, DiffRequest};
use crate::ops::refs::Scope;
use crate::shared::SharedStore;

pub fn run(ctx: &Context, args: DiffArgs) -> Result<i32> {
    compare(&mut Backend::Embedded(&ctx.store), &ctx.out, args)
}

pub fn run_on_shared(url: &str, out: &Output, args: DiffArgs) -> Result<i32> {
    let mut shared = SharedStore::open(url)?;
    compare(&mut Backend::Shared(&mut shared), out, args)
}

fn compare(backend: &mut Backend, out: &Output, args: DiffArgs) -> Result<i32> {
    let model = backend.optional_model(args.stream.model.as_deref())?;
    let input = match (&args.input, &model) {
        (None, _) => None,
        (Some(_), None) => {
            return Err(anyhow!(
                "diff --input runs a model; this store has none: import or train one first"
            ))
        }
        (Some(path), Some(model)) => Some(read_input(path, model.config.input_size)?),
    };
    let report = diff::run_on(
        backend,
        &DiffRequest {
            a: &args.a,
            b: &args.b,
            scope: Scope {
                model: model.as_ref(),
                stream: &args.stream.stream,
                zeros_batch: None,
            },
            per_slot: args.per_slot,
            tolerance: args.tolerance,
            input: input.as_ref(),
        },
    )?;
    out.emit(serde_json::to_value(&report)?, || text(&args, &report));
    Ok(if args.exit_code && report.different {
        EXIT_DIFFERENT
    } else {
        0
    })
}

fn text(args: &DiffArgs, r: &DiffReport) -> String {
    let mut text = format!(
        "{} ({}) vs {} ({}): {}, batch {}\n{:<6} {:>12} {:>12} {:>12} {:>10} {:>10}\n",
        args.a,
        r.a.short(),
        args.b,
        r.b.short(),
        r.layout,
        r.batch,
        "TENSOR",
        "MAX|A-B|",
        "MEAN|A-B|",
        "RMS",
        "COSINE",
        "BIT-EQUAL"
    );
    for l in &r.layers {
        text.push_str(&format!(
            "l{}.{:<3} {:>12.4e} {:>12.4e} {:>12.4e} {:>10.6} {:>6}/{}\n",
            l.layer, l.tensor, l.max_abs, l.mean_abs, l.rms, l.cosine, l.bit_equal_slots, r.batch
        ));
    }
    for s in r.slots.iter().flatten() {
        text.push_str(&format!(
            "slot {:>4}  max|a-b| {:.4e}  {}\n",
            s.slot,
            s.max_abs,
            if s.bit_equal { "bit-equal" } else { "differs" }
        ));
    }
    if let Some(o) = &r.outputs {
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
                    format!(
                        " (mean over steps {:.4e})",
                        o.per_slot_mean_over_steps[slot]
                    )
                } else {
                    String::new()
                };
                text.push_str(&format!("slot {slot:>4}  staleness {v:.4e}{mean}\n"));
            }
        }
    }
    let changed: Vec<String> = r
        .all_slots
        .iter()
        .filter(|s| !s.bit_equal)
        .map(|s| s.slot.to_string())
        .collect();
    // The verdict agrees with `different` and the exit code.
    text.push_str(&match (r.bit_equal, r.different, args.tolerance) {
        (true, _, _) => "bit-equal\n".to_string(),
        (false, false, Some(t)) => format!(
            "equal within tolerance {t:e} (largest difference {:.4e}; not bit-equal in slot(s) {})\n",
            r.max_abs,
            changed.join(", ")
        ),
        _ => format!("differ in slot(s) {}\n", changed.join(", ")),
    });
    text
}
