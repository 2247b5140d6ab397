//! Tags: global names for states. Setting one is journalled; moving one to
//! another state needs `force`.

use anyhow::{bail, Result};

use super::models::Model;
use crate::id::{StateId, MIN_PREFIX};
use crate::store::{NewEvent, Store, TagRecord};

/// Longest tag accepted.
const MAX_TAG_LEN: usize = 256;

/// Characters that render as nothing or reorder text: a tag holding one
/// can look exactly like another tag.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}'
        | '\u{FFA0}' | '\u{FFF0}'..='\u{FFFB}' | '\u{E0000}'..='\u{E0FFF}')
}

/// Names a tag may not take, since they mean something else or mislead.
/// A prefix that slot numbers are appended to: refused when it is all hex
/// digits (or empty), since `a` + `100` makes `a100`, which reads as a
/// state id prefix; checked before anything is written.
pub fn check_tag_prefix(prefix: &str) -> Result<()> {
    if prefix.chars().all(|c| c.is_ascii_hexdigit()) {
        let shown = super::refs::shown(prefix);
        bail!("--tag-prefix '{shown}' would make tags like '{shown}100' that read as state id prefixes; end it with a separator or a letter beyond a-f, such as '{shown}/' or '{shown}-'");
    }
    check_tag_name(&format!("{prefix}0"))
}

pub fn check_tag_name(name: &str) -> Result<()> {
    let reserved = name == "HEAD" || name.starts_with("HEAD~") || name == "zeros";
    let hex_like = name.len() >= MIN_PREFIX && name.chars().all(|c| c.is_ascii_hexdigit());
    if name.is_empty() || reserved {
        bail!("'{name}' cannot be a tag: tags must be non-empty and neither HEAD, HEAD~N nor zeros (those name states already)");
    }
    if hex_like {
        bail!("'{name}' cannot be a tag: it is all hex digits, so it would read as a state id prefix; add a letter beyond a-f or a separator (e.g. '{name}-x', or a --tag-prefix such as 'run/')");
    }
    if let Some(c) = name
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || is_invisible(*c))
    {
        bail!(
            "'{}' cannot be a tag: it holds the invisible or layout character U+{:04X}, so it could pass for another tag; use visible characters only",
            name.escape_default(),
            c as u32
        );
    }
    if name.len() > MAX_TAG_LEN {
        bail!(
            "a tag of {} bytes is too long; keep tags under {MAX_TAG_LEN} bytes",
            name.len()
        );
    }
    Ok(())
}

/// A tag to set with an operation's result.
#[derive(Debug, Clone)]
pub struct TagRequest {
    pub name: String,
    /// Move the tag if it names another state.
    pub force: bool,
}

/// Refuses to move an existing tag to another state unless forced.
pub fn check_tag_free(
    store: &Store,
    name: &str,
    state: Option<&StateId>,
    force: bool,
) -> Result<()> {
    check_tag_name(name)?;
    if let Some(existing) = store.tag(name)? {
        if !force && Some(&existing.state) != state {
            bail!(
                "tag '{name}' already names state {}; pass --force to move it",
                existing.state.short()
            );
        }
    }
    Ok(())
}

/// Sets a tag and journals it. Call inside a write.
pub fn set_tag(store: &Store, name: &str, state: &StateId, model: Option<&Model>) -> Result<()> {
    let before = store.tag(name)?.map(|t| t.state);
    if before.as_ref() == Some(state) {
        return Ok(());
    }
    store.set_tag(name, state)?;
    store.append_event(&NewEvent {
        kind: "tag",
        model: model.and_then(|m| m.event_model()),
        state_before: before,
        state_after: Some(*state),
        tag: Some(name.to_string()),
        ..Default::default()
    })?;
    Ok(())
}

/// Checks and sets a tag in one go. Call inside a write.
pub fn apply(
    store: &Store,
    tag: &TagRequest,
    state: &StateId,
    model: Option<&Model>,
) -> Result<()> {
    check_tag_free(store, &tag.name, Some(state), tag.force)?;
    set_tag(store, &tag.name, state, model)
}

/// `tag delete`: removes one tag (the name exactly), journalled.
pub fn delete(store: &Store, name: &str) -> Result<TagDeleted> {
    store.write(|store| delete_in(store, name))
}

/// Removes tags named or matched by patterns (`'buf/*'`), in one
/// transaction, one journal entry each. A name that is not a tag, or a
/// pattern that matches none, deletes nothing.
pub fn delete_many(store: &Store, names: &[String]) -> Result<Vec<TagDeleted>> {
    store.write(|store| {
        let mut names = super::refs::expand(store, names, &[])?;
        let mut seen = std::collections::HashSet::new();
        names.retain(|name| seen.insert(name.clone()));
        names.iter().map(|name| delete_in(store, name)).collect()
    })
}

/// `delete_many` on a shared store: names and patterns (expanded against
/// its tags), in one transaction, an untag entry each.
pub fn delete_many_on_shared(
    shared: &mut crate::shared::SharedStore,
    names: &[String],
) -> Result<Vec<TagDeleted>> {
    let expanded = super::refs::expand_with(names, &[], || {
        Ok(shared.tags()?.into_iter().map(|t| t.name).collect())
    })?;
    Ok(shared
        .delete_tags(&expanded)?
        .into_iter()
        .map(|(tag, state)| TagDeleted {
            tag,
            state,
            deleted: true,
        })
        .collect())
}

/// Removes one tag inside the caller's write.
fn delete_in(store: &Store, name: &str) -> Result<TagDeleted> {
    let Some(tag) = store.tag(name)? else {
        let near = store.tag_names_like(name, 50_000)?;
        bail!(
            "tag '{name}' not found{}; `statectl tag list` shows the tags",
            crate::suggest::did_you_mean(name, near.iter().map(String::as_str))
        );
    };
    store.delete_tag(name)?;
    store.append_event(&NewEvent {
        kind: "untag",
        state_before: Some(tag.state),
        tag: Some(name.to_string()),
        ..Default::default()
    })?;
    Ok(TagDeleted {
        tag: name.to_string(),
        state: tag.state,
        deleted: true,
    })
}

/// Every tag, in natural order (`seq2` before `seq10`).
pub fn list(store: &Store) -> Result<Vec<TagRecord>> {
    let mut tags = store.list_tags()?;
    tags.sort_by(|a, b| super::refs::natural_cmp(&a.name, &b.name));
    Ok(tags)
}

/// A deleted tag (the `tag delete` JSON).
#[derive(Debug, Clone, serde::Serialize)]
pub struct TagDeleted {
    pub tag: String,
    /// The state it named.
    pub state: StateId,
    pub deleted: bool,
}

/// One tag as the JSON contract gives it: `tag`, `state`, `updated_at`.
impl serde::Serialize for TagRecord {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut t = s.serialize_struct("Tag", 3)?;
        t.serialize_field("tag", &self.name)?;
        t.serialize_field("state", &self.state)?;
        t.serialize_field("updated_at", &self.updated_at)?;
        t.end()
    }
}
