//! `statectl init [PATH]`: create an empty store (commands that only read
//! refuse a folder without one).

use std::path::PathBuf;

use anyhow::Result;
use serde_json::json;

use super::Output;
use crate::shared::{SharedStore, SHARED_SCHEMA_VERSION};
use crate::store::{Store, SCHEMA_VERSION};

pub fn run(path: PathBuf, out: Output) -> Result<i32> {
    let text = path.to_string_lossy();
    if crate::shared::is_shared_url(&text) {
        return init_shared(&text, out);
    }
    let existed = path.join("statectl.db").is_file();
    Store::open(&path)?;
    let shown = path.display().to_string();
    out.emit(
        json!({"store": shown, "created": !existed, "schema": SCHEMA_VERSION}),
        || {
            if existed {
                format!("{shown} already holds a statectl store (schema {SCHEMA_VERSION})")
            } else {
                format!("created an empty statectl store at {shown}")
            }
        },
    );
    Ok(0)
}

/// `statectl init postgres://…`: the shared store's tables, in one
/// transaction (nothing when they are there).
fn init_shared(url: &str, out: Output) -> Result<i32> {
    let (store, found) = SharedStore::init(url)?;
    let shown = store.shown().to_string();
    out.emit(
        json!({"store": shown, "created": found == Some(0), "upgraded_from": found.filter(|v| *v > 0), "schema": SHARED_SCHEMA_VERSION}),
        || match found {
            Some(0) => format!("created a shared statectl store at {shown}"),
            Some(old) => format!("brought the shared store at {shown} from schema {old} to {SHARED_SCHEMA_VERSION}"),
            None => format!("{shown} already holds a shared statectl store (schema {SHARED_SCHEMA_VERSION})"),
        },
    );
    Ok(0)
}
