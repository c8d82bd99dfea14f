//! ONNX Runtime's scalar math, reproduced operation by operation so native scores match
//! ORT to the last bit where the arithmetic allows (see `onnxruntime/core/providers/cpu/ml/
//! ml_common.h` and `onnxruntime/core/mlas/lib/logistic.cpp`).

/// `ComputeLogistic` of ORT's ml_common.h (used by the tree ensembles' binary path).
#[inline]
pub fn ort_logistic(val: f32) -> f32 {
    let v = 1.0f32 / (1.0f32 + (-val.abs()).exp());
    if val < 0.0 {
        1.0 - v
    } else {
        v
    }
}

/// `ErfInv` of ml_common.h (Giles' approximation with a = 0.147).
#[inline]
fn erf_inv(x: f32) -> f32 {
    let sgn = if x < 0.0 { -1.0f32 } else { 1.0f32 };
    let x = (1.0 - x) * (1.0 + x);
    let log = x.ln();
    let v = 2.0 / (std::f32::consts::PI * 0.147f32) + 0.5f32 * log;
    let v2 = 1.0 / 0.147f32 * log;
    let v3 = -v + (v * v - v2).sqrt();
    sgn * v3.sqrt()
}

/// `ComputeProbit` of ml_common.h.
#[inline]
pub fn ort_probit(val: f32) -> f32 {
    std::f32::consts::SQRT_2 * erf_inv(2.0 * val - 1.0)
}

/// `ComputeSoftmax` of ml_common.h, in place.
pub fn ort_softmax(values: &mut [f32]) {
    let mut v_max = -f32::MAX;
    for &v in values.iter() {
        if v > v_max {
            v_max = v;
        }
    }
    let mut sum = 0.0f32;
    for v in values.iter_mut() {
        *v = (*v - v_max).exp();
        sum += *v;
    }
    for v in values.iter_mut() {
        *v /= sum;
    }
}

/// `ComputeSoftmaxZero` of ml_common.h (zeros stay zero), in place.
pub fn ort_softmax_zero(values: &mut [f32]) {
    let mut v_max = -f32::MAX;
    for &v in values.iter() {
        if v > v_max {
            v_max = v;
        }
    }
    let exp_neg_v_max = (-v_max).exp();
    let mut sum = 0.0f32;
    for v in values.iter_mut() {
        if *v > 0.000_000_1 || *v < -0.000_000_1 {
            *v = (*v - v_max).exp();
            sum += *v;
        } else {
            *v *= exp_neg_v_max;
        }
    }
    for v in values.iter_mut() {
        *v /= sum;
    }
}

/// MLAS `MlasComputeLogistic` (Eigen's rational approximation; the x86-64 FMA3 kernel fuses
/// the multiply-adds). Used by ORT's `Sigmoid` op and by `LinearClassifier` with 2+ columns.
#[inline]
pub fn mlas_logistic(x: f32) -> f32 {
    // MLAS' constants (logistic.cpp), rounded from their decimal expansions
    const ALPHA_9: f32 = 4.370_310_125_798_01e-11_f64 as f32;
    const ALPHA_7: f32 = 1.156_273_244_599_42e-7_f64 as f32;
    const ALPHA_5: f32 = 6.085_748_646_001_43e-5_f64 as f32;
    const ALPHA_3: f32 = 8.513_771_333_047_01e-3_f64 as f32;
    const ALPHA_1: f32 = 2.482_879_470_615_29e-1_f64 as f32;
    const BETA_10: f32 = 6.102_473_897_556_81e-13_f64 as f32;
    const BETA_8: f32 = 5.761_021_369_934_27e-9_f64 as f32;
    const BETA_6: f32 = 6.291_067_850_170_4e-6_f64 as f32;
    const BETA_4: f32 = 1.701_988_173_740_94e-3_f64 as f32;
    const BETA_2: f32 = 1.168_176_569_044_53e-1_f64 as f32;
    const BETA_0: f32 = 9.931_519_210_231_8e-1_f64 as f32;
    if x.is_nan() {
        return x;
    }
    let v = x.clamp(-18.0, 18.0);
    let v2 = v * v;
    let mut p = v2.mul_add(ALPHA_9, ALPHA_7);
    p = p.mul_add(v2, ALPHA_5);
    p = p.mul_add(v2, ALPHA_3);
    p = p.mul_add(v2, ALPHA_1);
    p *= v;
    let mut q = v2.mul_add(BETA_10, BETA_8);
    q = q.mul_add(v2, BETA_6);
    q = q.mul_add(v2, BETA_4);
    q = q.mul_add(v2, BETA_2);
    q = q.mul_add(v2, BETA_0);
    (p / q + 0.5).clamp(0.0, 1.0)
}

/// `frexp` for finite, positive, non-zero `x` (subnormals included): `x = m * 2^e`,
/// `m` in `[0.5, 1)`.
#[inline(always)]
fn frexp_pos(x: f32) -> (f32, i32) {
    let (bits, bias) = if x.to_bits() >> 23 == 0 {
        ((x * 8_388_608.0).to_bits(), 126 + 23)
    } else {
        (x.to_bits(), 126)
    };
    let e = ((bits >> 23) & 0xff) as i32 - bias;
    (f32::from_bits((bits & 0x807f_ffff) | 0x3f00_0000), e)
}

/// ONNX Runtime's `Log` on float tensors: Eigen's vectorised `plog` (`plog_impl_float`: a
/// (3,3) rational approximation of `log(1 + x)` after range reduction), with separate
/// multiplies and adds as in ORT's SSE build. ORT computes the last `len % 4` elements of
/// each parallel block with the C library's `logf` instead (which may differ by 1 ulp); this
/// is the value of every other element.
#[inline(always)]
pub fn eigen_log(x: f32) -> f32 {
    const SQRTHF: f32 = std::f32::consts::FRAC_1_SQRT_2;
    const P1: f32 = 1.000_000_019_028_113_6_f64 as f32;
    const P2: f32 = 1.000_000_019_028_106_3_f64 as f32;
    const P3: f32 = 0.182_562_963_498_492_54_f64 as f32;
    const Q1: f32 = 1.499_999_999_999_992_7_f64 as f32;
    const Q2: f32 = 0.599_232_495_908_235_2_f64 as f32;
    const Q3: f32 = 0.049_616_247_954_120_038_f64 as f32;
    if x.is_nan() || x < 0.0 {
        return f32::NAN;
    }
    if x == 0.0 {
        return f32::NEG_INFINITY;
    }
    if x == f32::INFINITY {
        return x;
    }
    let (m, e) = frexp_pos(x);
    let (t, e) = if m < SQRTHF {
        ((m - 1.0) + m, e - 1)
    } else {
        (m - 1.0, e)
    };
    let mut p = t * P3 + P2;
    p = t * p + P1;
    p *= t;
    let mut q = t * Q3 + Q2;
    q = t * q + Q1;
    q = t * q + 1.0;
    let r = p / q;
    e as f32 * std::f32::consts::LN_2 + r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logistic_matches_definition() {
        for &x in &[-30.0f32, -5.0, -0.5, 0.0, 0.3, 4.0, 25.0] {
            let exact = 1.0 / (1.0 + (-(x as f64)).exp());
            assert!((ort_logistic(x) as f64 - exact).abs() < 1e-7, "{x}");
            assert!((mlas_logistic(x) as f64 - exact).abs() < 2e-7, "{x}");
        }
    }

    #[test]
    fn probit_inverts_normal_cdf_roughly() {
        // Giles' approximation: ~1e-3 relative accuracy.
        assert!(ort_probit(0.5).abs() < 1e-6);
        assert!((ort_probit(0.975) - 1.959_964).abs() < 5e-3);
    }

    #[test]
    fn softmax_sums_to_one() {
        let mut v = [1.0f32, 2.0, 3.0];
        ort_softmax(&mut v);
        assert!((v.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(v[2] > v[1] && v[1] > v[0]);
    }
}
