//! Recursive least squares with exponential forgetting and clipped residuals:
//! the regression behind each endpoint's latency model.

/// An online linear regression `y ≈ w · x` over `D` features.
///
/// Each update costs O(D²) and no allocation. Old samples fade with the
/// forgetting factor `lambda` (an effective window of about `1 / (1 - lambda)`
/// samples), so the fit follows drift. A residual larger than
/// [`Rls::CLIP`] times the running mean absolute residual is clipped before it
/// moves the weights (a Huber-style update), so one stalled request does not
/// drag the model.
#[derive(Clone, Debug)]
pub struct Rls<const D: usize> {
    w: [f64; D],
    p: [[f64; D]; D],
    lambda: f64,
    delta: f64,
    scale: f64,
    n: u64,
}

impl<const D: usize> Rls<D> {
    /// Residuals beyond this many mean absolute residuals are clipped.
    pub const CLIP: f64 = 4.0;
    /// Smallest residual scale, relative to the predicted `|w · x|`.
    const MIN_SCALE: f64 = 0.01;
    /// Samples before residuals are clipped (the scale needs a few first).
    const WARM: u64 = 8;
    /// Bound on each diagonal entry of the covariance: along a feature
    /// that carries no fresh information (one that stays 0), forgetting
    /// inflates it without limit ("wind-up"). Only that feature's row and
    /// column are scaled back (`S·P·S` with `S` diagonal keeps `P`
    /// positive semi-definite), so the others keep forgetting at `lambda`:
    /// bounding the whole matrix instead would undo their forgetting at
    /// every update once one idle feature reached the bound.
    const MAX_DIAG: f64 = 1e8;

    /// A model with zero weights, forgetting factor `lambda` (0 < λ ≤ 1) and
    /// initial covariance `delta · I` (large: the first samples dominate).
    pub fn new(lambda: f64, delta: f64) -> Self {
        let mut p = [[0.0; D]; D];
        for (i, row) in p.iter_mut().enumerate() {
            row[i] = delta;
        }
        Rls {
            w: [0.0; D],
            p,
            lambda,
            delta,
            scale: 0.0,
            n: 0,
        }
    }

    /// Samples seen.
    pub fn samples(&self) -> u64 {
        self.n
    }

    /// The weights.
    pub fn weights(&self) -> [f64; D] {
        self.w
    }

    /// Mean absolute residual (exponentially weighted), in `y`'s unit.
    pub fn residual_scale(&self) -> f64 {
        self.scale
    }

    /// `w · x`.
    pub fn predict(&self, x: &[f64; D]) -> f64 {
        dot(&self.w, x)
    }

    /// Learns from one sample. Non-finite inputs are ignored.
    pub fn update(&mut self, x: &[f64; D], y: f64) {
        if !y.is_finite() || x.iter().any(|v| !v.is_finite()) {
            return;
        }
        let mut px = [0.0; D];
        for (i, row) in self.p.iter().enumerate() {
            px[i] = dot(row, x);
        }
        let denom = self.lambda + dot(x, &px);
        if !(denom.is_finite() && denom > 0.0) {
            *self = Rls {
                w: self.w,
                ..Rls::new(self.lambda, self.delta)
            };
            return;
        }
        let predicted = self.predict(x);
        let e = y - predicted;
        // The residual scale, never taken below a hundredth of the
        // prediction: after a stretch of exact fits it is near 0, and a real
        // shift would be clipped to nothing, followed only as fast as the
        // scale grows back (the sample itself may be the outlier, so the
        // floor is not taken from it).
        let scale = self.scale.max(Self::MIN_SCALE * predicted.abs());
        let used = if self.n >= Self::WARM && scale > 0.0 {
            let lim = Self::CLIP * scale;
            e.clamp(-lim, lim)
        } else {
            e
        };
        let before = self.w;
        for (w, k) in self.w.iter_mut().zip(&px) {
            *w += k / denom * used;
        }
        if self.w.iter().any(|w| !w.is_finite()) {
            // An overflowing step: keep the last finite fit.
            self.w = before;
        }
        for (i, row) in self.p.iter_mut().enumerate() {
            for (v, pj) in row.iter_mut().zip(&px) {
                *v = (*v - px[i] * pj / denom) / self.lambda;
            }
        }
        let mut shrink = [1.0; D];
        for (i, f) in shrink.iter_mut().enumerate() {
            if self.p[i][i] > Self::MAX_DIAG {
                *f = (Self::MAX_DIAG / self.p[i][i]).sqrt();
            }
        }
        if shrink.iter().any(|&f| f < 1.0) {
            for (row, fi) in self.p.iter_mut().zip(&shrink) {
                for (v, fj) in row.iter_mut().zip(&shrink) {
                    *v *= fi * fj;
                }
            }
        }
        if self.p.iter().flatten().any(|v| !v.is_finite()) {
            self.p = Rls::<D>::new(self.lambda, self.delta).p;
        }
        self.scale = if self.n == 0 {
            e.abs()
        } else if self.n < Self::WARM {
            0.8 * self.scale + 0.2 * e.abs()
        } else {
            let cap = if scale > 0.0 {
                Self::CLIP * scale
            } else {
                e.abs()
            };
            0.95 * self.scale + 0.05 * e.abs().min(cap)
        };
        self.n += 1;
    }
}

/// `a · b`, summed in order.
pub(crate) fn dot<const D: usize>(a: &[f64; D], b: &[f64; D]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(state: &mut u64) -> f64 {
        *state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (*state >> 11) as f64 / (1u64 << 53) as f64
    }

    #[test]
    fn learns_a_linear_law_and_follows_drift() {
        let mut m = Rls::<3>::new(0.99, 1e4);
        let mut s = 7;
        for _ in 0..500 {
            let x = [1.0, lcg(&mut s) * 4.0, lcg(&mut s)];
            m.update(&x, 20.0 + 30.0 * x[1] + 5.0 * x[2]);
        }
        let w = m.weights();
        assert!(
            (w[0] - 20.0).abs() < 0.1 && (w[1] - 30.0).abs() < 0.1,
            "{w:?}"
        );
        // The pod gets twice as slow: the fit follows within a few hundred samples.
        for _ in 0..500 {
            let x = [1.0, lcg(&mut s) * 4.0, lcg(&mut s)];
            m.update(&x, 40.0 + 60.0 * x[1] + 10.0 * x[2]);
        }
        let got = m.predict(&[1.0, 2.0, 0.5]);
        assert!((got - 165.0).abs() < 2.0, "{got}");
    }

    /// A feature that stays 0 (no queue at low load, no step clock) winds
    /// its covariance up; bounding it must not stop the other features
    /// from forgetting: a pod that becomes twice as slow after thousands
    /// of samples is still followed within a few hundred.
    #[test]
    fn an_idle_feature_does_not_stop_forgetting() {
        let mut m = Rls::<3>::new(0.995, 1e6);
        let mut s = 11;
        for _ in 0..10_000 {
            let x = [1.0, lcg(&mut s) * 4.0, 0.0];
            m.update(&x, 20.0 + 30.0 * x[1]);
        }
        for _ in 0..1_000 {
            let x = [1.0, lcg(&mut s) * 4.0, 0.0];
            m.update(&x, 40.0 + 60.0 * x[1]);
        }
        let got = m.predict(&[1.0, 2.0, 0.0]);
        assert!((got - 160.0).abs() < 2.0, "{got}");
    }

    /// After a stretch of exact fits (a steady TPOT) the residual scale is
    /// near 0; a real level shift must still be followed within the
    /// model's window (λ = 0.99: ~100 samples), not only as fast as the
    /// scale can grow back from nothing (~250 samples).
    #[test]
    fn a_shift_after_a_perfect_fit_is_followed() {
        let mut m = Rls::<2>::new(0.99, 1e4);
        let mut s = 5;
        for _ in 0..5_000 {
            let x = [1.0, lcg(&mut s)];
            m.update(&x, 10.0 + 2.0 * x[1]);
        }
        for _ in 0..400 {
            let x = [1.0, lcg(&mut s)];
            m.update(&x, 20.0 + 4.0 * x[1]);
        }
        let got = m.predict(&[1.0, 0.5]);
        assert!((got - 22.0).abs() < 1.1, "{got}");
    }

    #[test]
    fn an_outlier_moves_the_fit_little() {
        let mut m = Rls::<2>::new(0.995, 1e4);
        let mut s = 3;
        for _ in 0..300 {
            let x = [1.0, lcg(&mut s)];
            m.update(&x, 10.0 + 10.0 * x[1] + (lcg(&mut s) - 0.5));
        }
        let before = m.predict(&[1.0, 0.5]);
        m.update(&[1.0, 0.5], 10_000.0);
        let after = m.predict(&[1.0, 0.5]);
        assert!((after - before).abs() < 1.0, "{before} -> {after}");
    }

    #[test]
    fn bad_input_is_ignored_and_wind_up_is_bounded() {
        let mut m = Rls::<2>::new(0.9, 1e4);
        m.update(&[1.0, f64::NAN], 1.0);
        m.update(&[1.0, 1.0], f64::INFINITY);
        assert_eq!(m.samples(), 0);
        // The same point over and over: no new information, strong forgetting.
        for _ in 0..10_000 {
            m.update(&[1.0, 0.0], 5.0);
        }
        assert!((m.predict(&[1.0, 0.0]) - 5.0).abs() < 1e-6);
        assert!(m.predict(&[1.0, 1.0]).is_finite());
    }
}
