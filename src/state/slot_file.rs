//! A file of one state read a band of slots at a time: `import --per-slot`
//! of a file larger than memory. The header is read and checked as a
//! whole file's would be (names, shapes, metadata); the data never is held
//! whole: each band of slots is read from every tensor's rows and laid out
//! as slot bytes (little-endian f32, layout order), the bytes their ids are
//! hashed from.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use super::exchange::{states_from_file, FileStates};
use super::Layout;
use crate::tensors::{Tensor, TensorFile, MAX_HEADER_BYTES};

/// One (layer, tensor) of the state, in layout order.
#[derive(Debug, Clone)]
struct Part {
    /// Offset of its data in the file.
    start: u64,
    units: usize,
    /// Bytes per element: 4 (F32) or 8 (F64, read as f32).
    elem: usize,
}

#[derive(Debug)]
pub struct SlotFile {
    file: File,
    pub layout: Layout,
    pub batch: usize,
    parts: Vec<Part>,
    /// The state id the file's metadata says it holds, if it says.
    pub stated_state: Option<String>,
    /// Whether the file stored float64 (read as float32).
    pub converted_f64: bool,
    /// The last band's rows of one tensor, kept to be reused.
    scratch: Vec<u8>,
}

#[derive(serde::Deserialize)]
struct Entry {
    dtype: String,
    shape: Vec<usize>,
    data_offsets: (u64, u64),
}

impl SlotFile {
    /// Opens a safetensors file holding one unnamed state.
    pub fn open(path: &Path) -> Result<SlotFile, String> {
        let mut file = File::open(path).map_err(|e| format!("cannot open it: {e}"))?;
        let length = file
            .metadata()
            .map_err(|e| format!("cannot read it: {e}"))?
            .len();
        let (header_len, mut entries) = read_header(&mut file, length)?;
        let metadata: BTreeMap<String, String> = match entries.remove("__metadata__") {
            None => BTreeMap::new(),
            Some(m) => serde_json::from_value(m)
                .map_err(|_| "its __metadata__ is not a map of strings".to_string())?,
        };
        let data_start = 8 + header_len;
        let data_len = length - data_start;
        // A stand-in with one row per tensor runs the whole-file checks
        // (names, layers, h beside c, stated layout) without the data.
        let mut skeleton = TensorFile {
            metadata: metadata.clone(),
            ..Default::default()
        };
        skeleton.metadata.remove("state");
        let mut found: BTreeMap<String, (Part, usize)> = BTreeMap::new();
        let mut converted_f64 = false;
        for (name, value) in entries {
            let entry: Entry = serde_json::from_value(value)
                .map_err(|e| format!("tensor '{name}' has a malformed header entry: {e}"))?;
            let elem = match entry.dtype.as_str() {
                "F32" => 4,
                "F64" => {
                    converted_f64 = true;
                    8
                }
                other => {
                    return Err(format!(
                        "tensor '{name}' has dtype {other}; statectl reads F32 (and F64, converted)"
                    ))
                }
            };
            let (begin, end) = entry.data_offsets;
            let count = entry
                .shape
                .iter()
                .try_fold(1usize, |n, &d| n.checked_mul(d))
                .and_then(|n| n.checked_mul(elem));
            if end < begin || end > data_len || count != Some((end - begin) as usize) {
                return Err(format!(
                    "tensor '{name}' claims bytes {begin}..{end} for shape {:?}, which the file does not hold; it is damaged",
                    entry.shape
                ));
            }
            let (rows, units) = match entry.shape.as_slice() {
                [rows, units] if *rows > 0 && *units > 0 => (*rows, *units),
                _ => {
                    // Not [batch, units]: the whole-file check says why.
                    let shape = entry.shape.clone();
                    skeleton.insert(
                        &name,
                        Tensor {
                            shape,
                            data: Vec::new(),
                        },
                    );
                    continue;
                }
            };
            skeleton.insert(&name, Tensor::new(vec![1, units], vec![0.0; units]));
            found.insert(
                name,
                (
                    Part {
                        start: data_start + begin,
                        units,
                        elem,
                    },
                    rows,
                ),
            );
        }
        let layout = match states_from_file(&skeleton)? {
            FileStates::Single(value) => value.layout,
            FileStates::Named(_) => {
                return Err(
                    "--per-slot splits a file of one state; this file holds named states".into(),
                )
            }
        };
        let (parts, batch) = parts_in_order(&layout, &found)?;
        Ok(SlotFile {
            file,
            layout,
            batch,
            parts,
            stated_state: metadata.get("state").cloned(),
            converted_f64,
            scratch: Vec::new(),
        })
    }

    /// Bytes of one encoded slot.
    pub fn slot_bytes(&self) -> usize {
        self.layout.slot_len() * 4
    }

    /// Slots `range`, encoded (little-endian f32 in layout order), one
    /// after another, into `out`.
    pub fn read(&mut self, range: std::ops::Range<usize>, out: &mut Vec<u8>) -> Result<(), String> {
        let per_slot = self.slot_bytes();
        let count = range.len();
        // Every byte of `out` is written below: only growth is zeroed.
        out.resize(count * per_slot, 0);
        let mut offset_in_slot = 0;
        let mut band = std::mem::take(&mut self.scratch);
        for part in &self.parts {
            let row = part.units * part.elem;
            band.resize(count * row, 0);
            self.file
                .seek(SeekFrom::Start(part.start + (range.start * row) as u64))
                .and_then(|_| self.file.read_exact(&mut band))
                .map_err(|e| format!("cannot read slots {}..{}: {e}", range.start, range.end))?;
            for (s, src) in band.chunks_exact(row).enumerate() {
                let dst = &mut out
                    [s * per_slot + offset_in_slot..s * per_slot + offset_in_slot + part.units * 4];
                if part.elem == 4 {
                    dst.copy_from_slice(src);
                } else {
                    for (d, v) in dst.chunks_exact_mut(4).zip(src.chunks_exact(8)) {
                        let mut word = [0u8; 8];
                        word.copy_from_slice(v);
                        d.copy_from_slice(&(f64::from_le_bytes(word) as f32).to_le_bytes());
                    }
                }
            }
            offset_in_slot += part.units * 4;
        }
        self.scratch = band;
        Ok(())
    }
}

/// The header's length and its entries (tensor name -> JSON entry),
/// bounded by the file's length and the header limit.
fn read_header(
    file: &mut File,
    length: u64,
) -> Result<(u64, serde_json::Map<String, serde_json::Value>), String> {
    let mut word = [0u8; 8];
    file.read_exact(&mut word).map_err(|_| {
        "it is not a safetensors file (shorter than its 8-byte header length)".to_string()
    })?;
    let header_len = u64::from_le_bytes(word);
    if header_len > MAX_HEADER_BYTES || header_len + 8 > length {
        return Err(format!(
            "its header claims {header_len} bytes, but the file has {length} and headers are limited to {MAX_HEADER_BYTES}; it is not a safetensors file"
        ));
    }
    let mut header = vec![0u8; header_len as usize];
    file.read_exact(&mut header)
        .map_err(|e| format!("cannot read its header: {e}"))?;
    let entries: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&header)
        .map_err(|e| format!("its header is not valid JSON: {e}"))?;
    Ok((header_len, entries))
}

/// The tensors' parts in the layout's order (`l0.h`, `l0.c`, `l1.h`, ...)
/// and the batch size, which every tensor must share.
fn parts_in_order(
    layout: &crate::state::Layout,
    found: &BTreeMap<String, (Part, usize)>,
) -> Result<(Vec<Part>, usize), String> {
    let mut parts = Vec::new();
    let mut batch = None;
    for (layer, _) in layout.units.iter().enumerate() {
        for t in layout.cell.tensors() {
            let name = format!("l{layer}.{t}");
            let (part, rows) = found
                .get(&name)
                .cloned()
                .ok_or_else(|| format!("'{name}' is missing"))?;
            let b = *batch.get_or_insert(rows);
            if rows != b {
                return Err(format!("'{name}' has batch {rows} but layer 0 has batch {b}; every layer needs the same batch"));
            }
            parts.push(part);
        }
    }
    Ok((parts, batch.unwrap_or(0)))
}
