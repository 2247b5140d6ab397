//! Refs: a tag, a state id prefix (4+ hex digits), `HEAD`, `HEAD~N` or
//! `zeros`, resolved to a state and its (re-hashed) value. Resolution only
//! reads: `zeros` is computed, and stored only by an operation that keeps
//! it.

use anyhow::{anyhow, bail, Result};

use super::models::Model;
use super::streams;
use crate::id::{Digest, StateId};
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
pub fn head_offset(text: &str) -> Result<Option<u64>> {
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
        streams::check_exists(store, model, stream)?;
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
    // A whole id is one keyed lookup (tags cannot be all hex digits).
    if let Some(id) = Digest::parse_hex(text).map(StateId) {
        if store.has_state(&id)? {
            return Ok((id, None));
        }
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
            hint: format!("{}it is not a tag, a state id prefix (4+ hex digits), HEAD, HEAD~N or zeros; `statectl log` and `statectl tag list` list states", near_tag(store, text)?),
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

/// "did you mean 'x'? " for a tag one typo away from `text`, else nothing.
fn near_tag(store: &Store, text: &str) -> Result<String> {
    let names = store.tag_names_like(text, 50_000)?;
    Ok(
        crate::suggest::near_miss(text, names.iter().map(String::as_str))
            .map(|name| format!("did you mean tag '{name}'? "))
            .unwrap_or_default(),
    )
}

/// Resolves and loads a ref; every slot is re-hashed, so damaged content is
/// refused here with its id named.
pub fn resolve(store: &Store, text: &str, scope: Scope) -> Result<Resolved> {
    // A whole id: one lookup that loads it (the common case in a loop).
    if let Some(id) = Digest::parse_hex(text).map(StateId) {
        match store.load_state(&id) {
            Ok(value) => {
                return Ok(Resolved {
                    id,
                    value,
                    stored: true,
                })
            }
            Err(StoreError::NotFound { kind: "state", .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
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

/// Whether `text` is a tag pattern (`*` any run, `?` one character).
pub fn is_pattern(text: &str) -> bool {
    text.contains(['*', '?'])
}

/// A user's text as an error message shows it: whole when short, else its
/// start and its length (a pasted megabyte must not flood the terminal).
pub fn shown(text: &str) -> String {
    const SHOWN: usize = 60;
    match text.char_indices().nth(SHOWN) {
        None => text.to_string(),
        Some((cut, _)) => format!("{}... ({} characters)", &text[..cut], text.chars().count()),
    }
}

/// Expands the refs a command was given: tag patterns (`'buf/k5/*'`)
/// become the tags they match, in natural order (`s2` before `s10`), and
/// `extra` (the lines of `--refs-from`) is appended. A pattern that matches
/// nothing is an error, so a typo never selects an empty set.
pub fn expand(store: &Store, refs: &[String], extra: &[String]) -> Result<Vec<String>> {
    expand_with(refs, extra, || {
        Ok(store.list_tags()?.into_iter().map(|t| t.name).collect())
    })
}

/// `expand`, with the tag names from `all_tags` (read once, only if a
/// pattern is given): a local store's or a shared store's.
pub fn expand_with(
    refs: &[String],
    extra: &[String],
    mut all_tags: impl FnMut() -> Result<Vec<String>>,
) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut tags: Option<Vec<String>> = None;
    for text in refs.iter().chain(extra) {
        if !is_pattern(text) {
            out.push(text.clone());
            continue;
        }
        let all = match &tags {
            Some(all) => all,
            None => tags.insert(all_tags()?),
        };
        // `*` any run, `?` one character; linear time (a backtracking
        // matcher is exponential on patterns like `*a*a*a*b`).
        let pattern = wildmatch::WildMatch::new(text);
        let mut found: Vec<String> = all.iter().filter(|t| pattern.matches(t)).cloned().collect();
        if found.is_empty() {
            let text = shown(text);
            bail!("pattern '{text}' matches no tag; `statectl tag list` shows the tags (quote patterns so the shell leaves them alone)");
        }
        found.sort_by(|a, b| natural_cmp(a, b));
        out.extend(found);
    }
    if out.is_empty() {
        bail!("no ref given: name states on the command line, with a tag pattern such as 'buf/*', or with --refs-from FILE");
    }
    Ok(out)
}

/// The refs listed in `bytes` (`--refs-from`): one per line; blank lines
/// and `#` comments are skipped.
pub fn refs_from_lines(bytes: &[u8], source: &str) -> Result<Vec<String>> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| anyhow!("{source} is not UTF-8 text; give one ref per line"))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect())
}

/// Orders names with their digit runs as numbers: `at-2` before `at-10`.
pub fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    fn chunks(s: &str) -> Vec<(bool, &str)> {
        let mut out = Vec::new();
        let mut start = 0;
        let bytes = s.as_bytes();
        for i in 1..=bytes.len() {
            if i == bytes.len() || bytes[i].is_ascii_digit() != bytes[start].is_ascii_digit() {
                out.push((bytes[start].is_ascii_digit(), &s[start..i]));
                start = i;
            }
        }
        out
    }
    let (ca, cb) = (chunks(a), chunks(b));
    for (x, y) in ca.iter().zip(&cb) {
        let order = match (x, y) {
            ((true, n), (true, m)) => {
                let (n, m) = (n.trim_start_matches('0'), m.trim_start_matches('0'));
                n.len().cmp(&m.len()).then(n.cmp(m))
            }
            _ => x.1.cmp(y.1),
        };
        if order.is_ne() {
            return order;
        }
    }
    ca.len().cmp(&cb.len()).then(a.cmp(b))
}

#[cfg(test)]
mod tests {
    #[test]
    fn patterns_match_star_and_question_mark() {
        let m = |p: &str, t: &str| wildmatch::WildMatch::new(p).matches(t);
        assert!(m("buf/k5/*", "buf/k5/12"));
        assert!(!m("buf/k5/*", "buf/k50/1"));
        assert!(m("s?", "s1") && !m("s?", "s10"));
        assert!(m("*", "") && m("a*b*c", "aXbYc") && !m("a*b", "ab/c"));
    }

    #[test]
    fn a_pathological_pattern_matches_in_linear_time() {
        let pattern = "*a".repeat(9) + "*b";
        let text = "a".repeat(200);
        let started = std::time::Instant::now();
        assert!(!wildmatch::WildMatch::new(&pattern).matches(&text));
        let stars = "*".repeat(300_000);
        assert!(wildmatch::WildMatch::new(&stars).matches("anything"));
        // Not a timing assertion: printed for the record.
        println!("pathological patterns: {:?}", started.elapsed());
    }

    #[test]
    fn long_user_text_is_shortened_in_messages() {
        let long = "x".repeat(1 << 20);
        let shown = super::shown(&long);
        assert!(
            shown.len() < 100 && shown.ends_with("(1048576 characters)"),
            "{shown}"
        );
        assert_eq!(super::shown("buf/*"), "buf/*");
    }

    #[test]
    fn natural_order_counts_digit_runs_as_numbers() {
        let mut names = vec!["at-10", "at-2", "at-1", "b", "at-11", "a", "at-02"];
        names.sort_by(|a, b| super::natural_cmp(a, b));
        assert_eq!(names, ["a", "at-1", "at-02", "at-2", "at-10", "at-11", "b"]);
    }
}
