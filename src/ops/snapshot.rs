//! `snapshot`: names a state (a tag, journalled), on either backend.

use anyhow::Result;

use super::backend::Backend;
use super::refs::Scope;
use super::tags::TagRequest;
use crate::id::StateId;
use crate::store::Store;

/// Names a resolved state: stored if it is not, then tagged, in one
/// transaction.
pub fn snapshot(store: &Store, reference: &str, scope: Scope, tag: &TagRequest) -> Result<StateId> {
    snapshot_on(&mut Backend::Embedded(store), reference, scope, tag)
}

/// [`snapshot`] on either backend.
pub fn snapshot_on(
    backend: &mut Backend,
    reference: &str,
    scope: Scope,
    tag: &TagRequest,
) -> Result<StateId> {
    let mut found = backend.sources(&[reference.to_string()], scope)?;
    let state = found
        .pop()
        .ok_or_else(|| anyhow::anyhow!("'{reference}' named no state"))?;
    backend.tag_state(&state, tag, scope.model)?;
    Ok(state.id)
}
