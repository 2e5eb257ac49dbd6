//! Maxima and minima of score vectors, four lanes at a time.
//!
//! `f64::max` and `f64::min` (which ignore NaN) are commutative and
//! associative up to the sign of a zero (`max(0.0, -0.0)` may be either),
//! so folding four independent lanes and then the lanes gives the result
//! of one fold in order, but for that sign; the lanes let the comparisons
//! of one endpoint not wait on the previous one's.

const LANES: usize = 4;

fn fold_lanes(parts: &[&[f64]], init: f64, f: impl Fn(f64, f64) -> f64) -> f64 {
    let mut lanes = [init; LANES];
    for p in parts {
        let mut chunks = p.chunks_exact(LANES);
        for c in &mut chunks {
            for (l, &v) in lanes.iter_mut().zip(c) {
                *l = f(*l, v);
            }
        }
        for (l, &v) in lanes.iter_mut().zip(chunks.remainder()) {
            *l = f(*l, v);
        }
    }
    f(f(lanes[0], lanes[1]), f(lanes[2], lanes[3]))
}

/// The largest value of `parts` as `f64::max` folds it (NaN only when
/// every value is NaN); `None` when there are none.
pub(crate) fn max_of(parts: [&[f64]; 2]) -> Option<f64> {
    if parts.iter().all(|p| p.is_empty()) {
        return None;
    }
    Some(fold_lanes(&parts, f64::NAN, f64::max))
}

/// `(min, max)` of `values` as `f64::min` / `f64::max` fold them from
/// `(+∞, −∞)`.
pub(crate) fn min_max_of(values: &[f64]) -> (f64, f64) {
    (
        fold_lanes(&[values], f64::INFINITY, f64::min),
        fold_lanes(&[values], f64::NEG_INFINITY, f64::max),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_agree_with_one_fold_in_order() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for n in 0..40 {
            let v: Vec<f64> = (0..n)
                .map(|i| {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    match (state >> 60, i % 7) {
                        (0, _) => f64::NAN,
                        (1, _) => f64::NEG_INFINITY,
                        _ => (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5,
                    }
                })
                .collect();
            for w in 0..=n {
                let (a, b) = (&v[..w], &v[w..]);
                let want = a.iter().chain(b).copied().reduce(f64::max);
                let got = max_of([a, b]);
                assert_eq!(want.map(f64::to_bits), got.map(f64::to_bits), "n {n} w {w}");
            }
            let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            assert_eq!(min_max_of(&v), (lo, hi));
        }
        assert_eq!(max_of([&[], &[]]), None);
        assert!(max_of([&[f64::NAN], &[f64::NAN]]).unwrap().is_nan());
    }
}
