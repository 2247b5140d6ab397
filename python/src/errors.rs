//! The exception hierarchy: one class per kind of failure the CLI reports
//! (`--json` error kinds), all under `StatectlError`, each carrying the
//! CLI's message.

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

create_exception!(
    statectl,
    StatectlError,
    PyException,
    "Any statectl failure; the message says what was wrong and how to fix it."
);
create_exception!(
    statectl,
    NotFoundError,
    StatectlError,
    "A ref, tag, model or event that does not exist."
);
create_exception!(
    statectl,
    AmbiguousError,
    StatectlError,
    "An id prefix that matches several states."
);
create_exception!(
    statectl,
    LayoutMismatchError,
    StatectlError,
    "Tensors or a state whose layout is not the one needed."
);
create_exception!(
    statectl,
    StoreTooNewError,
    StatectlError,
    "A store written by a newer statectl (left untouched)."
);
create_exception!(
    statectl,
    NoStoreError,
    StatectlError,
    "No store where one was expected."
);
create_exception!(
    statectl,
    CorruptError,
    StatectlError,
    "Stored bytes that no longer hash to their id, or a damaged database."
);
create_exception!(
    statectl,
    StreamMovedError,
    StatectlError,
    "Another writer moved the stream while this call computed."
);
create_exception!(
    statectl,
    ConflictError,
    StatectlError,
    "A name already in use (a tag, a model)."
);
create_exception!(
    statectl,
    StoreIOError,
    StatectlError,
    "The store's files or database could not be read or written."
);
create_exception!(
    statectl,
    ClosedStoreError,
    StatectlError,
    "A call on a store after close()."
);

create_exception!(
    statectl,
    InheritedStoreError,
    StatectlError,
    "A Store used in a process forked after it was opened: open one in that process."
);

/// Why a call failed.
pub enum Failure {
    /// The store was closed (its path).
    Closed(String),
    /// A store used in a child of the process that opened it.
    Inherited {
        path: String,
        opened_by: u32,
        child: u32,
    },
    Op(anyhow::Error),
}

impl Failure {
    pub fn into_py(self) -> PyErr {
        match self {
            Failure::Closed(path) => ClosedStoreError::new_err(format!(
                "the store at '{path}' is closed; open it again with statectl.Store(...)"
            )),
            Failure::Inherited { path, opened_by, child } => InheritedStoreError::new_err(format!(
                "this Store for '{path}' was opened by process {opened_by} and reached process {child} through fork(); a store's connection must not cross a fork: open statectl.Store('{path}') in this process (the parent's Store stays usable in the parent)"
            )),
            Failure::Op(err) => {
                let message = in_python_words(&err).unwrap_or_else(|| format!("{err:#}"));
                let (message, flags) = flags_as_keywords(&message);
                if flags && statectl::ops::error_kind(&err) == "error" {
                    return invalid_input(message);
                }
                match statectl::ops::error_kind(&err) {
                    "not_found" => NotFoundError::new_err(message),
                    "ambiguous" => AmbiguousError::new_err(message),
                    "layout_mismatch" => LayoutMismatchError::new_err(message),
                    "store_too_new" => StoreTooNewError::new_err(message),
                    "no_store" => NoStoreError::new_err(message),
                    "corrupt" => CorruptError::new_err(message),
                    "stream_moved" => StreamMovedError::new_err(message),
                    "conflict" => ConflictError::new_err(message),
                    "io" | "database" => StoreIOError::new_err(message),
                    _ => StatectlError::new_err(message),
                }
            }
        }
    }
}

/// The CLI flags an argument error may name, and the keyword a Python
/// caller passes instead.
const KEYWORDS: &[(&str, &str)] = &[
    ("--head", "head"),
    ("--outputs", "outputs"),
    ("--batch-size", "batch_size"),
    ("--layers", "layers"),
    ("--layout", "layout"),
    ("--name", "name"),
];

/// A message with CLI flags said as Python keyword arguments (`--head
/// softmax` as `head='softmax'`, `leave --head out` as `leave head out`),
/// and whether it named any.
fn flags_as_keywords(message: &str) -> (String, bool) {
    // The one CLI command such advice names, as the Python call.
    let message = match message.find("`statectl reset --batch-size ") {
        Some(at) => {
            let tail = &message[at + "`statectl reset --batch-size ".len()..];
            let end = tail.find('`').unwrap_or(tail.len());
            format!(
                "{}store.reset(batch_size={}){}",
                &message[..at],
                &tail[..end],
                tail.get(end + 1..).unwrap_or("")
            )
        }
        None => message.to_string(),
    };
    let mut out = String::with_capacity(message.len());
    let mut named = false;
    let mut rest = message.as_str();
    while let Some(at) = rest.find("--") {
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        let Some((flag, keyword)) = KEYWORDS.iter().find(|(f, _)| {
            after.starts_with(f)
                && !after[f.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '-')
        }) else {
            out.push_str("--");
            rest = &after[2..];
            continue;
        };
        named = true;
        let tail = &after[flag.len()..];
        let value: String = tail
            .strip_prefix(' ')
            .map(|t| {
                t.chars()
                    .take_while(|c| !c.is_whitespace() && !matches!(c, ';' | ')' | '`' | ':'))
                    .collect()
            })
            .unwrap_or_default();
        let value = value.trim_end_matches([',', '.']).to_string();
        // `leave --head out`, `given in --layers is ...`: named, no value.
        let prose = ["out", "is", "are", "to", "or", "and", "with", "for"];
        if value.is_empty() || prose.contains(&value.as_str()) || value.starts_with('-') {
            out.push_str(keyword);
            rest = tail;
            continue;
        }
        let shown = if value.parse::<f64>().is_ok() {
            value.clone()
        } else if *keyword == "layers" {
            format!(
                "[{}]",
                value
                    .split(',')
                    .map(|v| format!("'{v}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        } else {
            format!("'{}'", value.replace('|', "' or '"))
        };
        out.push_str(&format!("{keyword}={shown}"));
        rest = &tail[1 + value.len()..];
    }
    out.push_str(rest);
    (out, named)
}

/// `statectl.InvalidInputError` (defined in Python, a `ValueError` too).
fn invalid_input(message: String) -> PyErr {
    Python::with_gil(|py| {
        let class = py
            .import("statectl")
            .and_then(|m| m.getattr("InvalidInputError"))
            .ok()
            .and_then(|c| c.downcast_into::<pyo3::types::PyType>().ok());
        match class {
            Some(class) => PyErr::from_type(class, message),
            None => StatectlError::new_err(message),
        }
    })
}

/// An error whose advice names CLI commands, said with the calls a Python
/// caller makes instead.
fn in_python_words(err: &anyhow::Error) -> Option<String> {
    let mismatch = err
        .chain()
        .find_map(|e| e.downcast_ref::<statectl::ops::predict::BatchMismatch>())?;
    let (label, n) = (&mismatch.label, mismatch.input_batch);
    Some(format!(
        "x has batch {n} but state {label} has {} slot(s); re-batch the stream first: store.restore('{label}', slots=[{}]), store.restore('{label}', slot=0, batch_size={n}), or store.reset(batch_size={n})",
        mismatch.batch,
        mismatch.picks().join(", ")
    ))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("StatectlError", py.get_type::<StatectlError>())?;
    m.add("NotFoundError", py.get_type::<NotFoundError>())?;
    m.add("AmbiguousError", py.get_type::<AmbiguousError>())?;
    m.add("LayoutMismatchError", py.get_type::<LayoutMismatchError>())?;
    m.add("StoreTooNewError", py.get_type::<StoreTooNewError>())?;
    m.add("NoStoreError", py.get_type::<NoStoreError>())?;
    m.add("CorruptError", py.get_type::<CorruptError>())?;
    m.add("StreamMovedError", py.get_type::<StreamMovedError>())?;
    m.add("ConflictError", py.get_type::<ConflictError>())?;
    m.add("StoreIOError", py.get_type::<StoreIOError>())?;
    m.add("ClosedStoreError", py.get_type::<ClosedStoreError>())?;
    m.add("InheritedStoreError", py.get_type::<InheritedStoreError>())?;
    Ok(())
}
