//! Refs: a tag, a state id prefix (4+ hex digits), `HEAD`, `HEAD~N` or
//! `zeros`, resolved to a state and its (re-hashed) value. Resolution only
//! reads: `zeros` is computed, and stored only by an operation that keeps
//! it.

use anyhow::{anyhow, bail, Result};

use super::models::Model;
use super::streams;
use crate::id::StateId;
use crate::state::StateValue;
use crate::store::{Store, StoreError};

/// A resolved ref: the state's id and its numbers.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub id: StateId,
    pub value: StateValue,
    /// False for `zeros` of a batch size the store does not hold yet.
    pub stored: bool,
}

/// Where a ref is looked up: the model and stream `HEAD` and `zeros` refer
/// to, and the batch size `zeros` takes when the caller knows it.
#[derive(Clone, Copy)]
pub struct Scope<'a> {
    pub model: Option<&'a Model>,
    pub stream: &'a str,
    pub zeros_batch: Option<usize>,
}

/// Parses the N of `HEAD~N`; `None` when `text` is not a HEAD ref.
fn head_offset(text: &str) -> Result<Option<u64>> {
    if text == "HEAD" {
        return Ok(Some(0));
    }
    let Some(n) = text.strip_prefix("HEAD~") else {
        return Ok(None);
    };
    match n.parse::<u64>() {
        // SQLite's OFFSET is a signed 64-bit number.
        Ok(back) if back <= i64::MAX as u64 => Ok(Some(back)),
        Ok(_) => bail!("bad ref '{text}': N is too large; a stream has far fewer states"),
        Err(_) => bail!("bad ref '{text}': write HEAD~N with N a whole number, e.g. HEAD~1"),
    }
}

/// Resolves `text` to a state id without loading it. `zeros` gets the id
/// it would have.
pub fn resolve_id(
    store: &Store,
    text: &str,
    scope: Scope,
) -> Result<(StateId, Option<StateValue>)> {
    let needs_model = head_offset(text).ok().flatten().is_some() || text == "zeros";
    if needs_model && scope.model.is_none() && store.list_models()?.is_empty() {
        return Err(StoreError::NoModels.into());
    }
    if let Some(back) = head_offset(text)? {
        let model = scope
            .model
            .ok_or_else(|| anyhow!("'{text}' needs a model; pass --model NAME"))?;
        let stream = scope.stream;
        if back == 0 {
            return Ok((streams::head(store, model, stream)?.ok_or_else(|| {
                anyhow!(
                    "stream '{stream}' of model '{}' has no state yet; run `statectl predict` or `statectl reset` on it first",
                    model.record.name
                )
            })?, None));
        }
        return match store.stream_move(model.record.id, stream, back)? {
            Some(state) => Ok((state, None)),
            None => {
                let moves = store.stream_move_count(model.record.id, stream)?;
                bail!(
                    "'{text}' goes past the start of stream '{stream}' of model '{}': it has {moves} state(s), so HEAD~{} is the oldest",
                    model.record.name,
                    moves.saturating_sub(1)
                )
            }
        };
    }
    if text == "zeros" {
        let model = scope
            .model
            .ok_or_else(|| anyhow!("'zeros' needs a model for its layout; pass --model NAME"))?;
        let batch = match scope.zeros_batch {
            Some(b) => b,
            None => match streams::head(store, model, scope.stream)? {
                Some(head) => store.state_record(&head)?.slots.len(),
                None => model.config.batch_size,
            },
        };
        let value = StateValue::zeros(&model.config.layout(), batch);
        return Ok((value.id(), Some(value)));
    }
    if let Some(tag) = store.tag(text)? {
        return Ok((tag.state, None));
    }
    let found = store.states_with_prefix(&text.to_ascii_lowercase(), 11)?;
    match found.as_slice() {
        [one] => Ok((*one, None)),
        [] => Err(StoreError::NotFound {
            kind: "ref",
            name: text.to_string(),
            hint: "it is not a tag, a state id prefix (4+ hex digits), HEAD, HEAD~N or zeros; `statectl log` and `statectl tag list` list states".into(),
        }
        .into()),
        many => Err(StoreError::Ambiguous {
            kind: "state id",
            prefix: text.to_string(),
            candidates: many.iter().map(|s| s.short()).collect(),
        }
        .into()),
    }
}

/// Resolves and loads a ref; every slot is re-hashed, so damaged content is
/// refused here with its id named.
pub fn resolve(store: &Store, text: &str, scope: Scope) -> Result<Resolved> {
    let (id, computed) = resolve_id(store, text, scope)?;
    match computed {
        Some(value) => {
            let stored = store.has_state(&id)?;
            Ok(Resolved { id, value, stored })
        }
        None => Ok(Resolved {
            id,
            value: store.load_state(&id)?,
            stored: true,
        }),
    }
}
