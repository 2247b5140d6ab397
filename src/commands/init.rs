//! `statectl init [PATH]`: create an empty store (commands that only read
//! refuse a folder without one).

use std::path::PathBuf;

use anyhow::Result;
use serde_json::json;

use super::Output;
use crate::store::{Store, SCHEMA_VERSION};

pub fn run(path: PathBuf, out: Output) -> Result<i32> {
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
