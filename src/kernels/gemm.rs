//! A batch-invariant matrix product `C = A·B` (or `C += A·B`).
//!
//! Every element of `C` is one chain of fused multiply-adds over
//! `k = 0, 1, ..., K-1`, starting from zero (or from `C`'s value when
//! accumulating). Rows are computed independently, vectorised across
//! output columns; threads split rows and column panels, never `k`. So an
//! element's bits depend on neither the number of rows, nor its row's
//! position, nor the thread count: a batch slot computed alone, in a batch
//! of 7 or of 256, gives the same bits. The AVX2 tile and the portable tile
//! run the same chain, so the CPU only changes the speed.

use rayon::prelude::*;

use super::lanes::{has_avx2_fma, has_avx512};

/// Columns per packed panel: two AVX registers.
pub const NR: usize = 16;
/// Rows per register tile: 6 x 2 accumulators + 2 loads + 1 broadcast fit
/// the 16 AVX registers.
const MR: usize = 6;
/// Rows per thread task.
const ROWS_PER_TASK: usize = MR * 8;
/// Below this many multiply-adds a product runs on the calling thread.
const PARALLEL_WORK: usize = 1 << 18;
/// Columns of C one task covers when there are many rows.
const COLUMNS_PER_TASK: usize = 256;
/// Inner-dimension block of a long product.
const KC: usize = 256;
/// Inner-dimension block within a task: a 32-column panel pair of this
/// many rows (32 KiB) and 12 rows of A fit the 48 KiB L1 together.
const TILE_KC: usize = 256;

/// `B` `[k, n]` packed in column panels of [`NR`], each `[k][NR]`, the
/// last one zero-padded: a tile reads its panel as one contiguous stream.
#[derive(Debug, Clone)]
pub struct PackedB {
    pub k: usize,
    pub n: usize,
    data: Vec<f32>,
}

impl PackedB {
    fn build(k: usize, n: usize, at: impl Fn(usize, usize) -> f32) -> PackedB {
        let panels = n.div_ceil(NR);
        let mut data = vec![0f32; panels * k * NR];
        for p in 0..panels {
            let panel = &mut data[p * k * NR..(p + 1) * k * NR];
            for j in 0..NR.min(n - p * NR) {
                for kk in 0..k {
                    panel[kk * NR + j] = at(kk, p * NR + j);
                }
            }
        }
        PackedB { k, n, data }
    }

    /// From `b` row-major `[k, n]`: each panel row is a slice of a row.
    pub fn from_rows(b: &[f32], k: usize, n: usize) -> PackedB {
        PackedB::from_columns(b, k, n, 0..n)
    }

    /// Columns `cols` of `b` row-major `[k, ld]`: B is `[k, cols.len()]`.
    pub fn from_columns(b: &[f32], k: usize, ld: usize, cols: std::ops::Range<usize>) -> PackedB {
        let n = cols.len();
        assert!(
            cols.end <= ld && b.len() >= k * ld,
            "B is smaller than {k}x{ld}"
        );
        let panels = n.div_ceil(NR);
        let mut data = vec![0f32; panels * k * NR];
        // Row by row: each row of b is read once, front to back.
        for kk in 0..k {
            let row = &b[kk * ld + cols.start..kk * ld + cols.end];
            for p in 0..panels {
                let dst = &mut data[p * k * NR + kk * NR..];
                if p * NR + NR <= n {
                    // A fixed length: an inline copy, not a call.
                    dst[..NR].copy_from_slice(&row[p * NR..p * NR + NR]);
                } else {
                    dst[..n - p * NR].copy_from_slice(&row[p * NR..]);
                }
            }
        }
        PackedB { k, n, data }
    }

    /// `B = wᵀ` for `w` row-major `[n, k]` (a weight in torch layout,
    /// `[out, in]`).
    pub fn transposed(w: &[f32], n: usize, k: usize) -> PackedB {
        PackedB::build(k, n, |kk, j| w[j * k + kk])
    }

    /// All of B as panels.
    fn panels(&self) -> Panels<'_> {
        Panels {
            data: &self.data,
            k: self.k,
            n: self.n,
            stride: self.k * NR,
        }
    }
}

/// Some rows of a [`PackedB`]: panel `p` starts at `p * stride`.
#[derive(Clone, Copy)]
struct Panels<'a> {
    data: &'a [f32],
    k: usize,
    n: usize,
    stride: usize,
}

impl<'a> Panels<'a> {
    /// Rows `ks` of these rows (a block of the inner dimension).
    fn inner(&self, ks: std::ops::Range<usize>) -> Panels<'a> {
        Panels {
            data: &self.data[ks.start * NR..],
            k: ks.len(),
            ..*self
        }
    }

    fn panel(&self, p: usize) -> &[f32] {
        &self.data[p * self.stride..p * self.stride + self.k * NR]
    }
}

/// `A` `[m, k]` read as `a(i, j) = data[i * row + j * col]`: row-major
/// (`row = k, col = 1`) or the transpose of a row-major `[k, m]`.
#[derive(Debug, Clone, Copy)]
pub struct MatA<'a> {
    data: &'a [f32],
    m: usize,
    k: usize,
    row: usize,
    col: usize,
}

impl<'a> MatA<'a> {
    /// `data` row-major `[m, k]`.
    pub fn rows(data: &'a [f32], m: usize, k: usize) -> MatA<'a> {
        assert!(data.len() >= m * k, "A is smaller than {m}x{k}");
        MatA {
            data,
            m,
            k,
            row: k,
            col: 1,
        }
    }

    /// Columns `ks` of A (a block of the inner dimension).
    fn inner(&self, ks: std::ops::Range<usize>) -> MatA<'a> {
        MatA {
            data: &self.data[(ks.start * self.col).min(self.data.len())..],
            k: ks.len(),
            ..*self
        }
    }

    /// The transpose of `data` row-major `[k, m]`.
    pub fn transposed(data: &'a [f32], m: usize, k: usize) -> MatA<'a> {
        assert!(data.len() >= m * k, "A is smaller than {k}x{m}");
        MatA {
            data,
            m,
            k,
            row: 1,
            col: m,
        }
    }
}

/// Which tile runs: all compute the same chains, so the same bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Isa {
    Portable,
    Avx2,
    Avx512,
}

/// `C` shared by tasks that write disjoint rows and columns.
#[derive(Clone, Copy)]
struct SharedC(*mut f32);
// SAFETY: tasks write disjoint (row range, column panel) blocks of C, so
// the pointer may move to another thread ...
unsafe impl Send for SharedC {}
// SAFETY: ... and be shared by several: no two write the same element, and
// none reads what another writes.
unsafe impl Sync for SharedC {}

impl Isa {
    fn best() -> Isa {
        if has_avx512() {
            Isa::Avx512
        } else if has_avx2_fma() {
            Isa::Avx2
        } else {
            Isa::Portable
        }
    }

    /// Every tile this CPU can run (the tests compare them).
    #[cfg(test)]
    fn available() -> Vec<Isa> {
        let mut all = vec![Isa::Portable];
        if has_avx2_fma() {
            all.push(Isa::Avx2);
        }
        if has_avx512() {
            all.push(Isa::Avx512);
        }
        all
    }
}

impl SharedC {
    /// The pointer `rows` rows on (a method, so closures capture the
    /// whole Send wrapper rather than its raw pointer field).
    ///
    /// # Safety
    /// The offset must stay within C.
    unsafe fn offset(self, elements: usize) -> SharedC {
        // SAFETY: the caller upholds this function's `# Safety` contract above, which is what every raw-pointer access and vector instruction below needs.
        unsafe { SharedC(self.0.add(elements)) }
    }
}

/// Where each chain of a product starts.
#[derive(Debug, Clone, Copy)]
enum Start<'a> {
    Zero,
    /// C's current value (`C += A·B`).
    C,
    /// The same row for every row of C (`C = bias + A·B`).
    Bias(&'a [f32]),
}

/// `C = A·B`, or `C += A·B` when `accumulate`, for `c` row-major with row
/// stride `ldc` (at least `n`). Large products use the other threads.
pub fn gemm(a: MatA, b: &PackedB, c: &mut [f32], ldc: usize, accumulate: bool) {
    gemm_by(Threads::Shared, a, b, c, ldc, accumulate)
}

/// Which threads compute a product (the bits are the same either way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Threads {
    /// A large product uses the other threads too.
    Shared,
    /// The calling thread only: for a caller that already gives each
    /// thread its own rows.
    This,
}

/// [`gemm`] on `threads`.
pub fn gemm_by(
    threads: Threads,
    a: MatA,
    b: &PackedB,
    c: &mut [f32],
    ldc: usize,
    accumulate: bool,
) {
    let start = if accumulate { Start::C } else { Start::Zero };
    gemm_isa(Isa::best(), a, b, c, ldc, start, threads == Threads::Shared)
}

/// `C = bias + A·B` for every row of C: each chain starts at its column's
/// bias (no copy of the bias into C first).
pub fn gemm_bias(a: MatA, b: &PackedB, bias: &[f32], c: &mut [f32], ldc: usize) {
    gemm_bias_by(Threads::Shared, a, b, bias, c, ldc)
}

/// [`gemm_bias`] on `threads`.
pub fn gemm_bias_by(
    threads: Threads,
    a: MatA,
    b: &PackedB,
    bias: &[f32],
    c: &mut [f32],
    ldc: usize,
) {
    assert!(bias.len() >= b.n, "the bias is shorter than the width");
    let share = threads == Threads::Shared;
    gemm_isa(Isa::best(), a, b, c, ldc, Start::Bias(bias), share)
}

/// Whether `rows` rows of `work_per_row` multiply-adds each are worth
/// sharing between threads.
pub fn worth_sharing(rows: usize, work_per_row: usize) -> bool {
    rows.saturating_mul(work_per_row) >= PARALLEL_WORK
}

fn gemm_isa(isa: Isa, a: MatA, b: &PackedB, c: &mut [f32], ldc: usize, start: Start, share: bool) {
    assert_eq!(a.k, b.k, "inner dimensions differ");
    assert!(ldc >= b.n, "row stride below the width");
    if a.m == 0 || b.n == 0 {
        return;
    }
    assert!(c.len() >= (a.m - 1) * ldc + b.n, "C is too small");
    // Long inner dimensions run in blocks, so a block of A and of B stays
    // in cache. A block continues the chains where the last one stopped
    // (C holds them in between): the order over k is unchanged.
    // (A few rows of A fit in cache whole: those run in one pass.)
    let blocked = a.k > 2 * KC && a.m >= 4 * ROWS_PER_TASK;
    let kc = if blocked { KC } else { a.k.max(1) };
    let all = b.panels();
    in_k_blocks(a.k, kc, start, |ks, from| {
        pass(isa, a.inner(ks.clone()), all.inner(ks), c, ldc, from, share)
    });
}

/// Runs `f` over consecutive blocks of at most `kc` of the inner
/// dimension `0..k` (at least one, even when `k` is 0). The first block
/// starts the chains at `start`; each later one continues them from C
/// where the last stopped, so the order over k is unchanged.
fn in_k_blocks<'s>(
    k: usize,
    kc: usize,
    start: Start<'s>,
    mut f: impl FnMut(std::ops::Range<usize>, Start<'s>),
) {
    let mut k0 = 0;
    loop {
        let k1 = (k0 + kc.max(1)).min(k);
        f(k0..k1, if k0 > 0 { Start::C } else { start });
        k0 = k1;
        if k0 >= k {
            break;
        }
    }
}

/// One pass over C for one block of the inner dimension.
fn pass(isa: Isa, a: MatA, b: Panels, c: &mut [f32], ldc: usize, start: Start, share: bool) {
    let panels = b.n.div_ceil(NR);
    let row_tasks = a.m.div_ceil(ROWS_PER_TASK);
    let out = SharedC(c.as_mut_ptr());
    // AVX-512 tiles take two panels (32 columns) at once.
    let group = if isa == Isa::Avx512 { 2 } else { 1 };
    let groups = panels.div_ceil(group);
    let panel_range = move |g: usize| g * group..((g + 1) * group).min(panels);
    let parallel = share && worth_sharing(a.m, a.k * b.n);
    if a.col == 1 && row_tasks < 4 {
        // Few rows (a recurrent step): tasks are (row chunk, panels) pairs.
        let task = move |t: usize| {
            let (g, rt) = (t % groups, t / groups);
            let rows = rt * ROWS_PER_TASK..((rt + 1) * ROWS_PER_TASK).min(a.m);
            // SAFETY: this task alone writes rows `rows` x these panels.
            unsafe { block(a, b, out, ldc, start, panel_range(g), rows, isa) };
        };
        let tasks = groups * row_tasks;
        if !parallel || tasks == 1 {
            (0..tasks).for_each(task);
        } else {
            (0..tasks).into_par_iter().for_each(task);
        }
    } else {
        // Many rows: a task takes a row chunk across a band of panels
        // (COLUMNS_PER_TASK wide), so its block of A and the band's block
        // of B are read from cache. A transposed A (a row of A is a
        // strided column of the data) is first copied out row-major: the
        // same chains, read contiguously.
        let groups_per_band = (COLUMNS_PER_TASK / (group * NR)).max(1);
        let bands = groups.div_ceil(groups_per_band);
        let task = move |t: usize| {
            // Neighbouring tasks share a band: one thread's B stays hot.
            let (band, rt) = (t / row_tasks, t % row_tasks);
            let rows = rt * ROWS_PER_TASK..((rt + 1) * ROWS_PER_TASK).min(a.m);
            let count = rows.len();
            let copy;
            let (local, first) = if a.col == 1 {
                (a, rows.start)
            } else {
                let mut rows_copy = vec![0f32; count * a.k];
                // Blocked over k so the writes fill whole cache lines.
                for k0 in (0..a.k).step_by(16) {
                    let k1 = (k0 + 16).min(a.k);
                    for r in 0..count {
                        let dst = &mut rows_copy[r * a.k + k0..r * a.k + k1];
                        for (kk, d) in (k0..k1).zip(dst) {
                            *d = a.data[kk * a.col + (rows.start + r) * a.row];
                        }
                    }
                }
                copy = rows_copy;
                (MatA::rows(&copy, count, a.k), 0)
            };
            // The copy's row 0 is C's row `rows.start`.
            let out = if a.col == 1 {
                out
            } else {
                // SAFETY: `rows` lies within C's rows, so the offset stays
                // within C.
                unsafe { out.offset(rows.start * ldc) }
            };
            for g in band * groups_per_band..((band + 1) * groups_per_band).min(groups) {
                // SAFETY: this task alone writes these rows of this band.
                unsafe {
                    block(
                        local,
                        b,
                        out,
                        ldc,
                        start,
                        panel_range(g),
                        first..first + count,
                        isa,
                    )
                };
            }
        };
        let tasks = row_tasks * bands;
        if !parallel || tasks == 1 {
            (0..tasks).for_each(task);
        } else {
            (0..tasks).into_par_iter().for_each(task);
        }
    }
}

/// Computes rows `rows` of column panel `p`.
///
/// # Safety
/// `out` must be valid for the rows and columns written, and no other
/// thread may touch them meanwhile.
#[allow(clippy::too_many_arguments)]
unsafe fn block(
    a: MatA,
    b: Panels,
    out: SharedC,
    ldc: usize,
    start: Start,
    panels: std::ops::Range<usize>,
    rows: std::ops::Range<usize>,
    avx: Isa,
) {
    // SAFETY: the caller upholds this function's `# Safety` contract above, which is what every raw-pointer access and vector instruction below needs.
    unsafe {
        // A long inner dimension runs in blocks of TILE_KC within the task, so
        // a tile's slice of its panels and of its rows of A stay in L1 while
        // the tile's rows go by; each block continues the chains where the
        // last stopped (C holds them), so the order over k is unchanged.
        in_k_blocks(a.k, TILE_KC, start, |ks, start| {
            let (a, b) = (a.inner(ks.clone()), b.inner(ks));
            let rows = rows.clone();
            #[cfg(target_arch = "x86_64")]
            if avx == Isa::Avx512 && panels.len() == 2 && panels.end * NR <= b.n {
                // Two full panels: 12 rows x 32 columns a tile.
                let (p0, p1) = (b.panel(panels.start), b.panel(panels.start + 1));
                let mut i = rows.start;
                while i < rows.end {
                    let r = 12.min(rows.end - i);
                    let a_at = &a.data[i * a.row..];
                    let c_at = out.0.add(i * ldc + panels.start * NR);
                    let from = origin(start, c_at, ldc, panels.start * NR);
                    avx512_pair_rows(r, a_at, a.row, a.col, a.k, p0, p1, c_at, ldc, from);
                    i += r;
                }
                return;
            }
            for p in panels.clone() {
                block_panel(a, b, out, ldc, start, p, rows.clone(), avx);
            }
        });
    }
}

/// Rows `rows` of column panel `p`.
///
/// # Safety
/// As [`block`].
#[allow(clippy::too_many_arguments)]
unsafe fn block_panel(
    a: MatA,
    b: Panels,
    out: SharedC,
    ldc: usize,
    start: Start,
    p: usize,
    rows: std::ops::Range<usize>,
    avx: Isa,
) {
    // SAFETY: the caller upholds this function's `# Safety` contract above, which is what every raw-pointer access and vector instruction below needs.
    unsafe {
        let width = NR.min(b.n - p * NR);
        let panel = b.panel(p);
        let mut i = rows.start;
        #[cfg(target_arch = "x86_64")]
        if avx == Isa::Avx512 && width == NR {
            // One 16-lane register per row, up to 12 rows a tile.
            while i < rows.end {
                let r = 12.min(rows.end - i);
                let a_at = &a.data[i * a.row..];
                let c_at = out.0.add(i * ldc + p * NR);
                let from = origin(start, c_at, ldc, p * NR);
                avx512_rows(r, a_at, a.row, a.col, a.k, panel, c_at, ldc, from);
                i += r;
            }
            return;
        }
        #[cfg(target_arch = "x86_64")]
        if avx != Isa::Portable && width == NR {
            // Full panels: the tile reads and writes C in place.
            while i < rows.end {
                let r = MR.min(rows.end - i);
                let a_at = &a.data[i * a.row..];
                let c_at = out.0.add(i * ldc + p * NR);
                let from = origin(start, c_at, ldc, p * NR);
                avx2_rows(r, a_at, a.row, a.col, a.k, panel, c_at, ldc, from);
                i += r;
            }
            return;
        }
        while i < rows.end {
            let r = MR.min(rows.end - i);
            // A partial panel runs on a full-width copy of its rows (zeros
            // beyond the width), then the valid columns go back.
            let mut acc = [[0f32; NR]; MR];
            if let Some((src, stride)) = origin(start, out.0.add(i * ldc + p * NR), ldc, p * NR) {
                for (rr, acc_row) in acc.iter_mut().enumerate().take(r) {
                    std::ptr::copy_nonoverlapping(
                        src.add(rr * stride),
                        acc_row.as_mut_ptr(),
                        width,
                    );
                }
            }
            let a_at = &a.data[i * a.row..];
            #[cfg(target_arch = "x86_64")]
            let vector = avx != Isa::Portable;
            #[cfg(not(target_arch = "x86_64"))]
            let vector = false;
            if vector {
                #[cfg(target_arch = "x86_64")]
                {
                    let at: *mut f32 = acc.as_mut_ptr().cast();
                    avx2_rows(r, a_at, a.row, a.col, a.k, panel, at, NR, Some((at, NR)));
                }
            } else {
                tile_portable(r, a_at, a.row, a.col, a.k, panel, &mut acc);
            }
            for (rr, acc_row) in acc.iter().enumerate().take(r) {
                let dst = out.0.add((i + rr) * ldc + p * NR);
                std::ptr::copy_nonoverlapping(acc_row.as_ptr(), dst, width);
            }
            i += r;
        }
    }
}

/// Where a tile's chains start: `None` at zero, else row r at
/// `ptr + r * stride` (C itself, or the bias with stride 0).
type From = Option<(*const f32, usize)>;

/// The start of the tile whose C block begins at `c_at`, columns from `col`.
///
/// # Safety
/// `c_at` must point into C; a bias covers column `col` onwards.
unsafe fn origin(start: Start, c_at: *mut f32, ldc: usize, col: usize) -> From {
    // SAFETY: the caller upholds this function's `# Safety` contract above, which is what every raw-pointer access and vector instruction below needs.
    unsafe {
        match start {
            Start::Zero => None,
            Start::C => Some((c_at as *const f32, ldc)),
            Start::Bias(bias) => Some((bias.as_ptr().add(col), 0)),
        }
    }
}

/// Tiles are generic over their row count (so the accumulators stay in
/// registers); these pick the instance for a run-time count.
macro_rules! rows_dispatch {
    ($name:ident, $tile:ident, [$($n:literal)*], ($($arg:ident: $ty:ty),*)) => {
        /// # Safety
        /// As the tile it runs.
        #[cfg(target_arch = "x86_64")]
        #[allow(clippy::too_many_arguments)]
        unsafe fn $name(r: usize, $($arg: $ty),*) {
            // SAFETY: the caller upholds this function's `# Safety` contract above, which is what every raw-pointer access and vector instruction below needs.
            unsafe {
                rows_dispatch!(@match r, $tile, [$($n)*], ($($arg),*))
            }
        }
    };
    (@match $r:ident, $tile:ident, [$($n:literal)*], $call:tt) => {
        match $r {
            $($n => $tile::<$n> $call,)*
            _ => unreachable!("a tile of {} rows", $r),
        }
    };
}

rows_dispatch!(avx2_rows, tile_avx_in_place, [1 2 3 4 5 6],
    (a: &[f32], row: usize, col: usize, k: usize, panel: &[f32], c: *mut f32, ldc: usize, from: From));
rows_dispatch!(avx512_rows, tile_avx512_in_place, [1 2 3 4 5 6 7 8 9 10 11 12],
    (a: &[f32], row: usize, col: usize, k: usize, panel: &[f32], c: *mut f32, ldc: usize, from: From));
rows_dispatch!(avx512_pair_rows, tile_avx512_pair, [1 2 3 4 5 6 7 8 9 10 11 12],
    (a: &[f32], row: usize, col: usize, k: usize, p0: &[f32], p1: &[f32], c: *mut f32, ldc: usize, from: From));

/// The reference chain: `acc[r][j] = fma(a(r, k), b(k, j), acc[r][j])` for
/// k in order.
fn tile_portable(
    r: usize,
    a: &[f32],
    row: usize,
    col: usize,
    k: usize,
    panel: &[f32],
    acc: &mut [[f32; NR]; MR],
) {
    for kk in 0..k {
        let b = &panel[kk * NR..(kk + 1) * NR];
        for (rr, acc_row) in acc.iter_mut().enumerate().take(r) {
            let av = a[rr * row + kk * col];
            for (c, &bv) in acc_row.iter_mut().zip(b) {
                *c = av.mul_add(bv, *c);
            }
        }
    }
}

/// [`tile_avx512_in_place`] over two adjacent panels: two registers per
/// row, so each broadcast of A feeds two multiply-adds.
///
/// # Safety
/// `c` must be valid for R rows of 32 at stride `ldc`; AVX-512F present.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn tile_avx512_pair<const R: usize>(
    a: &[f32],
    row: usize,
    col: usize,
    k: usize,
    p0: &[f32],
    p1: &[f32],
    c: *mut f32,
    ldc: usize,
    from: From,
) {
    // SAFETY: the caller upholds this function's `# Safety` contract above, which is what every raw-pointer access and vector instruction below needs.
    unsafe {
        use std::arch::x86_64::*;
        debug_assert!(p0.len() >= k * NR && p1.len() >= k * NR);
        debug_assert!(k == 0 || a.len() > (R - 1) * row + (k - 1) * col);
        let mut lo = [_mm512_setzero_ps(); R];
        let mut hi = [_mm512_setzero_ps(); R];
        if let Some((src, stride)) = from {
            for r in 0..R {
                lo[r] = _mm512_loadu_ps(src.add(r * stride));
                hi[r] = _mm512_loadu_ps(src.add(r * stride + NR));
            }
        }
        let (ap, b0p, b1p) = (a.as_ptr(), p0.as_ptr(), p1.as_ptr());
        for kk in 0..k {
            let b0 = _mm512_loadu_ps(b0p.add(kk * NR));
            let b1 = _mm512_loadu_ps(b1p.add(kk * NR));
            let ak = ap.add(kk * col);
            for r in 0..R {
                let av = _mm512_set1_ps(*ak.add(r * row));
                lo[r] = _mm512_fmadd_ps(av, b0, lo[r]);
                hi[r] = _mm512_fmadd_ps(av, b1, hi[r]);
            }
        }
        for r in 0..R {
            _mm512_storeu_ps(c.add(r * ldc), lo[r]);
            _mm512_storeu_ps(c.add(r * ldc + NR), hi[r]);
        }
    }
}

/// [`tile_avx_in_place`] on AVX-512: one 16-lane register per row.
///
/// # Safety
/// `c` must be valid for R rows of 16 at stride `ldc`; AVX-512F present.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn tile_avx512_in_place<const R: usize>(
    a: &[f32],
    row: usize,
    col: usize,
    k: usize,
    panel: &[f32],
    c: *mut f32,
    ldc: usize,
    from: From,
) {
    // SAFETY: the caller upholds this function's `# Safety` contract above, which is what every raw-pointer access and vector instruction below needs.
    unsafe {
        use std::arch::x86_64::*;
        debug_assert!(panel.len() >= k * NR);
        debug_assert!(k == 0 || a.len() > (R - 1) * row + (k - 1) * col);
        let mut acc = [_mm512_setzero_ps(); R];
        if let Some((src, stride)) = from {
            for (r, v) in acc.iter_mut().enumerate() {
                *v = _mm512_loadu_ps(src.add(r * stride));
            }
        }
        let (ap, bp) = (a.as_ptr(), panel.as_ptr());
        for kk in 0..k {
            let b = _mm512_loadu_ps(bp.add(kk * NR));
            let ak = ap.add(kk * col);
            for (r, v) in acc.iter_mut().enumerate() {
                *v = _mm512_fmadd_ps(_mm512_set1_ps(*ak.add(r * row)), b, *v);
            }
        }
        for (r, v) in acc.iter().enumerate() {
            _mm512_storeu_ps(c.add(r * ldc), *v);
        }
    }
}

/// [`tile_portable`]'s chain on AVX2 registers, R rows x 16 columns of C
/// read and written in place.
///
/// # Safety
/// `c` must be valid for R rows of 16 at stride `ldc`; AVX2 and FMA present.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn tile_avx_in_place<const R: usize>(
    a: &[f32],
    row: usize,
    col: usize,
    k: usize,
    panel: &[f32],
    c: *mut f32,
    ldc: usize,
    from: From,
) {
    // SAFETY: the caller upholds this function's `# Safety` contract above, which is what every raw-pointer access and vector instruction below needs.
    unsafe {
        use std::arch::x86_64::*;
        debug_assert!(panel.len() >= k * NR);
        debug_assert!(k == 0 || a.len() > (R - 1) * row + (k - 1) * col);
        let mut lo = [_mm256_setzero_ps(); R];
        let mut hi = [_mm256_setzero_ps(); R];
        if let Some((src, stride)) = from {
            for r in 0..R {
                lo[r] = _mm256_loadu_ps(src.add(r * stride));
                hi[r] = _mm256_loadu_ps(src.add(r * stride + 8));
            }
        }
        let (ap, bp) = (a.as_ptr(), panel.as_ptr());
        for kk in 0..k {
            let b0 = _mm256_loadu_ps(bp.add(kk * NR));
            let b1 = _mm256_loadu_ps(bp.add(kk * NR + 8));
            let ak = ap.add(kk * col);
            for r in 0..R {
                let av = _mm256_broadcast_ss(&*ak.add(r * row));
                lo[r] = _mm256_fmadd_ps(av, b0, lo[r]);
                hi[r] = _mm256_fmadd_ps(av, b1, hi[r]);
            }
        }
        for r in 0..R {
            _mm256_storeu_ps(c.add(r * ldc), lo[r]);
            _mm256_storeu_ps(c.add(r * ldc + 8), hi[r]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::sample_values;

    #[test]
    fn matches_a_plain_product_and_every_row_stands_alone() {
        for &(m, k, n) in &[
            (1, 1, 1),
            (7, 5, 17),
            (13, 64, 33),
            (64, 40, 100),
            (200, 3, 16),
            (100, 20, 64),
            (30, 7, 48),
            (200, 700, 40),
            // A long inner dimension in few rows: blocks within each task
            // (full panel pairs, a lone panel and a partial one).
            (13, 1000, 70),
        ] {
            let a = sample_values(m * k, 1);
            let b = sample_values(k * n, 2);
            let packed = PackedB::from_rows(&b, k, n);
            for isa in Isa::available() {
                let mut c = vec![0f32; m * n];
                gemm_isa(
                    isa,
                    MatA::rows(&a, m, k),
                    &packed,
                    &mut c,
                    n,
                    Start::Zero,
                    true,
                );
                for i in 0..m {
                    // The row alone gives the same bits.
                    let mut alone = vec![0f32; n];
                    gemm_isa(
                        isa,
                        MatA::rows(&a[i * k..], 1, k),
                        &packed,
                        &mut alone,
                        n,
                        Start::Zero,
                        false,
                    );
                    assert_eq!(&c[i * n..(i + 1) * n], &alone[..]);
                    for j in 0..n {
                        let want: f64 = (0..k)
                            .map(|kk| a[i * k + kk] as f64 * b[kk * n + j] as f64)
                            .sum();
                        assert!((c[i * n + j] as f64 - want).abs() < 1e-5);
                        let mut chain = 0f32;
                        for kk in 0..k {
                            chain = a[i * k + kk].mul_add(b[kk * n + j], chain);
                        }
                        assert_eq!(c[i * n + j].to_bits(), chain.to_bits(), "{isa:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn chains_can_start_at_a_bias() {
        let (m, k, n) = (13, 9, 37);
        let (a, b, bias) = (
            sample_values(m * k, 6),
            sample_values(k * n, 7),
            sample_values(n, 8),
        );
        let packed = PackedB::from_rows(&b, k, n);
        for isa in Isa::available() {
            let mut c = vec![f32::NAN; m * n];
            gemm_isa(
                isa,
                MatA::rows(&a, m, k),
                &packed,
                &mut c,
                n,
                Start::Bias(&bias),
                true,
            );
            for i in 0..m {
                for j in 0..n {
                    let mut chain = bias[j];
                    for kk in 0..k {
                        chain = a[i * k + kk].mul_add(b[kk * n + j], chain);
                    }
                    assert_eq!(c[i * n + j].to_bits(), chain.to_bits(), "{isa:?}");
                }
            }
        }
    }

    #[test]
    fn transposed_views_and_accumulation() {
        for (m, k, n) in [(9, 11, 20), (7, 600, 48)] {
            transposed_case(m, k, n);
        }
    }

    fn transposed_case(m: usize, k: usize, n: usize) {
        let at = sample_values(k * m, 3); // [k, m]
        let w = sample_values(n * k, 4); // [n, k]: B = wᵀ
        let start = sample_values(m * n, 5);
        for isa in Isa::available() {
            let mut c = start.clone();
            gemm_isa(
                isa,
                MatA::transposed(&at, m, k),
                &PackedB::transposed(&w, n, k),
                &mut c,
                n,
                Start::C,
                false,
            );
            for i in 0..m {
                for j in 0..n {
                    let mut chain = start[i * n + j];
                    for kk in 0..k {
                        chain = at[kk * m + i].mul_add(w[j * k + kk], chain);
                    }
                    assert_eq!(c[i * n + j].to_bits(), chain.to_bits(), "{isa:?}");
                }
            }
        }
    }
}
