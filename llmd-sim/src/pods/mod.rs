//! A fake fleet that speaks the real protocols (`llmd pods`): N simulated
//! vLLM pods on loopback, each the simulator's calibrated worker running in
//! real time behind vLLM's OpenAI HTTP surface, its `/metrics`, a
//! `/tokenize`, and KV events over ZMQ (map or array form) with a replay
//! socket. It is what routers, examples and tests run against before a GPU.

pub mod live;
pub mod server;
pub mod text;

use std::net::TcpListener;
use std::sync::Arc;
use std::thread::JoinHandle;

use llmd_feed::zmq::{Publisher, ReplayLayout};

pub use live::{EventForm, LivePod};

use crate::cost::CostModel;
use crate::error::{Result, SimError};
use crate::keyer;
use crate::scenario::Scenario;
use crate::worker::Worker;

/// How to start a fleet.
#[derive(Clone, Debug)]
pub struct FleetOptions {
    /// Number of pods.
    pub pods: usize,
    /// Pod i serves HTTP on `port + i` (0: any free ports).
    pub port: u16,
    /// KV-event form.
    pub events: EventForm,
    /// Served model name (default: the scenario's `model_name`, the name
    /// `llmd simulate` serves too).
    pub model: Option<String>,
    /// Engine, model shape and cost model.
    pub scenario: Scenario,
    /// Run steps this many times faster than calibrated.
    pub speed: f64,
    /// Batches kept for replay (vLLM's `buffer_steps`).
    pub buffer_steps: usize,
    /// Where the pods export a span per request (as vLLM's
    /// `--otlp-traces-endpoint`), continuing the request's `traceparent`.
    pub tracer: Option<Arc<llmd_feed::otlp::OtlpExporter>>,
}

/// Where a started pod listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodInfo {
    /// Pod name.
    pub name: String,
    /// `host:port` of its HTTP server.
    pub http: String,
    /// Its KV-event PUB endpoint.
    pub events: String,
    /// Its replay ROUTER endpoint.
    pub replay: String,
}

/// A running fleet; dropping it stops the engines.
#[derive(Debug)]
pub struct Fleet {
    pods: Vec<(PodInfo, Arc<LivePod>)>,
    threads: Vec<JoinHandle<()>>,
}

impl Fleet {
    /// Starts `opts.pods` pods.
    pub fn start(opts: &FleetOptions) -> Result<Fleet> {
        let sc = &opts.scenario;
        // `-n` pods, not the scenario's fleet: the same bounds for them.
        sc.check_caches(opts.pods)?;
        let calib = sc.calibration()?;
        let shape = calib.shape(&sc.model)?;
        let e = &sc.engine;
        let keyer: Arc<dyn crate::tokens::BlockKeyer> = Arc::from(keyer::for_engine(
            &e.prefix_caching_hash_algo,
            &e.vllm_version,
            e.block_size as usize,
            e.python_hash_seed.as_deref(),
        )?);
        let model = opts.model.clone().unwrap_or_else(|| sc.model_name.clone());
        let mut fleet = Fleet {
            pods: Vec::new(),
            threads: Vec::new(),
        };
        for i in 0..opts.pods {
            let port = if opts.port == 0 {
                0
            } else {
                opts.port + i as u16
            };
            let listener = TcpListener::bind(("127.0.0.1", port))
                .map_err(|e| SimError::io(format!("binding 127.0.0.1:{port}"), e))?;
            let http = listener
                .local_addr()
                .map_err(|e| SimError::io("local address", e))?
                .to_string();
            let name = format!("pod-{i}");
            let mut publisher = Publisher::new(&format!("kv@{http}@{model}"), opts.buffer_steps);
            let io = |e: std::io::Error| SimError::io("binding a ZMQ socket", e);
            let events = publisher.bind("tcp://127.0.0.1:0").map_err(io)?;
            let layout = match opts.events {
                EventForm::Map => ReplayLayout::WithTopic,
                EventForm::Array => ReplayLayout::WithoutTopic,
            };
            let replay = publisher
                .bind_replay("tcp://127.0.0.1:0", layout)
                .map_err(io)?;
            let cost = CostModel::new(shape, sc.cost.clone())?.with_h2d_gbps(calib.copy.h2d_gbps);
            let worker = Worker::new(i, name.clone(), e.clone(), shape.config.vocab);
            let pod = Arc::new(LivePod::new(
                name.clone(),
                model.clone(),
                worker,
                cost,
                keyer.clone(),
                opts.speed,
                shape.config.vocab,
                publisher,
                opts.events,
            ));
            if let Some(t) = &opts.tracer {
                pod.set_tracer(t.clone());
            }
            let p = pod.clone();
            fleet.threads.push(std::thread::spawn(move || p.run()));
            let p = pod.clone();
            std::thread::spawn(move || server::serve(p, listener));
            fleet.pods.push((
                PodInfo {
                    name,
                    http,
                    events: events.to_string(),
                    replay: replay.to_string(),
                },
                pod,
            ));
        }
        Ok(fleet)
    }

    /// The pods' addresses.
    pub fn pods(&self) -> Vec<PodInfo> {
        self.pods.iter().map(|(i, _)| i.clone()).collect()
    }

    /// Stops the engines and closes the ZMQ sockets (HTTP listeners end
    /// with the process).
    pub fn stop(&mut self) {
        for (_, p) in &self.pods {
            p.stop();
            p.close_events();
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.stop();
    }
}
