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
    let mut stats = Vec::new();
    for (layer, _) in value.layout.units.iter().enumerate() {
        for (k, name) in value.layout.cell.tensors().iter().enumerate() {
            let data = value.layer_tensor(layer, k);
            let n = data.len() as f64;
            let min = data.iter().copied().fold(f32::INFINITY, f32::min);
            let max = data.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mean = data.iter().map(|v| *v as f64).sum::<f64>() / n;
            let mean_abs = data.iter().map(|v| v.abs() as f64).sum::<f64>() / n;
            stats.push(json!({"layer": layer, "tensor": name, "min": min, "max": max, "mean": mean, "mean_abs": mean_abs}));
        }
    }
    let slots: Vec<String> = value
        .encoded_slots()
        .iter()
        .map(|(s, _)| s.hex())
        .collect();
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
            "origin": origin.as_ref().map(super::log::event_json),
            "stats": stats,
    });
    if args.values {
        json["values"] = serde_json::Value::Object(values.clone());
    }
    ctx.out.emit(json, || {
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
            text.push_str(&format!(
                "origin  event {} ({}{})\n",
                e.id,
                e.kind,
                e.model_name
                    .as_ref()
                    .map(|m| format!(", model '{m}'"))
                    .unwrap_or_default()
            ));
        }
        for (i, slot) in slots.iter().enumerate() {
            text.push_str(&format!("slot {i:>4}  {}\n", &slot[..12]));
        }
        for s in &stats {
            text.push_str(&format!(
                "l{}.{}  min {:.6}  max {:.6}  mean {:.6}  mean|x| {:.6}\n",
                s["layer"],
                s["tensor"].as_str().unwrap_or(""),
                s["min"].as_f64().unwrap_or(0.0),
                s["max"].as_f64().unwrap_or(0.0),
                s["mean"].as_f64().unwrap_or(0.0),
                s["mean_abs"].as_f64().unwrap_or(0.0)
            ));
        }
        for (name, rows) in &values {
            for (slot, row) in rows.as_array().into_iter().flatten().enumerate() {
                let nums: Vec<String> = row
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|v| format!("{:.7}", v.as_f64().unwrap_or(0.0)))
                    .collect();
                text.push_str(&format!("{name} slot {slot}: {}\n", nums.join(" ")));
            }
        }
        text
    });
    Ok(0)
}
