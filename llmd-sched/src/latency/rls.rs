//! Recursive least squares with exponential forgetting and clipped
//! residuals: the regression behind each endpoint's latency model.

/// An online linear regression `y ≈ w · x` over `D` features.
///
/// Kept in information form: the forgotten sums `R = Σ λᵏ x xᵀ` and
/// `c = Σ λᵏ x y`, and the weights solved from them after each sample, with
/// a ridge of [`Rls::RIDGE`] times `R`'s mean diagonal (relative, so it
/// weighs the same when every input is scaled alike; the TTFT model's
/// inputs are divided by the sample's own TTFT). Each update costs O(D³) (D ≤ 7 here:
/// a few hundred operations) and no allocation. Old samples fade with the
/// forgetting factor `lambda` (an effective window of about
/// `1 / (1 - lambda)` samples), so the fit follows drift. A residual larger
/// than [`Rls::CLIP`] times the running mean absolute residual is clipped
/// before it moves the weights (a Huber-style update), so one stalled
/// request does not drag the model.
///
/// The ridge is what keeps a direction the samples never vary along (a
/// queue that stays empty, an input that moves only with another) at 0:
/// in the textbook covariance form the initial prior fades with
/// forgetting, the covariance of such a direction grows without limit
/// ("wind-up"), and rounding then moves its weight freely.
#[derive(Clone, Debug)]
pub struct Rls<const D: usize> {
    w: [f64; D],
    r: [[f64; D]; D],
    c: [f64; D],
    lambda: f64,
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
    /// The ridge, relative to the mean information per input: a direction
    /// with less than this share of it is held at 0 rather than fitted to
    /// rounding noise, and a well-measured weight moves by about this share
    /// (nothing measurable).
    pub const RIDGE: f64 = 1e-9;

    /// A model with zero weights and forgetting factor `lambda` (0 < λ ≤ 1);
    /// the first samples decide the fit at once.
    pub fn new(lambda: f64) -> Self {
        Rls {
            w: [0.0; D],
            r: [[0.0; D]; D],
            c: [0.0; D],
            lambda,
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
        // The clipped sample is the one learnt: the fit moves toward
        // `predicted + used`, not toward `y`.
        let target = predicted + used;
        for i in 0..D {
            for j in 0..D {
                self.r[i][j] = self.lambda * self.r[i][j] + x[i] * x[j];
            }
            self.c[i] = self.lambda * self.c[i] + x[i] * target;
        }
        match self.solve() {
            Some(w) => self.w = w,
            None => {
                // Overflowing sums (or a residual that did): the model starts
                // again, counting no samples, so a caller falls back until it
                // has enough; the last finite fit is its starting point.
                *self = Rls {
                    w: self.w,
                    ..Rls::new(self.lambda)
                };
                return;
            }
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

    /// `(R + εI)⁻¹ c` by Cholesky factorisation, ε the ridge; `None` when
    /// the sums or the weights are not finite (a pivot that is not a
    /// positive number).
    #[allow(clippy::needless_range_loop)] // indices read as the algebra does
    fn solve(&self) -> Option<[f64; D]> {
        let mean_diag: f64 = (0..D).map(|i| self.r[i][i] / D as f64).sum();
        let eps = (Self::RIDGE * mean_diag).max(f64::MIN_POSITIVE);
        // L Lᵀ = R + εI, L lower triangular.
        let mut l = [[0.0f64; D]; D];
        for a in 0..D {
            for b in 0..=a {
                let mut v = self.r[a][b];
                for k in 0..b {
                    v -= l[a][k] * l[b][k];
                }
                if a == b {
                    v += eps;
                    if !(v > 0.0 && v.is_finite()) {
                        return None;
                    }
                    l[a][a] = v.sqrt();
                } else {
                    l[a][b] = v / l[b][b];
                }
            }
        }
        // L y = c, then Lᵀ w = y.
        let mut y = [0.0f64; D];
        for a in 0..D {
            let mut v = self.c[a];
            for k in 0..a {
                v -= l[a][k] * y[k];
            }
            y[a] = v / l[a][a];
        }
        let mut w = [0.0f64; D];
        for a in (0..D).rev() {
            let mut v = y[a];
            for k in a + 1..D {
                v -= l[k][a] * w[k];
            }
            w[a] = v / l[a][a];
        }
        w.iter().all(|v| v.is_finite()).then_some(w)
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
        let mut m = Rls::<3>::new(0.99);
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

    /// A feature that stays 0 (no queue at low load, no step clock) has no
    /// information; holding it at 0 must not stop the other features from
    /// forgetting: a pod that becomes twice as slow after thousands of
    /// samples is still followed within a few hundred.
    #[test]
    fn an_idle_feature_does_not_stop_forgetting() {
        let mut m = Rls::<3>::new(0.995);
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
        let mut m = Rls::<2>::new(0.99);
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

    /// An input that moves only with another (here a constant, so with the
    /// intercept) carries no information of its own: its share of the fit
    /// stays where the ridge puts it (the smallest weights that fit), however
    /// long the model runs, and a state where it differs is predicted from
    /// that, not from wherever forgetting and rounding had moved it.
    #[test]
    fn a_direction_with_no_information_does_not_drift() {
        let mut m = Rls::<3>::new(0.995);
        let mut s = 13;
        let mut seen = Vec::new();
        for k in 0..40_000 {
            let u = lcg(&mut s);
            m.update(&[1.0, 0.3, u], 10.0 + 5.0 * u + (lcg(&mut s) - 0.5) * 0.1);
            if k % 5_000 == 4_999 {
                seen.push(m.predict(&[1.0, 1.0, 0.5]));
            }
        }
        // The smallest weights with w0 + 0.3·w1 = 10: (10, 3) / 1.09.
        let want = 13.0 / 1.09 + 2.5;
        assert!(
            seen.iter().all(|p| (p - want).abs() < 0.2),
            "{want}: {seen:?}"
        );
    }

    /// Sums that overflow start the model again: no samples counted (so
    /// the caller falls back until it has enough), the last finite fit kept
    /// as the starting point, and the next samples learnt normally, clipping
    /// included.
    #[test]
    fn an_overflow_restarts_the_model_from_its_last_fit() {
        let mut m = Rls::<2>::new(0.995);
        let mut s = 21;
        for _ in 0..300 {
            let x = [1.0, lcg(&mut s)];
            m.update(&x, 5.0 + x[1]);
        }
        let before = m.weights();
        m.update(&[1e200, 1e200], 1.0);
        assert_eq!(m.samples(), 0);
        assert_eq!(m.weights(), before);
        assert_eq!(m.residual_scale(), 0.0);
        for _ in 0..300 {
            let x = [1.0, lcg(&mut s)];
            m.update(&x, 5.0 + x[1]);
        }
        let got = m.predict(&[1.0, 0.5]);
        assert!((got - 5.5).abs() < 1e-3, "{got}");
    }

    #[test]
    fn an_outlier_moves_the_fit_little() {
        let mut m = Rls::<2>::new(0.995);
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
    fn bad_input_is_ignored_and_a_repeated_point_stays_finite() {
        let mut m = Rls::<2>::new(0.9);
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
