//! Elementwise math (exp, sigmoid, tanh) written once over a `Lanes` type,
//! instantiated for one `f32`, eight AVX2 lanes and sixteen AVX-512 lanes.
//!
//! Batch invariance needs an element's bits to depend only on its value,
//! never on whether it fell in a vector body or a scalar tail, nor on the
//! machine. So every step is an IEEE operation that rounds the same in a
//! lane as in a scalar (add, mul, div, fused multiply-add, round to
//! nearest even), and min/max follow x86's rule (the second operand when
//! either is NaN) in both. The polynomials are Cephes's `expf` and
//! `tanhf` (about 1 ulp).

pub trait Lanes: Copy {
    /// Lanes in one value.
    const WIDTH: usize;
    /// # Safety
    /// `p` must point at `WIDTH` readable f32 (and the CPU run this type).
    unsafe fn load(p: *const f32) -> Self;
    /// # Safety
    /// `p` must point at `WIDTH` writable f32 (and the CPU run this type).
    unsafe fn store(self, p: *mut f32);
    /// Every lane `v`.
    ///
    /// # Safety
    /// The CPU runs this type's instructions. (A value of a vector type is
    /// made only here and by `load`, so every other operation on one is
    /// safe: the value's existence proves the CPU.)
    unsafe fn splat(v: f32) -> Self;
    /// Every lane `v`, a value of the same type as `self`.
    #[inline(always)]
    fn same(self, v: f32) -> Self {
        // SAFETY: `self` exists, so the CPU runs this type's instructions
        // (see `splat`).
        unsafe { Self::splat(v) }
    }
    fn add(self, o: Self) -> Self;
    fn sub(self, o: Self) -> Self;
    fn mul(self, o: Self) -> Self;
    fn div(self, o: Self) -> Self;
    /// `self * b + c`, rounded once.
    fn fma(self, b: Self, c: Self) -> Self;
    /// x86 `maxps`: `o` when either is NaN.
    fn max(self, o: Self) -> Self;
    /// x86 `minps`: `o` when either is NaN.
    fn min(self, o: Self) -> Self;
    fn round_even(self) -> Self;
    fn abs(self) -> Self;
    /// `self`'s magnitude with `sign`'s sign bit.
    fn with_sign_of(self, sign: Self) -> Self;
    /// `2^self` for integral `self` in [-127, 127].
    fn pow2(self) -> Self;
    /// Per lane: `a` where `self > limit`, else `b`.
    fn select_gt(self, limit: Self, a: Self, b: Self) -> Self;
}

impl Lanes for f32 {
    const WIDTH: usize = 1;
    #[inline(always)]
    unsafe fn load(p: *const f32) -> f32 {
        // SAFETY: the caller gives a readable f32 (`load`'s contract).
        unsafe { *p }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32) {
        // SAFETY: the caller gives a writable f32 (`store`'s contract).
        unsafe { *p = self }
    }
    #[inline(always)]
    unsafe fn splat(v: f32) -> f32 {
        v
    }
    #[inline(always)]
    fn add(self, o: f32) -> f32 {
        self + o
    }
    #[inline(always)]
    fn sub(self, o: f32) -> f32 {
        self - o
    }
    #[inline(always)]
    fn mul(self, o: f32) -> f32 {
        self * o
    }
    #[inline(always)]
    fn div(self, o: f32) -> f32 {
        self / o
    }
    #[inline(always)]
    fn fma(self, b: f32, c: f32) -> f32 {
        self.mul_add(b, c)
    }
    #[inline(always)]
    fn max(self, o: f32) -> f32 {
        if self > o {
            self
        } else {
            o
        }
    }
    #[inline(always)]
    fn min(self, o: f32) -> f32 {
        if self < o {
            self
        } else {
            o
        }
    }
    #[inline(always)]
    fn round_even(self) -> f32 {
        self.round_ties_even()
    }
    #[inline(always)]
    fn abs(self) -> f32 {
        f32::from_bits(self.to_bits() & 0x7fff_ffff)
    }
    #[inline(always)]
    fn with_sign_of(self, sign: f32) -> f32 {
        f32::from_bits((self.to_bits() & 0x7fff_ffff) | (sign.to_bits() & 0x8000_0000))
    }
    #[inline(always)]
    fn pow2(self) -> f32 {
        f32::from_bits(((self as i32 + 127) as u32) << 23)
    }
    #[inline(always)]
    fn select_gt(self, limit: f32, a: f32, b: f32) -> f32 {
        if self > limit {
            a
        } else {
            b
        }
    }
}

#[cfg(target_arch = "x86_64")]
pub use avx::F8;

#[cfg(target_arch = "x86_64")]
mod avx {
    use super::Lanes;
    use std::arch::x86_64::*;

    /// Eight f32 lanes. Made only by the unsafe `load` and `splat`, whose
    /// contracts require AVX2 and FMA (checked at run time, see
    /// [`super::has_avx2_fma`]), so a value's existence proves the CPU and
    /// every other operation on it is safe. The register is private.
    #[derive(Clone, Copy)]
    pub struct F8(__m256);

    impl Lanes for F8 {
        const WIDTH: usize = 8;
        #[inline(always)]
        unsafe fn load(p: *const f32) -> F8 {
            // SAFETY: the caller gives F8::WIDTH readable floats on a CPU
            // with AVX2 and FMA (`load`'s contract).
            // SAFETY: `self` exists, so the CPU has AVX2 and FMA (see `Lanes::splat`).
            unsafe { F8(_mm256_loadu_ps(p)) }
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            // SAFETY: the caller gives F8::WIDTH writable floats; `self`
            // exists, so the CPU has AVX2 and FMA.
            // SAFETY: `self` exists, so the CPU has AVX2 and FMA (see `Lanes::splat`).
            unsafe { _mm256_storeu_ps(p, self.0) }
        }
        #[inline(always)]
        unsafe fn splat(v: f32) -> F8 {
            // SAFETY: the caller's CPU has AVX2 and FMA (`splat`'s contract).
            unsafe { F8(_mm256_set1_ps(v)) }
        }
        #[inline(always)]
        fn add(self, o: F8) -> F8 {
            // SAFETY: `self` exists, so the CPU has AVX2 and FMA (see `Lanes::splat`).
            unsafe { F8(_mm256_add_ps(self.0, o.0)) }
        }
        #[inline(always)]
        fn sub(self, o: F8) -> F8 {
            // SAFETY: `self` exists, so the CPU has AVX2 and FMA (see `Lanes::splat`).
            unsafe { F8(_mm256_sub_ps(self.0, o.0)) }
        }
        #[inline(always)]
        fn mul(self, o: F8) -> F8 {
            // SAFETY: `self` exists, so the CPU has AVX2 and FMA (see `Lanes::splat`).
            unsafe { F8(_mm256_mul_ps(self.0, o.0)) }
        }
        #[inline(always)]
        fn div(self, o: F8) -> F8 {
            // SAFETY: `self` exists, so the CPU has AVX2 and FMA (see `Lanes::splat`).
            unsafe { F8(_mm256_div_ps(self.0, o.0)) }
        }
        #[inline(always)]
        fn fma(self, b: F8, c: F8) -> F8 {
            // SAFETY: `self` exists, so the CPU has AVX2 and FMA (see `Lanes::splat`).
            unsafe { F8(_mm256_fmadd_ps(self.0, b.0, c.0)) }
        }
        #[inline(always)]
        fn max(self, o: F8) -> F8 {
            // SAFETY: `self` exists, so the CPU has AVX2 and FMA (see `Lanes::splat`).
            unsafe { F8(_mm256_max_ps(self.0, o.0)) }
        }
        #[inline(always)]
        fn min(self, o: F8) -> F8 {
            // SAFETY: `self` exists, so the CPU has AVX2 and FMA (see `Lanes::splat`).
            unsafe { F8(_mm256_min_ps(self.0, o.0)) }
        }
        #[inline(always)]
        fn round_even(self) -> F8 {
            // SAFETY: `self` exists, so the CPU has AVX2 and FMA (see `Lanes::splat`).
            unsafe {
                F8(_mm256_round_ps::<
                    { _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC },
                >(self.0))
            }
        }
        #[inline(always)]
        fn abs(self) -> F8 {
            // SAFETY: `self` exists, so the CPU has AVX2 and FMA (see `Lanes::splat`).
            unsafe {
                let mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fff_ffff));
                F8(_mm256_and_ps(self.0, mask))
            }
        }
        #[inline(always)]
        fn with_sign_of(self, sign: F8) -> F8 {
            // SAFETY: `self` exists, so the CPU has AVX2 and FMA (see `Lanes::splat`).
            unsafe {
                let magnitude = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fff_ffff));
                let sign_bit = _mm256_castsi256_ps(_mm256_set1_epi32(i32::MIN));
                F8(_mm256_or_ps(
                    _mm256_and_ps(self.0, magnitude),
                    _mm256_and_ps(sign.0, sign_bit),
                ))
            }
        }
        #[inline(always)]
        fn pow2(self) -> F8 {
            // SAFETY: `self` exists, so the CPU has AVX2 and FMA (see `Lanes::splat`).
            unsafe {
                let n = _mm256_cvtps_epi32(self.0);
                let biased = _mm256_add_epi32(n, _mm256_set1_epi32(127));
                F8(_mm256_castsi256_ps(_mm256_slli_epi32::<23>(biased)))
            }
        }
        #[inline(always)]
        fn select_gt(self, limit: F8, a: F8, b: F8) -> F8 {
            // SAFETY: `self` exists, so the CPU has AVX2 and FMA (see `Lanes::splat`).
            unsafe {
                let mask = _mm256_cmp_ps::<_CMP_GT_OQ>(self.0, limit.0);
                F8(_mm256_blendv_ps(b.0, a.0, mask))
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
pub use avx512::F16;

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::Lanes;
    use std::arch::x86_64::*;

    /// Sixteen f32 lanes: [`super::F8`]'s operations, one per lane, on a
    /// 512-bit register (the same IEEE roundings, so the same bits). Made
    /// only by the unsafe `load` and `splat`, whose contracts require
    /// AVX-512F (see [`super::has_avx512`]); the register is private.
    #[derive(Clone, Copy)]
    pub struct F16(__m512);

    /// # Safety
    /// The CPU has AVX-512F.
    #[inline(always)]
    unsafe fn bits(v: __m512) -> __m512i {
        // SAFETY: the caller's CPU has AVX-512F (this function's contract).
        unsafe { _mm512_castps_si512(v) }
    }

    impl Lanes for F16 {
        const WIDTH: usize = 16;
        #[inline(always)]
        unsafe fn load(p: *const f32) -> F16 {
            // SAFETY: the caller gives F16::WIDTH readable floats on a CPU
            // with AVX-512F (`load`'s contract).
            // SAFETY: `self` exists, so the CPU has AVX-512F (see `Lanes::splat`).
            unsafe { F16(_mm512_loadu_ps(p)) }
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            // SAFETY: the caller gives F16::WIDTH writable floats; `self`
            // exists, so the CPU has AVX-512F.
            // SAFETY: `self` exists, so the CPU has AVX-512F (see `Lanes::splat`).
            unsafe { _mm512_storeu_ps(p, self.0) }
        }
        #[inline(always)]
        unsafe fn splat(v: f32) -> F16 {
            // SAFETY: the caller's CPU has AVX-512F (`splat`'s contract).
            unsafe { F16(_mm512_set1_ps(v)) }
        }
        #[inline(always)]
        fn add(self, o: F16) -> F16 {
            // SAFETY: `self` exists, so the CPU has AVX-512F (see `Lanes::splat`).
            unsafe { F16(_mm512_add_ps(self.0, o.0)) }
        }
        #[inline(always)]
        fn sub(self, o: F16) -> F16 {
            // SAFETY: `self` exists, so the CPU has AVX-512F (see `Lanes::splat`).
            unsafe { F16(_mm512_sub_ps(self.0, o.0)) }
        }
        #[inline(always)]
        fn mul(self, o: F16) -> F16 {
            // SAFETY: `self` exists, so the CPU has AVX-512F (see `Lanes::splat`).
            unsafe { F16(_mm512_mul_ps(self.0, o.0)) }
        }
        #[inline(always)]
        fn div(self, o: F16) -> F16 {
            // SAFETY: `self` exists, so the CPU has AVX-512F (see `Lanes::splat`).
            unsafe { F16(_mm512_div_ps(self.0, o.0)) }
        }
        #[inline(always)]
        fn fma(self, b: F16, c: F16) -> F16 {
            // SAFETY: `self` exists, so the CPU has AVX-512F (see `Lanes::splat`).
            unsafe { F16(_mm512_fmadd_ps(self.0, b.0, c.0)) }
        }
        #[inline(always)]
        fn max(self, o: F16) -> F16 {
            // SAFETY: `self` exists, so the CPU has AVX-512F (see `Lanes::splat`).
            unsafe { F16(_mm512_max_ps(self.0, o.0)) }
        }
        #[inline(always)]
        fn min(self, o: F16) -> F16 {
            // SAFETY: `self` exists, so the CPU has AVX-512F (see `Lanes::splat`).
            unsafe { F16(_mm512_min_ps(self.0, o.0)) }
        }
        #[inline(always)]
        fn round_even(self) -> F16 {
            // SAFETY: `self` exists, so the CPU has AVX-512F (see `Lanes::splat`).
            unsafe {
                F16(_mm512_roundscale_ps::<
                    { _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC },
                >(self.0))
            }
        }
        #[inline(always)]
        fn abs(self) -> F16 {
            // SAFETY: `self` exists, so the CPU has AVX-512F (see `Lanes::splat`).
            unsafe {
                let magnitude = _mm512_set1_epi32(0x7fff_ffff);
                F16(_mm512_castsi512_ps(_mm512_and_si512(
                    bits(self.0),
                    magnitude,
                )))
            }
        }
        #[inline(always)]
        fn with_sign_of(self, sign: F16) -> F16 {
            // SAFETY: `self` exists, so the CPU has AVX-512F (see `Lanes::splat`).
            unsafe {
                let magnitude = _mm512_and_si512(bits(self.0), _mm512_set1_epi32(0x7fff_ffff));
                let sign_bit = _mm512_and_si512(bits(sign.0), _mm512_set1_epi32(i32::MIN));
                F16(_mm512_castsi512_ps(_mm512_or_si512(magnitude, sign_bit)))
            }
        }
        #[inline(always)]
        fn pow2(self) -> F16 {
            // SAFETY: `self` exists, so the CPU has AVX-512F (see `Lanes::splat`).
            unsafe {
                let n = _mm512_cvtps_epi32(self.0);
                let biased = _mm512_add_epi32(n, _mm512_set1_epi32(127));
                F16(_mm512_castsi512_ps(_mm512_slli_epi32::<23>(biased)))
            }
        }
        #[inline(always)]
        fn select_gt(self, limit: F16, a: F16, b: F16) -> F16 {
            // SAFETY: `self` exists, so the CPU has AVX-512F (see `Lanes::splat`).
            unsafe {
                let mask = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(self.0, limit.0);
                F16(_mm512_mask_blend_ps(mask, b.0, a.0))
            }
        }
    }
}

/// The vector paths, narrowest first.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum CpuPath {
    Portable,
    Avx2,
    Avx512,
}

/// What `STATECTL_CPU_PATH` may say, as the error lists them.
pub const CPU_PATH_VALUES: &str = "portable, avx2, avx512";

/// The widest path `STATECTL_CPU_PATH` allows (`portable`, `avx2`,
/// `avx512`; unset: the CPU's widest). A cap only turns paths off, so it
/// never asks for an instruction the CPU lacks, and every path gives the
/// same bits: benchmarks use it to measure a narrower CPU's path on a wider
/// CPU. An unknown value is `Err` with the value given.
pub fn cpu_path_cap() -> Result<CpuPath, String> {
    match std::env::var("STATECTL_CPU_PATH").as_deref() {
        Err(_) | Ok("") | Ok("avx512") => Ok(CpuPath::Avx512),
        Ok("avx2") => Ok(CpuPath::Avx2),
        Ok("portable") => Ok(CpuPath::Portable),
        Ok(other) => Err(other.to_string()),
    }
}

/// The cap, read once (an unknown value caps nothing; the binary refuses
/// it before any work, see `cpu_path_cap`).
fn allowed(path: CpuPath) -> bool {
    static CAP: std::sync::OnceLock<CpuPath> = std::sync::OnceLock::new();
    path <= *CAP.get_or_init(|| cpu_path_cap().unwrap_or(CpuPath::Avx512))
}

/// Whether this CPU runs the AVX2 + FMA paths (and `STATECTL_CPU_PATH`
/// allows them). Results are the same bits either way; only speed differs.
#[inline]
pub fn has_avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
            && allowed(CpuPath::Avx2)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether this CPU runs the AVX-512 matrix tile (same bits, more lanes)
/// and `STATECTL_CPU_PATH` allows it.
#[inline]
pub fn has_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f") && allowed(CpuPath::Avx512)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `e^x`, Cephes's `expf`: range reduction by `ln 2` in two parts, a
/// degree-5 polynomial, and the exponent put in directly.
#[inline(always)]
pub fn exp<L: Lanes>(x: L) -> L {
    // Bound first (NaN passes through: x86's rule returns the second
    // operand), so 2^n below stays a normal number.
    let x = x.same(88.376_26).min(x.same(-88.376_26).max(x));
    let n = x.mul(x.same(std::f32::consts::LOG2_E)).round_even();
    let r = n.fma(x.same(-0.693_359_4), x);
    let r = n.fma(x.same(2.121_944_4e-4), r);
    let r2 = r.mul(r);
    let p = x
        .same(1.987_569_1e-4)
        .fma(r, x.same(1.398_199_9e-3))
        .fma(r, x.same(8.333_452e-3))
        .fma(r, x.same(4.166_579_6e-2))
        .fma(r, x.same(1.666_666_5e-1))
        .fma(r, x.same(0.5));
    let y = p.fma(r2, r).add(x.same(1.0));
    y.mul(n.pow2())
}

/// `1 / (1 + e^-x)`.
#[inline(always)]
pub fn sigmoid<L: Lanes>(x: L) -> L {
    let one = x.same(1.0);
    one.div(one.add(exp(x.same(0.0).sub(x))))
}

/// Cephes's `tanhf`: an odd polynomial below |x| = 0.625, else
/// `1 - 2 / (e^{2|x|} + 1)` with the sign put back.
#[inline(always)]
pub fn tanh<L: Lanes>(x: L) -> L {
    let a = x.abs();
    let one = x.same(1.0);
    let two = x.same(2.0);
    let far = one.sub(two.div(exp(a.add(a)).add(one))).with_sign_of(x);
    let s = x.mul(x);
    let p = x
        .same(-5.704_988_7e-3)
        .fma(s, x.same(2.063_909e-2))
        .fma(s, x.same(-5.373_971_6e-2))
        .fma(s, x.same(1.333_144_2e-1))
        .fma(s, x.same(-3.333_328e-1));
    let near = p.mul(s).fma(x, x);
    a.select_gt(x.same(0.625), far, near)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<f32> {
        let mut v = vec![
            0.0,
            -0.0,
            1e-30,
            -1e-30,
            0.625,
            -0.625,
            0.624_999_94,
            88.0,
            -88.0,
            89.0,
            -89.0,
            1e30,
            -1e30,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::NAN,
            f32::MIN_POSITIVE,
        ];
        let mut s = 0x1234_5678u32;
        for _ in 0..20_000 {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            v.push((s as f32 / u32::MAX as f32 - 0.5) * 40.0);
            v.push(f32::from_bits(s));
        }
        v
    }

    #[test]
    fn close_to_the_real_functions() {
        for &x in &samples() {
            if !x.is_finite() || x.abs() > 80.0 {
                continue;
            }
            let (e, s, t) = (x.exp(), 1.0 / (1.0 + (-x).exp()), x.tanh());
            assert!((exp(x) - e).abs() <= e.abs() * 3e-7 + 1e-37, "exp {x}");
            assert!((sigmoid(x) - s).abs() <= 2e-7, "sigmoid {x}");
            assert!((tanh(x) - t).abs() <= 2e-7, "tanh {x}: {} vs {t}", tanh(x));
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn lanes_and_scalars_give_the_same_bits() {
        if !has_avx2_fma() {
            eprintln!(
                "skipped: this CPU has no AVX2+FMA, so there are no 8-lane results to compare"
            );
            return;
        }
        /// # Safety
        /// The CPU has AVX2 and FMA; `x` holds 8 floats.
        #[target_feature(enable = "avx2,fma")]
        unsafe fn eight(f: fn(F8) -> F8, x: &[f32]) -> [f32; 8] {
            let mut out = [0f32; 8];
            // SAFETY: this function's contract; `out` holds 8 floats.
            unsafe { f(F8::load(x.as_ptr())).store(out.as_mut_ptr()) };
            out
        }
        let v = samples();
        type Pair = (fn(F8) -> F8, fn(f32) -> f32);
        let pairs: [Pair; 3] = [
            (exp::<F8>, exp::<f32>),
            (sigmoid::<F8>, sigmoid::<f32>),
            (tanh::<F8>, tanh::<f32>),
        ];
        for (vector, scalar) in pairs {
            for chunk in v.chunks_exact(8) {
                // SAFETY: checked above that the CPU has AVX2 and FMA;
                // the chunk holds 8 floats.
                let got = unsafe { eight(vector, chunk) };
                for (g, &x) in got.iter().zip(chunk) {
                    let s = scalar(x);
                    assert!(
                        g.to_bits() == s.to_bits() || (g.is_nan() && s.is_nan()),
                        "at {x}"
                    );
                }
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn sixteen_lanes_and_scalars_give_the_same_bits() {
        if !has_avx512() {
            eprintln!(
                "skipped: this CPU has no AVX-512F, so there are no 16-lane results to compare"
            );
            return;
        }
        /// # Safety
        /// The CPU has AVX-512F; `x` holds 16 floats.
        #[target_feature(enable = "avx512f")]
        unsafe fn sixteen(f: fn(F16) -> F16, x: &[f32]) -> [f32; 16] {
            let mut out = [0f32; 16];
            // SAFETY: this function's contract; `out` holds 16 floats.
            unsafe { f(F16::load(x.as_ptr())).store(out.as_mut_ptr()) };
            out
        }
        let v = samples();
        type Pair = (fn(F16) -> F16, fn(f32) -> f32);
        let pairs: [Pair; 3] = [
            (exp::<F16>, exp::<f32>),
            (sigmoid::<F16>, sigmoid::<f32>),
            (tanh::<F16>, tanh::<f32>),
        ];
        for (vector, scalar) in pairs {
            for chunk in v.chunks_exact(16) {
                // SAFETY: checked above that the CPU has AVX-512F; the
                // chunk holds 16 floats.
                let got = unsafe { sixteen(vector, chunk) };
                for (g, &x) in got.iter().zip(chunk) {
                    let s = scalar(x);
                    assert!(
                        g.to_bits() == s.to_bits() || (g.is_nan() && s.is_nan()),
                        "at {x}"
                    );
                }
            }
        }
    }
}
