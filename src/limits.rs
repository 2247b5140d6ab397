//! Documented bounds on sizes a user can ask for, so a typo (`--batch-size
//! 4294967295`) is a clear error instead of an abort after allocating
//! gigabytes. Each bound sits far above what the workloads statectl serves
//! need (R2D2: LSTM-512, batches of 64 to 256, 80-step sequences).

use anyhow::{bail, Result};

/// Most slots in one state (a zero state of this size is a 32 MB slot list).
pub const MAX_BATCH: usize = 1 << 20;
/// Widest recurrent layer.
pub const MAX_UNITS: usize = 4096;
/// Most stacked layers.
pub const MAX_LAYERS: usize = 64;
/// Most numbers in one state (slots x slot length): 1 GiB of float32.
pub const MAX_STATE_VALUES: usize = 1 << 28;
/// Most worker threads.
pub const MAX_THREADS: usize = 256;

pub fn check_batch(batch: usize) -> Result<()> {
    if batch == 0 || batch > MAX_BATCH {
        bail!("a batch of {batch} slot(s) is out of range: use 1 to {MAX_BATCH}");
    }
    Ok(())
}

pub fn check_units(units: &[usize]) -> Result<()> {
    if units.is_empty() || units.len() > MAX_LAYERS {
        bail!(
            "{} layer(s) is out of range: use 1 to {MAX_LAYERS}",
            units.len()
        );
    }
    if let Some(u) = units.iter().find(|&&u| u == 0 || u > MAX_UNITS) {
        bail!("a layer of {u} units is out of range: use 1 to {MAX_UNITS} units per layer");
    }
    Ok(())
}

/// Refuses a state whose numbers would not fit in memory comfortably.
pub fn check_state_size(batch: usize, slot_len: usize) -> Result<()> {
    check_batch(batch)?;
    if batch.saturating_mul(slot_len) > MAX_STATE_VALUES {
        bail!(
            "a state of {batch} slot(s) x {slot_len} values is too large (over {MAX_STATE_VALUES} values); use a smaller batch"
        );
    }
    Ok(())
}
