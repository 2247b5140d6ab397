//! The per-step cell arithmetic after the matrix products, vectorised
//! across units. Each element's arithmetic is the same whether it runs in
//! an AVX-512 or AVX2 lane or in the scalar tail (one generic definition), so it
//! depends only on its inputs.

use super::lanes::{self, Lanes};

/// One batch row of an LSTM step. `z` holds the row's pre-activations
/// `[i | f | g | o]` (H each) and receives the activations; `c` is the
/// cell state, updated in place; `tanh_c` and `h` receive `tanh(c')` and
/// `h'`.
pub struct LstmRow<'a> {
    pub z: &'a mut [f32],
    pub c: &'a mut [f32],
    pub tanh_c: &'a mut [f32],
    pub h: &'a mut [f32],
}

/// One batch row of a GRU step. `gi` holds `x·W + b_i` `[r | z | n]` and
/// receives the activations `[r | z | n]`; `gh` holds `h·U + b_h`;
/// `h_prev` the row's state; `h` receives `h'`.
pub struct GruRow<'a> {
    pub gi: &'a mut [f32],
    pub gh: &'a [f32],
    pub h_prev: &'a [f32],
    pub h: &'a mut [f32],
}

/// # Safety
/// Lanes `j..j + L::WIDTH` of every buffer of `row` are in bounds, and the
/// CPU runs `L`'s instructions.
#[inline(always)]
unsafe fn lstm_lanes<L: Lanes>(row: &mut LstmRow, units: usize, j: usize) {
    // SAFETY: this function's contract: lanes `j..j + L::WIDTH` of every buffer of the row are in bounds, and the CPU runs `L`'s instructions.
    unsafe {
        let z = row.z.as_mut_ptr();
        let i = lanes::sigmoid(L::load(z.add(j)));
        let f = lanes::sigmoid(L::load(z.add(units + j)));
        let g = lanes::tanh(L::load(z.add(2 * units + j)));
        let o = lanes::sigmoid(L::load(z.add(3 * units + j)));
        let c = f.mul(L::load(row.c.as_ptr().add(j))).add(i.mul(g));
        let tanh_c = lanes::tanh(c);
        i.store(z.add(j));
        f.store(z.add(units + j));
        g.store(z.add(2 * units + j));
        o.store(z.add(3 * units + j));
        c.store(row.c.as_mut_ptr().add(j));
        tanh_c.store(row.tanh_c.as_mut_ptr().add(j));
        o.mul(tanh_c).store(row.h.as_mut_ptr().add(j));
    }
}

/// # Safety
/// Lanes `j..j + L::WIDTH` of every buffer of `row` are in bounds, and the
/// CPU runs `L`'s instructions.
#[inline(always)]
unsafe fn gru_lanes<L: Lanes>(row: &mut GruRow, units: usize, j: usize) {
    // SAFETY: this function's contract: lanes `j..j + L::WIDTH` of every buffer of the row are in bounds, and the CPU runs `L`'s instructions.
    unsafe {
        let (gi, gh) = (row.gi.as_mut_ptr(), row.gh.as_ptr());
        let r = lanes::sigmoid(L::load(gi.add(j)).add(L::load(gh.add(j))));
        let z = lanes::sigmoid(L::load(gi.add(units + j)).add(L::load(gh.add(units + j))));
        let n =
            lanes::tanh(L::load(gi.add(2 * units + j)).add(r.mul(L::load(gh.add(2 * units + j)))));
        let h_prev = L::load(row.h_prev.as_ptr().add(j));
        // (1 - z) * n + z * h, written as n - z*n + z*h.
        let h = n.sub(z.mul(n)).add(z.mul(h_prev));
        r.store(gi.add(j));
        z.store(gi.add(units + j));
        n.store(gi.add(2 * units + j));
        h.store(row.h.as_mut_ptr().add(j));
    }
}

/// One batch row of an LSTM step backward (see `model::fused::layer_backward`).
pub struct LstmBackRow<'a> {
    /// In: the activations `[i|f|g|o]`; out: the pre-activation gradients
    /// `[i|f|g|o]` (each lane reads its four gates before it writes them).
    pub gates: &'a mut [f32],
    pub tanh_c: &'a [f32],
    pub c_prev: &'a [f32],
    pub d_out: &'a [f32],
    /// In: the gradient of `h` from the step after; out: zero (the
    /// recurrent product adds to it).
    pub dh_next: &'a mut [f32],
    /// In: the gradient of `c` from the step after; out: for the step before.
    pub dc_next: &'a mut [f32],
}

/// One batch row of a GRU step backward.
pub struct GruBackRow<'a> {
    /// In: the activations `[r|z|n]`; out: the gradients of `x·W + b_i`
    /// `[r|z|n]` (each lane reads its gates before it writes them).
    pub gates: &'a mut [f32],
    pub h_prev: &'a [f32],
    /// `h·U_n + b_hn`.
    pub gh_n: &'a [f32],
    pub d_out: &'a [f32],
    /// Receives the gradients of `h·U + b_h` `[r|z|n]`.
    pub dg: &'a mut [f32],
    /// In: the gradient of `h` from the step after; out: its direct part
    /// for the step before (the recurrent product adds the rest).
    pub dh_next: &'a mut [f32],
}

/// # Safety
/// Lanes `j..j + L::WIDTH` of every buffer of `row` are in bounds, and the
/// CPU runs `L`'s instructions.
#[inline(always)]
unsafe fn lstm_back_lanes<L: Lanes>(row: &mut LstmBackRow, units: usize, j: usize) {
    // SAFETY: this function's contract: lanes `j..j + L::WIDTH` of every buffer of the row are in bounds, and the CPU runs `L`'s instructions.
    unsafe {
        let one = L::splat(1.0);
        let g = row.gates.as_mut_ptr();
        let (i, f) = (L::load(g.add(j)), L::load(g.add(units + j)));
        let (gg, o) = (L::load(g.add(2 * units + j)), L::load(g.add(3 * units + j)));
        let dh = L::load(row.d_out.as_ptr().add(j)).add(L::load(row.dh_next.as_ptr().add(j)));
        let tc = L::load(row.tanh_c.as_ptr().add(j));
        let dc = L::load(row.dc_next.as_ptr().add(j)).add(dh.mul(o).mul(one.sub(tc.mul(tc))));
        let d = g;
        dc.mul(gg).mul(i).mul(one.sub(i)).store(d.add(j));
        dc.mul(L::load(row.c_prev.as_ptr().add(j)))
            .mul(f)
            .mul(one.sub(f))
            .store(d.add(units + j));
        dc.mul(i)
            .mul(one.sub(gg.mul(gg)))
            .store(d.add(2 * units + j));
        dh.mul(tc)
            .mul(o)
            .mul(one.sub(o))
            .store(d.add(3 * units + j));
        dc.mul(f).store(row.dc_next.as_mut_ptr().add(j));
        L::splat(0.0).store(row.dh_next.as_mut_ptr().add(j));
    }
}

/// # Safety
/// Lanes `j..j + L::WIDTH` of every buffer of `row` are in bounds, and the
/// CPU runs `L`'s instructions.
#[inline(always)]
unsafe fn gru_back_lanes<L: Lanes>(row: &mut GruBackRow, units: usize, j: usize) {
    // SAFETY: this function's contract: lanes `j..j + L::WIDTH` of every buffer of the row are in bounds, and the CPU runs `L`'s instructions.
    unsafe {
        let one = L::splat(1.0);
        let g = row.gates.as_mut_ptr();
        let (r, z, n) = (
            L::load(g.add(j)),
            L::load(g.add(units + j)),
            L::load(g.add(2 * units + j)),
        );
        let dh = L::load(row.d_out.as_ptr().add(j)).add(L::load(row.dh_next.as_ptr().add(j)));
        let dn = dh.mul(one.sub(z)).mul(one.sub(n.mul(n)));
        let dz = dh
            .mul(L::load(row.h_prev.as_ptr().add(j)).sub(n))
            .mul(z)
            .mul(one.sub(z));
        let dr = dn
            .mul(L::load(row.gh_n.as_ptr().add(j)))
            .mul(r)
            .mul(one.sub(r));
        let (d, dg) = (g, row.dg.as_mut_ptr());
        dr.store(d.add(j));
        dz.store(d.add(units + j));
        dn.store(d.add(2 * units + j));
        dr.store(dg.add(j));
        dz.store(dg.add(units + j));
        dn.mul(r).store(dg.add(2 * units + j));
        dh.mul(z).store(row.dh_next.as_mut_ptr().add(j));
    }
}

macro_rules! row_driver {
    ($name:ident, $avx:ident, $avx512:ident, $lanes:ident, $row:ty, $check:expr) => {
        /// Units `from..` in blocks of eight; returns where the blocks stop.
        ///
        /// # Safety
        /// The CPU has AVX2 and FMA; the row's buffers hold `units`.
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn $avx(row: &mut $row, units: usize, from: usize) -> usize {
            // SAFETY: the caller checked that the CPU has AVX2 and FMA (this function's contract), so F8 values may exist; `units` is within the row's buffers (checked by the caller).
            unsafe {
                let mut j = from;
                while j + lanes::F8::WIDTH <= units {
                    $lanes::<lanes::F8>(row, units, j);
                    j += lanes::F8::WIDTH;
                }
                j
            }
        }

        /// Units in blocks of sixteen; returns where the blocks stop.
        ///
        /// # Safety
        /// The CPU has AVX-512F; the row's buffers hold `units`.
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f")]
        unsafe fn $avx512(row: &mut $row, units: usize) -> usize {
            // SAFETY: the caller checked that the CPU has AVX-512F (this function's contract), so F16 values may exist; `units` is within the row's buffers (checked by the caller).
            unsafe {
                let mut j = 0;
                while j + lanes::F16::WIDTH <= units {
                    $lanes::<lanes::F16>(row, units, j);
                    j += lanes::F16::WIDTH;
                }
                j
            }
        }

        pub fn $name(row: &mut $row, units: usize) {
            assert!($check(row, units), "cell buffers are too small");
            let mut j = 0;
            #[cfg(target_arch = "x86_64")]
            {
                if lanes::has_avx512() {
                    // SAFETY: the CPU has AVX-512F; lengths checked above.
                    j = unsafe { $avx512(row, units) };
                }
                if lanes::has_avx2_fma() {
                    // SAFETY: the CPU has AVX2 and FMA; lengths checked above.
                    j = unsafe { $avx(row, units, j) };
                }
            }
            while j < units {
                // SAFETY: lengths checked above.
                unsafe { $lanes::<f32>(row, units, j) };
                j += 1;
            }
        }
    };
}

row_driver!(
    lstm_row,
    lstm_row_avx,
    lstm_row_avx512,
    lstm_lanes,
    LstmRow,
    |r: &LstmRow, u| {
        r.z.len() >= 4 * u && r.c.len() >= u && r.tanh_c.len() >= u && r.h.len() >= u
    }
);
row_driver!(
    gru_row,
    gru_row_avx,
    gru_row_avx512,
    gru_lanes,
    GruRow,
    |r: &GruRow, u| {
        r.gi.len() >= 3 * u && r.gh.len() >= 3 * u && r.h_prev.len() >= u && r.h.len() >= u
    }
);

row_driver!(
    lstm_back_row,
    lstm_back_row_avx,
    lstm_back_row_avx512,
    lstm_back_lanes,
    LstmBackRow,
    |r: &LstmBackRow, u| {
        r.gates.len() >= 4 * u
            && r.tanh_c.len() >= u
            && r.c_prev.len() >= u
            && r.d_out.len() >= u
            && r.dh_next.len() >= u
            && r.dc_next.len() >= u
    }
);
row_driver!(
    gru_back_row,
    gru_back_row_avx,
    gru_back_row_avx512,
    gru_back_lanes,
    GruBackRow,
    |r: &GruBackRow, u| {
        r.gates.len() >= 3 * u
            && r.h_prev.len() >= u
            && r.gh_n.len() >= u
            && r.d_out.len() >= u
            && r.dg.len() >= 3 * u
            && r.dh_next.len() >= u
    }
);

/// Softmax of one row: max, `exp(x - max)`, then the sum in index order.
pub fn softmax_row(logits: &[f32], out: &mut [f32]) {
    let max = logits.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let mut sum = 0f32;
    for (o, &v) in out.iter_mut().zip(logits) {
        *o = lanes::exp(v - max);
        sum += *o;
    }
    for o in out.iter_mut() {
        *o /= sum;
    }
}
