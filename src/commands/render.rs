//! How journal events look in JSON, shared by `log` and `show`.

use serde_json::json;

use crate::store::EventRecord;

/// One event as the JSON contract (README) gives it.
pub fn event_json(e: &EventRecord) -> serde_json::Value {
    json!({
        "event": e.id,
        "kind": e.kind,
        "at": e.at,
        "model": e.model_name,
        "stream": e.stream,
        "state_before": e.state_before.map(|s| s.hex()),
        "state_after": e.state_after.map(|s| s.hex()),
        "input": e.input.map(|s| s.hex()),
        "output": e.output.map(|s| s.hex()),
        "tag": e.tag,
        "detail": serde_json::from_str::<serde_json::Value>(&e.detail).unwrap_or_default(),
    })
}
