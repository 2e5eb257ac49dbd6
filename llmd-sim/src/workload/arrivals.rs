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
    /// Run the ladder as inference-perf's load generator does (its
    /// multi-process mode, September 2025): a stage sends exactly
    /// ⌊rate × duration⌋ requests at Poisson gaps, then waits until every
    /// one of them has ended (completed, failed or timed out), and the next
    /// stage starts `stage_gap_s` later. False: stages follow each other on
    /// the clock, whatever is still running.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub drain_stages: bool,
    /// Seconds from a drained stage's last request ending to the next
    /// stage's first send: inference-perf's stage `interval` (1 s) and the
    /// second it gives a stage's queue to fill before its first request
    /// time. Only with `drain_stages`.
    #[serde(
        default = "default_stage_gap",
        skip_serializing_if = "is_default_stage_gap"
    )]
    pub stage_gap_s: f64,
}

fn default_stage_gap() -> f64 {
    2.0
}

fn is_default_stage_gap(v: &f64) -> bool {
    *v == default_stage_gap()
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
            drain_stages: false,
            stage_gap_s: default_stage_gap(),
        }
    }

    /// A ladder of stages.
    pub fn ladder(stages: Vec<Stage>) -> Self {
        Arrivals {
            rate: None,
            ladder: Some(stages),
            drain_stages: false,
            stage_gap_s: default_stage_gap(),
        }
    }

    /// Checks the rates and durations: a rate is at least [`MIN_RATE`].
    pub fn validate(&self) -> Result<(), String> {
        if self.drain_stages && self.ladder.is_none() {
            return Err("arrivals.drain_stages needs a ladder".into());
        }
        if !(self.stage_gap_s >= 0.0 && self.stage_gap_s <= 86_400.0) {
            return Err(format!(
                "arrivals.stage_gap_s must be 0 to 86400 s, got {}",
                self.stage_gap_s
            ));
        }
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
    /// Counted stages: each sends exactly ⌊rate × duration⌋ requests, timed
    /// from its own start (see [`ArrivalClock::counted`]).
    counted: bool,
    /// Requests the current counted stage has still to send.
    left: u64,
}

impl ArrivalClock {
    /// A clock starting at 0. With `drain_stages`, each ladder stage sends
    /// exactly ⌊rate × duration⌋ requests at Poisson gaps (possibly past
    /// its nominal end), and [`ArrivalClock::next_staged`] gives times from
    /// the stage's own start, which the caller fixes once the stage before
    /// has drained.
    pub fn new(spec: Arrivals, seed: u64) -> Self {
        let stage_end = match &spec.ladder {
            None => f64::INFINITY,
            Some(stages) => stages.first().map_or(0.0, |s| s.duration_s),
        };
        let first = spec.ladder.as_ref().and_then(|s| s.first());
        let counted = spec.drain_stages && first.is_some();
        let left = first.filter(|_| counted).map_or(0, stage_count);
        ArrivalClock {
            spec,
            rng: fastrand::Rng::with_seed(seed),
            now: 0.0,
            stage: 0,
            stage_end,
            counted,
            left,
        }
    }

    /// The next arrival with its ladder stage (`None` for a plain rate), or
    /// `None` once the ladder is over. Counted clocks give times from the
    /// stage's start.
    pub fn next_staged(&mut self) -> Option<(f64, Option<u32>)> {
        if !self.counted {
            let t = self.next_arrival()?;
            let stage = self.spec.ladder.is_some().then_some(self.stage as u32);
            return Some((t, stage));
        }
        let stages = self.spec.ladder.as_ref()?;
        while self.left == 0 {
            self.stage += 1;
            self.now = 0.0;
            self.left = stage_count(stages.get(self.stage)?);
        }
        let rate = stages[self.stage].rate;
        self.left -= 1;
        self.now += self.exp(rate);
        Some((self.now, Some(self.stage as u32)))
    }

    fn exp(&mut self, rate: f64) -> f64 {
        let u = self.rng.f64().max(1e-300);
        -u.ln() / rate
    }

    /// The next arrival, or `None` once the ladder is over (stages on the
    /// clock; see [`ArrivalClock::next_staged`] for drained stages).
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

/// Requests a counted stage sends: ⌊rate × duration⌋, as inference-perf's
/// `int(rate * duration)`.
fn stage_count(s: &Stage) -> u64 {
    (s.rate * s.duration_s).floor() as u64
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

    #[test]
    fn counted_stages_send_their_exact_count_from_their_own_start() {
        let spec = Arrivals::ladder(vec![
            Stage {
                warmup: true,
                rate: 15.0,
                duration_s: 2.5,
            },
            Stage {
                warmup: false,
                rate: 0.1,
                duration_s: 5.0,
            },
            Stage {
                warmup: false,
                rate: 40.0,
                duration_s: 3.0,
            },
        ]);
        let spec = Arrivals {
            drain_stages: true,
            ..spec
        };
        let mut c = ArrivalClock::new(spec, 3);
        let got: Vec<(f64, Option<u32>)> = std::iter::from_fn(|| c.next_staged()).collect();
        let count = |k: u32| got.iter().filter(|(_, s)| *s == Some(k)).count();
        // ⌊37.5⌋, ⌊0.5⌋ (a stage of none), ⌊120⌋.
        assert_eq!((count(0), count(1), count(2)), (37, 0, 120));
        // Times restart at each stage and grow within it.
        let third: Vec<f64> = got
            .iter()
            .filter(|(_, s)| *s == Some(2))
            .map(|x| x.0)
            .collect();
        assert!(third[0] < 1.0 && third.windows(2).all(|w| w[0] <= w[1]));
        // A plain rate has no stages.
        let mut plain = ArrivalClock::new(Arrivals::poisson(5.0), 3);
        assert_eq!(plain.next_staged().map(|x| x.1), Some(None));
    }
}
