//! One fake pod's engine in real time: the simulator's worker (continuous
//! batching, paged KV cache with prefix caching, calibrated step times)
//! stepped on a thread that sleeps each step's duration, streaming tokens
//! to the requests and publishing KV events over ZMQ.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use llmd_feed::zmq::Publisher;
use llmd_kvindex::events::{encode_event_batch, EventBatch, EventLayout, HashValue, KvEvent};

use crate::cost::CostModel;
use crate::tokens::{mix64, token_at, BlockKeyer};
use crate::worker::{render_metrics, Progress, Seq, SeqKind, Worker};

/// What a request hears from the engine.
#[derive(Debug)]
pub enum Update {
    /// The request left the waiting queue: its first step started.
    Scheduled,
    /// Prefill done; `cached` prompt tokens came from the prefix cache.
    First {
        /// Cached prompt tokens.
        cached: u32,
    },
    /// New output token ids.
    Tokens(Vec<u32>),
    /// The last token was produced.
    Done,
}

struct Req {
    tx: Sender<Update>,
    scheduled: bool,
    sent: u32,
    out_len: u32,
    seed: u64,
}

struct State {
    worker: Worker,
    reqs: HashMap<u64, Req>,
    next: u64,
}

/// How KV events go out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventForm {
    /// vLLM ≥ 0.24's map form (the 0.33 layout).
    Map,
    /// The array form (the 0.22 layout), with `parent_block_hash = 0` for a
    /// chain's first block as llm-d-inference-sim sends it.
    Array,
}

/// A fake pod's engine.
pub struct LivePod {
    /// Endpoint name.
    pub name: String,
    /// Served model.
    pub model: String,
    state: Mutex<State>,
    wake: Condvar,
    cost: CostModel,
    keyer: Arc<dyn BlockKeyer>,
    speed: f64,
    vocab: u32,
    publisher: Mutex<Publisher>,
    form: EventForm,
    stop: AtomicBool,
    tracer: std::sync::OnceLock<Arc<llmd_feed::otlp::OtlpExporter>>,
}

impl std::fmt::Debug for LivePod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LivePod").field("name", &self.name).finish()
    }
}

impl LivePod {
    /// Exports a span per request to `t` (once; later calls are ignored).
    pub fn set_tracer(&self, t: Arc<llmd_feed::otlp::OtlpExporter>) {
        let _ = self.tracer.set(t);
    }

    /// The span exporter, when set.
    pub fn tracer(&self) -> Option<&Arc<llmd_feed::otlp::OtlpExporter>> {
        self.tracer.get()
    }

    /// A pod around `worker`; steps run `speed` times faster than their
    /// calibrated duration.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: String,
        model: String,
        worker: Worker,
        cost: CostModel,
        keyer: Arc<dyn BlockKeyer>,
        speed: f64,
        vocab: u32,
        publisher: Publisher,
        form: EventForm,
    ) -> LivePod {
        LivePod {
            name,
            model,
            state: Mutex::new(State {
                worker,
                reqs: HashMap::new(),
                next: 1,
            }),
            wake: Condvar::new(),
            cost,
            keyer,
            speed: speed.max(1e-3),
            vocab,
            publisher: Mutex::new(publisher),
            form,
            stop: AtomicBool::new(false),
            tracer: std::sync::OnceLock::new(),
        }
    }

    /// Vocabulary size of the model shape.
    pub fn vocab(&self) -> u32 {
        self.vocab
    }

    /// Queues a request (with vLLM's `cache_salt`, if any); the receiver
    /// hears its progress.
    pub fn submit(
        &self,
        prompt: Vec<u32>,
        max_tokens: u32,
        cache_salt: Option<&str>,
    ) -> Result<Receiver<Update>, String> {
        let (tx, rx) = channel();
        let mut g = self.state.lock().unwrap();
        let bs = g.worker.config().block_size as usize;
        let mut chain = self.keyer.start_salted(bs, None, cache_salt);
        let mut keys = Vec::with_capacity(prompt.len() / bs + 1);
        chain.extend(&prompt, &mut keys)?;
        let id = g.next;
        g.next += 1;
        let seed = mix64(id ^ mix64(self.name.len() as u64 ^ 0x9e37));
        let out_len = max_tokens.max(1);
        let seq = Seq::new(id, SeqKind::Full, prompt.into(), out_len, seed, chain, keys);
        g.worker.enqueue(seq)?;
        g.reqs.insert(
            id,
            Req {
                tx,
                scheduled: false,
                sent: 0,
                out_len,
                seed,
            },
        );
        self.wake.notify_all();
        Ok(rx)
    }

    /// The pod's `/metrics` page.
    pub fn metrics(&self) -> String {
        render_metrics(&self.state.lock().unwrap().worker, &self.model)
    }

    /// Stops the engine thread.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        self.wake.notify_all();
    }

    /// Closes the pod's ZMQ sockets.
    pub fn close_events(&self) {
        self.publisher.lock().unwrap().close();
    }

    /// Runs the engine until [`LivePod::stop`].
    pub fn run(&self) {
        let mut progress = Vec::new();
        loop {
            let mut g = self.state.lock().unwrap();
            while !g.worker.has_work() {
                if self.stop.load(Ordering::Acquire) {
                    return;
                }
                g = self
                    .wake
                    .wait_timeout(g, Duration::from_millis(100))
                    .unwrap()
                    .0;
            }
            if self.stop.load(Ordering::Acquire) {
                return;
            }
            let d = g.worker.begin_step(&self.cost, &mut progress);
            {
                let State { worker, reqs, .. } = &mut *g;
                let mut gone = Vec::new();
                for s in worker.running.iter() {
                    if let Some(r) = reqs.get_mut(&s.req).filter(|r| !r.scheduled) {
                        r.scheduled = true;
                        if r.tx.send(Update::Scheduled).is_err() {
                            gone.push(s.req);
                        }
                    }
                }
                abort_gone(worker, reqs, gone);
            }
            self.deliver(&mut g, &mut progress);
            drop(g);
            let Some(d) = d else {
                std::thread::sleep(Duration::from_millis(1));
                continue;
            };
            // A step time is finite and bounded by the calibration's checks;
            // the clamp keeps a host's odd `speed` from panicking here.
            let secs = d / self.speed;
            let secs = if secs.is_finite() {
                secs.clamp(0.0, 60.0)
            } else {
                60.0
            };
            std::thread::sleep(Duration::from_secs_f64(secs));
            let mut g = self.state.lock().unwrap();
            g.worker.finish_step(&mut progress);
            {
                let State { worker, reqs, .. } = &mut *g;
                let mut gone = Vec::new();
                for s in worker.running.iter() {
                    if let Some(r) = reqs.get_mut(&s.req) {
                        if !self.send_tokens(r, s.generated) {
                            gone.push(s.req);
                        }
                    }
                }
                abort_gone(worker, reqs, gone);
            }
            self.deliver(&mut g, &mut progress);
            let events = g.worker.take_events();
            drop(g);
            if !events.is_empty() {
                self.publish(events);
            }
        }
    }

    /// Sends the tokens up to `upto`; false when the request's client is
    /// gone (its connection closed).
    fn send_tokens(&self, r: &mut Req, upto: u32) -> bool {
        if upto > r.sent {
            let ids = (r.sent..upto)
                .map(|p| token_at(r.seed, u64::from(p), self.vocab))
                .collect();
            r.sent = upto;
            return r.tx.send(Update::Tokens(ids)).is_ok();
        }
        true
    }

    fn deliver(&self, g: &mut State, progress: &mut Vec<Progress>) {
        for p in progress.drain(..) {
            match p {
                Progress::FirstToken { req, cached_tokens } => {
                    if let Some(r) = g.reqs.get(&req) {
                        let _ = r.tx.send(Update::First {
                            cached: cached_tokens,
                        });
                    }
                }
                Progress::Finished { req } => {
                    if let Some(mut r) = g.reqs.remove(&req) {
                        let n = r.out_len;
                        self.send_tokens(&mut r, n);
                        let _ = r.tx.send(Update::Done);
                    }
                }
                Progress::Preempted { .. }
                | Progress::PrefillDone { .. }
                | Progress::Token { .. } => {}
            }
        }
    }

    fn publish(&self, mut events: Vec<KvEvent>) {
        let layout = match self.form {
            EventForm::Map => EventLayout::V0_33,
            EventForm::Array => {
                for e in &mut events {
                    if let KvEvent::BlockStored(b) = e {
                        b.parent_block_hash.get_or_insert(HashValue::Int(0));
                    }
                }
                EventLayout::V0_22
            }
        };
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let batch = EventBatch {
            ts,
            data_parallel_rank: Some(0),
            events,
            skipped_events: 0,
        };
        self.publisher
            .lock()
            .unwrap()
            .publish(&encode_event_batch(&batch, layout));
    }
}

/// Aborts the requests whose clients went away, as vLLM aborts a request
/// whose connection closed: their KV blocks are freed and they stop
/// decoding.
fn abort_gone(worker: &mut Worker, reqs: &mut HashMap<u64, Req>, gone: Vec<u64>) {
    for id in gone {
        worker.abort(id);
        reqs.remove(&id);
    }
}
