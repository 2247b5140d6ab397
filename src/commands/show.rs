//! `statectl show REF`: one state's layout, slots, tags, origin and
//! per-tensor statistics.

use anyhow::Result;
use serde_json::json;

use super::context::Context;
use crate::cli::ShowArgs;

pub fn run(ctx: &Context, args: ShowArgs) -> Result<i32> {
    let model = ctx.optional_model(args.stream.model.as_deref())?;
    let resolved = ctx.resolve(&args.reference, model.as_ref(), &args.stream.stream, None)?;
    let (id, value) = (resolved.id, resolved.value);
    let tags = ctx.store.tags_of(&id)?;
    let origin = ctx.store.origin_of(&id)?;
    // (layer, tensor, [min, max, mean, mean|x|]); NaN and infinities are
    // kept (JSON shows them as null, people see them as NaN and inf).
    let mut stats = Vec::new();
    for (layer, _) in value.layout.units.iter().enumerate() {
        for (k, name) in value.layout.cell.tensors().iter().enumerate() {
            let data = value.layer_tensor(layer, k);
            let n = data.len() as f64;
            let nan = data.iter().any(|v| v.is_nan());
            let pick = |f: fn(f32, f32) -> f32, start: f32| {
                if nan {
                    f64::NAN
                } else {
                    data.iter().copied().fold(start, f) as f64
                }
            };
            let min = pick(f32::min, f32::INFINITY);
            let max = pick(f32::max, f32::NEG_INFINITY);
            let mean = data.iter().map(|v| *v as f64).sum::<f64>() / n;
            let mean_abs = data.iter().map(|v| v.abs() as f64).sum::<f64>() / n;
            stats.push((layer, *name, [min, max, mean, mean_abs]));
        }
    }
    let stats_json: Vec<serde_json::Value> = stats
        .iter()
        .map(|(layer, name, [min, max, mean, mean_abs])| {
            json!({"layer": layer, "tensor": name, "min": min, "max": max, "mean": mean, "mean_abs": mean_abs})
        })
        .collect();
    let slots: Vec<String> = value.encoded_slots().iter().map(|(s, _)| s.hex()).collect();
    // Per tensor, one row of numbers per slot.
    let mut values = serde_json::Map::new();
    if args.values {
        for (layer, units) in value.layout.units.iter().enumerate() {
            for (k, name) in value.layout.cell.tensors().iter().enumerate() {
                let data = value.layer_tensor(layer, k);
                let rows: Vec<&[f32]> = data.chunks(*units).collect();
                values.insert(format!("l{layer}.{name}"), json!(rows));
            }
        }
    }
    let mut json = json!({
            "state": id.hex(),
            "layout": value.layout.to_string(),
            "batch": value.batch(),
            "slots": slots,
            "tags": tags,
            "origin": origin.as_ref().map(super::render::event_json),
            "stats": stats_json,
    });
    if args.values {
        json["values"] = serde_json::Value::Object(values.clone());
    }
    ctx.emit(json, || {
        let mut text = format!(
            "state   {}\nlayout  {}\nbatch   {}\ntags    {}\n",
            id.hex(),
            value.layout,
            value.batch(),
            if tags.is_empty() {
                "-".to_string()
            } else {
                tags.join(", ")
            }
        );
        if let Some(e) = &origin {
            let what = super::render::describe(ctx, e);
            text.push_str(&format!(
                "origin  event {} ({}{}){}\n",
                e.id,
                e.kind,
                e.model_name
                    .as_ref()
                    .map(|m| format!(", model '{m}'"))
                    .unwrap_or_default(),
                if what.is_empty() { String::new() } else { format!(": {what}") }
            ));
        }
        // Runs of equal slots on one line: a broadcast is one line, not 32.
        let mut i = 0;
        while i < slots.len() {
            let run = slots[i..].iter().take_while(|s| **s == slots[i]).count();
            let which = if run == 1 {
                format!("slot {i}")
            } else {
                format!("slots {i}-{}", i + run - 1)
            };
            text.push_str(&format!("{which:<12}  {}\n", &slots[i][..12]));
            i += run;
        }
        for (layer, name, [min, max, mean, mean_abs]) in &stats {
            text.push_str(&format!(
                "l{layer}.{name}  min {min:.6}  max {max:.6}  mean {mean:.6}  mean|x| {mean_abs:.6}\n"
            ));
        }
        if args.values {
            for (layer, units) in value.layout.units.iter().enumerate() {
                for (k, name) in value.layout.cell.tensors().iter().enumerate() {
                    let data = value.layer_tensor(layer, k);
                    for (slot, row) in data.chunks(*units).enumerate() {
                        // Shortest text that reads back as the same float32.
                        let nums: Vec<String> = row.iter().map(|v| format!("{v}")).collect();
                        text.push_str(&format!("l{layer}.{name} slot {slot}: {}\n", nums.join(" ")));
                    }
                }
            }
        }
        text
    });
    Ok(0)
}
