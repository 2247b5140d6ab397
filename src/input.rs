//! Reading prediction inputs: safetensors (`x` `[batch, steps, features]`),
//! CSV (a row per batch entry, steps x features values) or JSON (nested
//! arrays), from a file or `-` for stdin. The result is always
//! `[batch, steps, features]`.

use std::io::Read;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};

use crate::tensors::{Tensor, TensorFile};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    SafeTensors,
    Csv,
    Json,
}

fn sniff(bytes: &[u8]) -> Format {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if matches!(first, Some(b'[') | Some(b'{')) {
        return Format::Json;
    }
    if bytes.len() >= 9 && bytes[8] == b'{' {
        return Format::SafeTensors;
    }
    Format::Csv
}

/// The largest input statectl reads (files and stdin): 256 MiB, or
/// `$STATECTL_MAX_INPUT_BYTES`. Inputs are read whole, so this bounds the
/// memory a hostile or mistaken input can take.
pub fn max_input_bytes() -> u64 {
    std::env::var("STATECTL_MAX_INPUT_BYTES")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|&v| v > 0)
        .unwrap_or(256 << 20)
}

fn too_large(label: &str, limit: u64) -> anyhow::Error {
    anyhow!(
        "{label} is larger than the input limit of {limit} bytes; split it, or raise the limit with STATECTL_MAX_INPUT_BYTES"
    )
}

/// A file that cannot be read, and what to check.
fn unreadable(label: &str, e: &std::io::Error) -> anyhow::Error {
    let check = match e.kind() {
        std::io::ErrorKind::NotFound => {
            "; check the path (relative paths start at the current folder)"
        }
        std::io::ErrorKind::PermissionDenied => "; check the file's permissions",
        _ => "",
    };
    anyhow!("cannot read {label}: {e}{check}")
}

/// Reads a whole regular file, refusing devices, FIFOs and folders (which
/// never end or block) and files over [`max_input_bytes`].
pub fn read_file_bounded(path: &Path, label: &str) -> Result<Vec<u8>> {
    let meta = std::fs::metadata(path).map_err(|e| unreadable(label, &e))?;
    if !meta.is_file() {
        bail!("{label} is not a regular file (a folder, device or pipe); give a file, or `-` to read stdin");
    }
    let limit = max_input_bytes();
    if meta.len() > limit {
        return Err(too_large(label, limit));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    std::fs::File::open(path)
        .and_then(|f| f.take(limit + 1).read_to_end(&mut bytes))
        .map_err(|e| unreadable(label, &e))?;
    if bytes.len() as u64 > limit {
        return Err(too_large(label, limit));
    }
    Ok(bytes)
}

/// Reads the bytes of `path`, or stdin for `-`, bounded.
pub fn read_source(path: &str) -> Result<Vec<u8>> {
    if path == "-" {
        let limit = max_input_bytes();
        let mut bytes = Vec::new();
        std::io::stdin()
            .take(limit + 1)
            .read_to_end(&mut bytes)
            .context("cannot read stdin")?;
        if bytes.len() as u64 > limit {
            return Err(too_large("stdin", limit));
        }
        return Ok(bytes);
    }
    read_file_bounded(Path::new(path), &format!("input file '{path}'"))
}

/// Reads an input batch for a model with `features` inputs per step.
pub fn read_input(path: &str, features: usize) -> Result<Tensor> {
    parse_input(&read_source(path)?, path, features)
}

/// Parses input bytes; `path` names the source in messages and its
/// extension (if any) picks the format, else the bytes are sniffed.
pub fn parse_input(bytes: &[u8], path: &str, features: usize) -> Result<Tensor> {
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        bail!("input '{path}' is empty; give at least one row of steps x {features} value(s)");
    }
    let ext = Path::new(path)
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("");
    let format = match ext {
        "safetensors" => Format::SafeTensors,
        "csv" => Format::Csv,
        "json" => Format::Json,
        _ => sniff(bytes),
    };
    let x = match format {
        Format::SafeTensors => from_safetensors(bytes, path)?,
        Format::Csv => from_rows(parse_csv(bytes, path)?, features, path)?,
        Format::Json => from_json(bytes, features, path)?,
    };
    check_input(&x, path, features)?;
    Ok(x)
}

/// What every prediction input must be, wherever it came from (a file, or
/// an array handed over in-process): `[batch, steps, features]` with the
/// model's features, no empty axis, finite values.
pub fn check_input(x: &Tensor, path: &str, features: usize) -> Result<()> {
    if x.shape.len() != 3 {
        bail!(
            "input '{path}' has shape {}; give [batch, steps, features]",
            x.shape_text()
        );
    }
    if x.shape[2] != features {
        bail!(
            "input '{path}' has {} feature(s) per step but the model takes {features}",
            x.shape[2]
        );
    }
    if x.shape.contains(&0) {
        bail!(
            "input '{path}' is empty (shape {}); give at least one step",
            x.shape_text()
        );
    }
    crate::limits::check_batch(x.shape[0])?;
    if let Some(i) = x.data.iter().position(|v| !v.is_finite()) {
        bail!("input '{path}' holds a non-finite value ({}) at flat index {i}; inputs must be finite numbers", x.data[i]);
    }
    Ok(())
}

fn from_safetensors(bytes: &[u8], path: &str) -> Result<Tensor> {
    let file = TensorFile::decode(bytes).with_context(|| format!("input '{path}'"))?;
    let x = file.tensors.get("x").ok_or_else(|| {
        anyhow!(
            "input '{path}' has no tensor 'x' (it has: {}); store the batch as 'x' [batch, steps, features]",
            file.names().join(", ")
        )
    })?;
    if x.shape.len() != 3 {
        bail!(
            "input '{path}': tensor 'x' has shape {}, expected [batch, steps, features]",
            x.shape_text()
        );
    }
    Ok(x.clone())
}

/// Parses CSV cells as numbers; the first row is a header when none of its
/// cells is a number, and lines starting with `#` are comments.
pub fn parse_csv(bytes: &[u8], path: &str) -> Result<Vec<Vec<f32>>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .comment(Some(b'#'))
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.with_context(|| format!("input '{path}' is not valid CSV"))?;
        if record.iter().all(|c| c.is_empty()) {
            continue;
        }
        let parsed: Vec<Option<f32>> = record.iter().map(|c| c.parse::<f32>().ok()).collect();
        if i == 0 && parsed.iter().all(|v| v.is_none()) {
            continue;
        }
        let mut row = Vec::with_capacity(parsed.len());
        for (col, (value, cell)) in parsed.iter().zip(record.iter()).enumerate() {
            row.push(value.ok_or_else(|| {
                anyhow!(
                    "input '{path}' row {}, column {}: '{cell}' is not a number",
                    i + 1,
                    col + 1
                )
            })?);
        }
        rows.push(row);
    }
    Ok(rows)
}

/// A CSV time series as one sequence: rows are time steps and columns
/// features, as `train --data` reads it; `[1, rows, columns]`.
pub fn read_series(path: &str, features: usize) -> Result<Tensor> {
    let rows = parse_csv(&read_source(path)?, path)?;
    let width = rows.first().map(|r| r.len()).unwrap_or(0);
    if rows.is_empty() {
        bail!("series '{path}' has no rows; give one row per time step");
    }
    if let Some((i, r)) = rows.iter().enumerate().find(|(_, r)| r.len() != width) {
        bail!(
            "series '{path}' is ragged: row 1 has {width} column(s) but row {} has {}",
            i + 1,
            r.len()
        );
    }
    if width != features {
        bail!(
            "series '{path}' has {width} column(s) but the model reads {features} feature(s) a step; give the columns it was trained on"
        );
    }
    let steps = rows.len();
    let x = Tensor::new(vec![1, steps, width], rows.concat());
    check_input(&x, path, features)?;
    Ok(x)
}

/// Rows of steps x features values each, all of one length.
fn from_rows(rows: Vec<Vec<f32>>, features: usize, path: &str) -> Result<Tensor> {
    let width = rows
        .first()
        .map(|r| r.len())
        .ok_or_else(|| anyhow!("input '{path}' has no data rows"))?;
    if let Some((i, row)) = rows.iter().enumerate().find(|(_, r)| r.len() != width) {
        bail!(
            "input '{path}' is ragged: row 1 has {width} value(s) but row {} has {}; every row needs steps x features values",
            i + 1,
            row.len()
        );
    }
    if width % features != 0 {
        bail!("input '{path}' rows have {width} value(s), not a multiple of the model's {features} feature(s)");
    }
    let batch = rows.len();
    Ok(Tensor::new(
        vec![batch, width / features, features],
        rows.into_iter().flatten().collect(),
    ))
}

fn from_json(bytes: &[u8], features: usize, path: &str) -> Result<Tensor> {
    let mut value: serde_json::Value = serde_json::from_slice(bytes)
        .with_context(|| format!("input '{path}' is not valid JSON"))?;
    if let Some(x) = value.get_mut("x") {
        value = x.take();
    }
    let batch = value.as_array().ok_or_else(|| {
        anyhow!("input '{path}': expected a JSON array of batch entries (or {{\"x\": [...]}})")
    })?;
    let mut rows = Vec::with_capacity(batch.len());
    for (i, entry) in batch.iter().enumerate() {
        let mut row = Vec::new();
        flatten_numbers(entry, &mut row)
            .map_err(|what| anyhow!("input '{path}' entry {i}: {what}; use numbers in nested arrays [batch][steps][features]"))?;
        rows.push(row);
    }
    from_rows(rows, features, path)
}

fn flatten_numbers(
    value: &serde_json::Value,
    out: &mut Vec<f32>,
) -> std::result::Result<(), String> {
    match value {
        serde_json::Value::Number(n) => {
            out.push(n.as_f64().ok_or("a number out of range")? as f32);
            Ok(())
        }
        serde_json::Value::Array(items) => items.iter().try_for_each(|v| flatten_numbers(v, out)),
        other => Err(format!("'{other}' is not a number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_become_batch_entries() {
        let rows = parse_csv(b"a,b,c\n0,0.5,1\n1,2,3\n", "t").unwrap();
        let x = from_rows(rows, 1, "t").unwrap();
        assert_eq!(x.shape, vec![2, 3, 1]);
        assert_eq!(x.data[5], 3.0);
    }

    #[test]
    fn ragged_and_non_numeric_csv_are_refused() {
        let err = from_rows(parse_csv(b"1,2\n3\n", "t").unwrap(), 1, "t").unwrap_err();
        assert!(err.to_string().contains("ragged"), "{err}");
        let err = parse_csv(b"1,2\n3,x\n", "t").unwrap_err();
        assert!(err.to_string().contains("'x' is not a number"), "{err}");
    }

    #[test]
    fn json_nested_arrays_are_read() {
        let x = from_json(b"[[[0],[1]],[[2],[3]]]", 1, "t").unwrap();
        assert_eq!(x.shape, vec![2, 2, 1]);
        let x = from_json(b"{\"x\": [[0, 1, 2, 3]]}", 2, "t").unwrap();
        assert_eq!(x.shape, vec![1, 2, 2]);
    }
}
