//! llmd-sim: a calibrated, deterministic simulator of a vLLM fleet, and the
//! library behind the `llmd` command-line tool.
//!
//! A run draws requests from a seeded [`workload`], places each with a
//! [`router::Router`] (a built-in baseline or an llm-d EndpointPickerConfig
//! run by the scheduler), and plays every worker's engine forward in
//! simulated time: continuous batching under a token budget with chunked
//! prefill, a paged KV cache with prefix caching and LRU eviction (plus an
//! optional CPU tier), and step times from operator-level GPU timings
//! ([`cost`]). Workers publish vLLM KV events and `/metrics` pages, which
//! reach the router as they would in production (events as wire bytes; the
//! scrape as stale as its interval). Same scenario and seed, same result.
//!
//! ```
//! use llmd_sim::{engine, policy, scenario::Scenario, summary::Summary};
//!
//! let mut sc = Scenario::default_scenario()?;
//! sc.workload.max_requests = Some(40);
//! let router = policy::build(&policy::policies(&sc)[0], &sc)?;
//! let out = engine::run(&sc, router, engine::RunOptions::default())?;
//! let s = Summary::of(&out);
//! assert_eq!(s.completed + s.failed, 40);
//! # Ok::<(), llmd_sim::error::SimError>(())
//! ```
#![deny(missing_docs)]

pub mod calibration;
pub mod cost;
pub mod cputier;
pub mod engine;
pub mod error;
pub mod exposition;
pub mod keyer;
pub mod kvcache;
pub mod lru;
pub mod pods;
pub mod policy;
pub mod report;
pub mod request;
pub mod router;
pub mod scenario;
pub mod stages;
pub mod summary;
pub mod tokens;
pub mod wire;
pub mod worker;
pub mod workload;
