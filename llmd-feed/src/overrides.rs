//! The feed settings a host sets over what its scheduler's configuration
//! asks: one set of names for every binding (Python keyword arguments, the
//! C ABI's JSON object, Go's feed options), checked in one place.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::config::FeedSetting;
use crate::options::{FeedOptions, UnrecoverableGap};
use crate::FeedError;

/// Host settings; each one left `None` keeps the configuration's value (or
/// the feed's default). Durations are seconds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FeedOverrides {
    /// Topic prefixes to subscribe to ([`FeedOptions::topics`]).
    pub topics: Option<Vec<String>>,
    /// Ingest workers, 1 ..= 1024 ([`FeedOptions::concurrency`]).
    pub concurrency: Option<usize>,
    /// Events port of pods added without an events endpoint
    /// ([`FeedOptions::discover_events_port`]).
    pub events_port: Option<u16>,
    /// Replay port of pods added without a replay endpoint
    /// ([`FeedOptions::discover_replay_port`]).
    pub replay_port: Option<u16>,
    /// Seconds between scrapes ([`FeedOptions::scrape_interval`]).
    pub scrape_interval: Option<f64>,
    /// Deadline of one scrape, seconds ([`FeedOptions::scrape_timeout`]).
    pub scrape_timeout: Option<f64>,
    /// Deadline of one replay, seconds ([`FeedOptions::replay_timeout`]).
    pub replay_timeout: Option<f64>,
    /// Seconds without a successful scrape before a down pod leaves the
    /// scheduler ([`FeedOptions::remove_after`]).
    pub remove_after: Option<f64>,
    /// `false` keeps a pod's entries when lost batches cannot be replayed
    /// ([`FeedOptions::on_unrecoverable_gap`]).
    pub clear_on_unrecoverable_gap: Option<bool>,
    /// Seconds of silence before a ZMTP `PING`; 0 sends none
    /// ([`FeedOptions::heartbeat_interval`]).
    pub heartbeat_interval: Option<f64>,
}

/// Longest duration a host may set (about 31 years: anything longer is a
/// mistake, and `Duration` arithmetic must not overflow).
const MAX_SECONDS: f64 = 1e9;

/// A duration a host gives in seconds, checked: finite, at least a
/// millisecond (a shorter one would round to nothing, or spin) and under
/// about 31 years; the error names `what`.
pub fn seconds(what: &str, v: f64) -> Result<Duration, String> {
    if (1e-3..MAX_SECONDS).contains(&v) {
        Ok(Duration::from_secs_f64(v))
    } else {
        Err(format!(
            "{what} must be a number of seconds of at least 0.001 and under {MAX_SECONDS}, got {v}"
        ))
    }
}

impl FeedOverrides {
    /// Reads a JSON object with the fields' names (`{}` sets nothing, a
    /// `null` leaves a field unset); an unknown name, a wrong type or a value
    /// out of range is an error that names the field.
    pub fn from_json(text: &str) -> Result<Self, FeedError> {
        let bad = |m: String| FeedError::Config(format!("feed options: {m}"));
        let fields: serde_json::Map<String, Value> =
            serde_json::from_str(text).map_err(|e| bad(format!("a JSON object expected: {e}")))?;
        fn field<T: DeserializeOwned>(k: &str, v: Value) -> Result<Option<T>, FeedError> {
            serde_json::from_value(v)
                .map_err(|e| FeedError::Config(format!("feed options: {k}: {e}")))
        }
        let mut o = FeedOverrides::default();
        for (k, v) in fields {
            match k.as_str() {
                "topics" => o.topics = field(&k, v)?,
                "concurrency" => o.concurrency = field(&k, v)?,
                "events_port" => o.events_port = field(&k, v)?,
                "replay_port" => o.replay_port = field(&k, v)?,
                "scrape_interval" => o.scrape_interval = field(&k, v)?,
                "scrape_timeout" => o.scrape_timeout = field(&k, v)?,
                "replay_timeout" => o.replay_timeout = field(&k, v)?,
                "remove_after" => o.remove_after = field(&k, v)?,
                "clear_on_unrecoverable_gap" => o.clear_on_unrecoverable_gap = field(&k, v)?,
                "heartbeat_interval" => o.heartbeat_interval = field(&k, v)?,
                _ => return Err(bad(format!("unknown option '{k}'"))),
            }
        }
        o.apply(&mut FeedOptions::default())?;
        Ok(o)
    }

    /// Sets the given fields in `o`, checking each; on an error `o` is
    /// unchanged.
    pub fn apply(&self, o: &mut FeedOptions) -> Result<(), FeedError> {
        let mut n = o.clone();
        if let Some(t) = &self.topics {
            if t.is_empty() {
                return Err(FeedError::Config(
                    "topics must name at least one prefix (\"\" takes every topic)".into(),
                ));
            }
            n.topics = t.clone();
        }
        for (port, what) in [
            (self.events_port, "events_port"),
            (self.replay_port, "replay_port"),
        ] {
            if port == Some(0) {
                return Err(FeedError::Config(format!(
                    "{what} must be in 1..=65535, got 0"
                )));
            }
        }
        if let Some(c) = self.concurrency {
            if c == 0 || c > 1024 {
                return Err(FeedError::Config(format!(
                    "concurrency must be in 1..=1024, got {c}"
                )));
            }
            n.concurrency = c;
        }
        if self.events_port.is_some() {
            n.discover_events_port = self.events_port;
        }
        if self.replay_port.is_some() {
            n.discover_replay_port = self.replay_port;
        }
        for (v, slot, what) in [
            (
                self.scrape_interval,
                &mut n.scrape_interval,
                "scrape_interval",
            ),
            (self.scrape_timeout, &mut n.scrape_timeout, "scrape_timeout"),
            (self.replay_timeout, &mut n.replay_timeout, "replay_timeout"),
            (self.remove_after, &mut n.remove_after, "remove_after"),
        ] {
            if let Some(v) = v {
                *slot = seconds(what, v).map_err(FeedError::Config)?;
            }
        }
        match self.heartbeat_interval {
            Some(0.0) => n.heartbeat_interval = None,
            Some(v) => {
                let d = seconds("heartbeat_interval", v)
                    .map_err(|e| FeedError::Config(format!("{e} (or 0 for none)")))?;
                n.heartbeat_interval = Some(d);
            }
            None => {}
        }
        if let Some(c) = self.clear_on_unrecoverable_gap {
            n.on_unrecoverable_gap = if c {
                UnrecoverableGap::Clear
            } else {
                UnrecoverableGap::Keep
            };
        }
        *o = n;
        Ok(())
    }

    /// One settings-report line per field set, so that the feed's report
    /// (`Feed::settings`) shows what the host changed beside what the
    /// configuration asked.
    pub fn settings(&self) -> Vec<FeedSetting> {
        let mut out = Vec::new();
        let mut push = |name: &str, value: Option<String>| {
            if let Some(v) = value {
                out.push(FeedSetting {
                    plugin: "host".into(),
                    setting: name.into(),
                    executed: true,
                    note: format!("set by the host to {v}, over the configuration and the default"),
                });
            }
        };
        push("topics", self.topics.as_ref().map(|t| format!("{t:?}")));
        push("concurrency", self.concurrency.map(|v| v.to_string()));
        push("events_port", self.events_port.map(|v| v.to_string()));
        push("replay_port", self.replay_port.map(|v| v.to_string()));
        for (name, v) in [
            ("scrape_interval", self.scrape_interval),
            ("scrape_timeout", self.scrape_timeout),
            ("replay_timeout", self.replay_timeout),
            ("remove_after", self.remove_after),
            ("heartbeat_interval", self.heartbeat_interval),
        ] {
            push(name, v.map(|s| format!("{s} s")));
        }
        push(
            "clear_on_unrecoverable_gap",
            self.clear_on_unrecoverable_gap.map(|v| v.to_string()),
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_what_is_given_and_checks_it() {
        let o = FeedOverrides::from_json(
            r#"{"topics": ["kv@a"], "concurrency": 2, "heartbeat_interval": 0,
                "scrape_interval": 0.25, "clear_on_unrecoverable_gap": false}"#,
        )
        .unwrap();
        let mut opts = FeedOptions::default();
        o.apply(&mut opts).unwrap();
        assert_eq!(opts.topics, ["kv@a"]);
        assert_eq!(opts.concurrency, 2);
        assert_eq!(opts.heartbeat_interval, None);
        assert_eq!(opts.scrape_interval, Duration::from_millis(250));
        assert_eq!(opts.on_unrecoverable_gap, UnrecoverableGap::Keep);
        assert_eq!(opts.replay_timeout, FeedOptions::default().replay_timeout);
        assert_eq!(o.settings().len(), 5);
        assert_eq!(
            FeedOverrides::from_json("{}").unwrap(),
            FeedOverrides::default()
        );
    }

    #[test]
    fn refuses_bad_options_and_leaves_the_target_alone() {
        for (text, needle) in [
            (r#"{"concurrency": 0}"#, "concurrency must be in 1..=1024"),
            (r#"{"concurrency": 5000}"#, "concurrency"),
            (r#"{"events_port": 70000}"#, "events_port"),
            (
                r#"{"replay_timeout": -1}"#,
                "replay_timeout must be a number of seconds",
            ),
            (r#"{"remove_after": 1e300}"#, "remove_after"),
            (r#"{"scrape_timeout": 1e-10}"#, "at least 0.001"),
            (r#"{"heartbeat_interval": 1e-10}"#, "heartbeat_interval"),
            (r#"{"topics": []}"#, "at least one prefix"),
            (r#"{"replay_port": 0}"#, "replay_port must be in 1..=65535"),
            (r#"{"heartbeat_interval": -2}"#, "(or 0 for none)"),
            (r#"{"scrape_interval": "1s"}"#, "scrape_interval"),
            (r#"{"topic": ["a"]}"#, "unknown option 'topic'"),
            (r#"{"topics": "kv@"}"#, "topics"),
            ("[]", "feed options"),
            ("", "feed options"),
            ("{", "feed options"),
        ] {
            let e = FeedOverrides::from_json(text).unwrap_err().to_string();
            assert!(e.contains(needle), "{text}: {e}");
        }
        let mut opts = FeedOptions::default();
        let bad = FeedOverrides {
            concurrency: Some(2),
            scrape_timeout: Some(f64::NAN),
            ..Default::default()
        };
        assert!(bad.apply(&mut opts).is_err());
        assert_eq!(opts.concurrency, FeedOptions::default().concurrency);
    }
}
