//! Screeners: narrow a request's candidates before the producers and
//! scheduling profiles run (llm-d's request-control Screener stage).

mod rollout;

pub use rollout::{GatingMode, HeaderSelector, RolloutScreener, SelectorMode};
