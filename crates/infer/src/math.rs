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
    const ALPHA_9: f32 = 4.370_310_1e-11;
    const ALPHA_7: f32 = 1.156_273_2e-7;
    const ALPHA_5: f32 = 6.085_748_6e-5;
    const ALPHA_3: f32 = 8.513_771e-3;
    const ALPHA_1: f32 = 2.482_879_5e-1;
    const BETA_10: f32 = 6.102_474e-13;
    const BETA_8: f32 = 5.761_021_4e-9;
    const BETA_6: f32 = 6.291_068e-6;
    const BETA_4: f32 = 1.701_988_2e-3;
    const BETA_2: f32 = 1.168_176_6e-1;
    const BETA_0: f32 = 9.931_519e-1;
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
