//! The numeric kernels statectl computes with, and which one an event was
//! computed by.
//!
//! `fused-1` (the default) is statectl's own: a batch-invariant matrix
//! product ([`gemm`]) and fused cell steps ([`cells`]), which the model's
//! network and its hand-written backward pass through time
//! (`model::fused`) are built on. `candle` is the earlier path
//! (candle ops, one batch row per matmul at inference, candle's autograd in
//! training); it stays so that every event recorded with it replays with
//! it, bit for bit.

pub mod cells;
pub mod gemm;
pub(crate) mod lanes;
pub mod team;

pub use lanes::{cpu_path_cap, CpuPath, CPU_PATH_VALUES};

/// Reproducible values in [-0.5, 0.5) (xorshift32 from `seed`): inputs for
/// the kernels' tests and benchmarks, the same on every machine.
pub fn sample_values(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2_654_435_761) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            s as f32 / u32::MAX as f32 - 0.5
        })
        .collect()
}

use serde::{Deserialize, Serialize};

/// Which kernel computed (or computes) a prediction or a training run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Kernel {
    /// candle's ops; what every event recorded before `fused-1` used.
    #[serde(rename = "candle")]
    Candle,
    /// statectl's fused, batch-invariant kernels.
    #[default]
    #[serde(rename = "fused-1")]
    Fused,
}

impl Kernel {
    pub fn name(&self) -> &'static str {
        match self {
            Kernel::Candle => "candle",
            Kernel::Fused => "fused-1",
        }
    }

    /// The kernel itself, or why this build cannot run it.
    pub fn ensure_built(self) -> anyhow::Result<Kernel> {
        #[cfg(not(feature = "candle"))]
        if self == Kernel::Candle {
            return Err(candle_not_built());
        }
        Ok(self)
    }

    /// The kernel of a record that names none: it predates the choice.
    pub fn legacy() -> Kernel {
        Kernel::Candle
    }

    /// Reads an event's `detail.kernel`; absent means [`Kernel::legacy`].
    pub fn of_detail(detail: &serde_json::Value) -> Result<Kernel, String> {
        match detail.get("kernel") {
            None => Ok(Kernel::legacy()),
            Some(v) => serde_json::from_value(v.clone()).map_err(|_| {
                format!(
                    "the event was computed by kernel {v}, which this statectl does not know; use the statectl version that recorded it"
                )
            }),
        }
    }
}

/// Keeps freed memory in the process: buffers up to 32 MiB come from the
/// heap, and the heap is not trimmed. Training allocates and frees the same
/// large buffers every batch; with glibc's defaults they go back to the
/// kernel each time and the page faults after cost a fifth of a step.
pub fn keep_freed_memory() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: mallopt only sets allocator parameters.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
            libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        }
    });
}

/// Why a build without the `candle` feature cannot run kernel `candle`.
#[cfg(not(feature = "candle"))]
pub fn candle_not_built() -> anyhow::Error {
    anyhow::anyhow!(
        "kernel `candle` (events and training runs recorded before `fused-1`) is not in this build of statectl, made without the `candle` feature; build with default features to replay or train with it: cargo install --locked --path ."
    )
}
