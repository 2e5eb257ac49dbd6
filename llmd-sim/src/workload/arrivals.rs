//! Arrival processes: Poisson at one rate, or a ladder of rates.

use serde::{Deserialize, Serialize};

/// One stage of a rate ladder.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    /// Requests per second.
    pub rate: f64,
    /// Stage length, seconds.
    pub duration_s: f64,
    /// A warm-up stage: its requests run but are left out of the per-stage
    /// figures (llm-d's benchmark seats the prefixes this way first).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub warmup: bool,
}

/// The lowest arrival rate accepted (one request a year, in requests/s): a
/// slower one draws gaps that overflow to an infinite time.
pub const MIN_RATE: f64 = 1.0 / (365.0 * 86_400.0);

/// How requests (or sessions) arrive: Poisson at `rate`, or a `ladder`
/// of Poisson stages (exactly one of the two).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Arrivals {
    /// Requests per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// Stages run one after another (llm-d's benchmark ladder).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ladder: Option<Vec<Stage>>,
}

impl Default for Arrivals {
    fn default() -> Self {
        Arrivals::poisson(10.0)
    }
}

impl Arrivals {
    /// Poisson at `rate` per second.
    pub fn poisson(rate: f64) -> Self {
        Arrivals {
            rate: Some(rate),
            ladder: None,
        }
    }

    /// A ladder of stages.
    pub fn ladder(stages: Vec<Stage>) -> Self {
        Arrivals {
            rate: None,
            ladder: Some(stages),
        }
    }

    /// Checks the rates and durations: a rate is at least [`MIN_RATE`].
    pub fn validate(&self) -> Result<(), String> {
        match (&self.rate, &self.ladder) {
            (Some(_), Some(_)) | (None, None) => {
                Err("arrivals: set exactly one of rate, ladder".into())
            }
            (Some(rate), None) if !(*rate >= MIN_RATE && rate.is_finite()) => Err(format!(
                "arrivals.rate must be a finite number of requests/s >= {MIN_RATE}, got {rate}"
            )),
            (None, Some(stages)) if stages.is_empty() => {
                Err("arrivals.ladder has no stages".into())
            }
            (None, Some(stages)) => {
                for s in stages {
                    if !(s.rate >= MIN_RATE
                        && s.rate.is_finite()
                        && s.duration_s > 0.0
                        && s.duration_s.is_finite())
                    {
                        return Err(format!(
                            "ladder stage needs rate >= {MIN_RATE} and duration_s > 0 (finite), got {} / {}",
                            s.rate, s.duration_s
                        ));
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Total duration of a ladder (infinite for a plain rate).
    pub fn duration(&self) -> f64 {
        self.ladder
            .as_ref()
            .map_or(f64::INFINITY, |s| s.iter().map(|x| x.duration_s).sum())
    }
}

/// Draws arrival times in order.
#[derive(Debug)]
pub struct ArrivalClock {
    spec: Arrivals,
    rng: fastrand::Rng,
    now: f64,
    stage: usize,
    stage_end: f64,
}

impl ArrivalClock {
    /// A clock starting at 0.
    pub fn new(spec: Arrivals, seed: u64) -> Self {
        let stage_end = match &spec.ladder {
            None => f64::INFINITY,
            Some(stages) => stages.first().map_or(0.0, |s| s.duration_s),
        };
        ArrivalClock {
            spec,
            rng: fastrand::Rng::with_seed(seed),
            now: 0.0,
            stage: 0,
            stage_end,
        }
    }

    fn exp(&mut self, rate: f64) -> f64 {
        let u = self.rng.f64().max(1e-300);
        -u.ln() / rate
    }

    /// The next arrival, or `None` once the ladder is over.
    pub fn next_arrival(&mut self) -> Option<f64> {
        loop {
            let rate = match &self.spec.ladder {
                None => self.spec.rate?,
                Some(stages) => stages.get(self.stage)?.rate,
            };
            let t = self.now + self.exp(rate);
            if t <= self.stage_end {
                self.now = t;
                return Some(t);
            }
            // Memoryless: restart the draw at the boundary with the next rate.
            self.now = self.stage_end;
            self.stage += 1;
            let stages = self.spec.ladder.as_ref()?;
            self.stage_end += stages.get(self.stage)?.duration_s;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ladder_rates_are_respected() {
        let spec = Arrivals::ladder(vec![
            Stage {
                warmup: false,
                rate: 10.0,
                duration_s: 100.0,
            },
            Stage {
                warmup: false,
                rate: 50.0,
                duration_s: 100.0,
            },
        ]);
        let mut c = ArrivalClock::new(spec, 1);
        let times: Vec<f64> = std::iter::from_fn(|| c.next_arrival()).collect();
        let first = times.iter().filter(|t| **t < 100.0).count();
        let second = times.len() - first;
        assert!((800..1200).contains(&first), "{first}");
        assert!((4500..5500).contains(&second), "{second}");
        assert!(times.windows(2).all(|w| w[0] <= w[1]));
    }
}
