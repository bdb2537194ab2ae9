//! Standard normal tail functions to about 1e-15 relative accuracy, with no
//! dependency: the complementary error function by W. J. Cody's rational
//! Chebyshev approximations (Math. Comp. 23, 1969, 631–638; netlib specfun
//! `CALERF`), and the inverse normal CDF by P. J. Acklam's rational
//! approximation refined with one Halley step on that erfc.

// Cody's and Acklam's coefficients are kept at their published precision.
#![allow(clippy::excessive_precision)]

/// 1/√π.
const SQRPI: f64 = 5.641_895_835_477_562_869_5e-1;

/// erf on [0, 0.46875]: numerator.
const A: [f64; 5] = [
    3.16112374387056560e0,
    1.13864154151050156e2,
    3.77485237685302021e2,
    3.20937758913846947e3,
    1.85777706184603153e-1,
];
/// erf on [0, 0.46875]: denominator.
const B: [f64; 4] = [
    2.36012909523441209e1,
    2.44024637934444173e2,
    1.28261652607737228e3,
    2.84423683343917062e3,
];
/// erfc·exp(x²) on (0.46875, 4]: numerator.
const C: [f64; 9] = [
    5.64188496988670089e-1,
    8.88314979438837594e0,
    6.61191906371416295e1,
    2.98635138197400131e2,
    8.81952221241769090e2,
    1.71204761263407058e3,
    2.05107837782607147e3,
    1.23033935479799725e3,
    2.15311535474403846e-8,
];
/// erfc·exp(x²) on (0.46875, 4]: denominator.
const D: [f64; 8] = [
    1.57449261107098347e1,
    1.17693950891312499e2,
    5.37181101862009858e2,
    1.62138957456669019e3,
    3.29079923573345963e3,
    4.36261909014324716e3,
    3.43936767414372164e3,
    1.23033935480374942e3,
];
/// Asymptotic erfc·exp(x²) on (4, ∞): numerator.
const P: [f64; 6] = [
    3.05326634961232344e-1,
    3.60344899949804439e-1,
    1.25781726111229246e-1,
    1.60837851487422766e-2,
    6.58749161529837803e-4,
    1.63153871373020978e-2,
];
/// Asymptotic erfc·exp(x²) on (4, ∞): denominator.
const Q: [f64; 5] = [
    2.56852019228982242e0,
    1.87295284992346047e0,
    5.27905102951428412e-1,
    6.05183413124413191e-2,
    2.33520497626869185e-3,
];

/// exp(-y²)·r with y² split as in Cody so that the exponential keeps full precision.
fn times_exp_minus_square(y: f64, r: f64) -> f64 {
    let ysq = (y * 16.0).trunc() / 16.0;
    let del = (y - ysq) * (y + ysq);
    (-ysq * ysq).exp() * (-del).exp() * r
}

/// The complementary error function erfc(x) (NaN for NaN).
pub(crate) fn erfc(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    let y = x.abs();
    let r = if y <= 0.46875 {
        let ysq = if y > 1.11e-16 { y * y } else { 0.0 };
        let mut xnum = A[4] * ysq;
        let mut xden = ysq;
        for i in 0..3 {
            xnum = (xnum + A[i]) * ysq;
            xden = (xden + B[i]) * ysq;
        }
        // 1 − erf(x), with the sign of x already inside.
        return 1.0 - x * (xnum + A[3]) / (xden + B[3]);
    } else if y <= 4.0 {
        let mut xnum = C[8] * y;
        let mut xden = y;
        for i in 0..7 {
            xnum = (xnum + C[i]) * y;
            xden = (xden + D[i]) * y;
        }
        times_exp_minus_square(y, (xnum + C[7]) / (xden + D[7]))
    } else if y >= 27.3 {
        // exp(-y²) underflows past every subnormal.
        0.0
    } else {
        let ysq = 1.0 / (y * y);
        let mut xnum = P[5] * ysq;
        let mut xden = ysq;
        for i in 0..4 {
            xnum = (xnum + P[i]) * ysq;
            xden = (xden + Q[i]) * ysq;
        }
        let r = ysq * (xnum + P[4]) / (xden + Q[4]);
        times_exp_minus_square(y, (SQRPI - r) / y)
    };
    if x < 0.0 { 2.0 - r } else { r }
}

/// Upper tail P(Z > x) of the standard normal (scipy's `norm.sf`).
pub(crate) fn norm_sf(x: f64) -> f64 {
    0.5 * erfc(x * std::f64::consts::FRAC_1_SQRT_2)
}

/// Lower tail P(Z ≤ x) of the standard normal (scipy's `norm.cdf`).
pub(crate) fn norm_cdf(x: f64) -> f64 {
    norm_sf(-x)
}

/// Acklam's approximation, central region.
const AA: [f64; 6] = [
    -3.969683028665376e+01,
    2.209460984245205e+02,
    -2.759285104469687e+02,
    1.383577518672690e+02,
    -3.066479806614716e+01,
    2.506628277459239e+00,
];
/// Acklam's approximation, central region denominator.
const AB: [f64; 5] = [
    -5.447609879822406e+01,
    1.615858368580409e+02,
    -1.556989798598866e+02,
    6.680131188771972e+01,
    -1.328068155288572e+01,
];
/// Acklam's approximation, tail region.
const AC: [f64; 6] = [
    -7.784894002430293e-03,
    -3.223964580411365e-01,
    -2.400758277161838e+00,
    -2.549732539343734e+00,
    4.374664141464968e+00,
    2.938163982698783e+00,
];
/// Acklam's approximation, tail region denominator.
const AD: [f64; 4] = [
    7.784695709041462e-03,
    3.224671290700398e-01,
    2.445134137142996e+00,
    3.754408661907416e+00,
];

/// Φ⁻¹(p) for p in (0, 0.5]: Acklam's approximation (1.15e-9) plus one Halley step.
fn ndtri_lower(p: f64) -> f64 {
    let x = if p < 0.02425 {
        let q = (-2.0 * p.ln()).sqrt();
        (((((AC[0] * q + AC[1]) * q + AC[2]) * q + AC[3]) * q + AC[4]) * q + AC[5])
            / ((((AD[0] * q + AD[1]) * q + AD[2]) * q + AD[3]) * q + 1.0)
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((AA[0] * r + AA[1]) * r + AA[2]) * r + AA[3]) * r + AA[4]) * r + AA[5]) * q
            / (((((AB[0] * r + AB[1]) * r + AB[2]) * r + AB[3]) * r + AB[4]) * r + 1.0)
    };
    // Halley: e = Φ(x) − p, u = e/φ(x); x ← x − u/(1 + x·u/2). Φ(x ≤ 0) is
    // evaluated through erfc of a positive argument, so e keeps relative accuracy.
    let e = norm_cdf(x) - p;
    let u = e * (2.0 * std::f64::consts::PI).sqrt() * (x * x / 2.0).exp();
    let refined = x - u / (1.0 + x * u / 2.0);
    if refined.is_finite() { refined } else { x }
}

/// Φ⁻¹(p), the standard normal quantile (scipy's `norm.ppf`): ∓∞ at 0 and 1, NaN outside [0, 1].
pub(crate) fn ndtri(p: f64) -> f64 {
    if p.is_nan() || !(0.0..=1.0).contains(&p) {
        f64::NAN
    } else if p == 0.0 {
        f64::NEG_INFINITY
    } else if p == 1.0 {
        f64::INFINITY
    } else if p > 0.5 {
        // 1 − p is exact for p in [0.5, 1].
        -ndtri_lower(1.0 - p)
    } else {
        ndtri_lower(p)
    }
}

/// The upper quantile z with P(Z > z) = q (scipy's `norm.isf`).
pub(crate) fn norm_isf(q: f64) -> f64 {
    -ndtri(q)
}
