//! One pick plus its completion, as a Rust caller and as a C caller (through
//! the exported functions) sees it, on the scenario that `bench/pick_bench.c`
//! and the Go `BenchmarkPick` use: llm-d's default pipeline, 4 endpoints
//! with metrics, a 256-token prompt.

use std::hint::black_box;
use std::mem::MaybeUninit;
use std::ptr;

use criterion::{criterion_group, criterion_main, Criterion};
use llmd::decision::{
    llmd_decision_free, llmd_decision_get_info, llmd_decision_info, llmd_scheduler_pick,
};
use llmd::lifecycle::{llmd_scheduler_on_complete, llmd_scheduler_on_first_token};
use llmd::request::llmd_request_desc;
use llmd::scheduler::llmd_scheduler;
use llmd::views::llmd_str;
use llmd_sched::{Endpoint, EndpointMetrics, Request, Scheduler};

const ENDPOINTS: usize = 4;
const PROMPT_TOKENS: u32 = 256;

fn scheduler() -> Scheduler {
    let s = Scheduler::from_config_str("")
        .expect("default config")
        .with_seed(1);
    for i in 0..ENDPOINTS {
        let mut ep = Endpoint::new(format!("pod-{i}"), format!("10.0.0.{i}:8000"));
        ep.model = Some("llama".into());
        s.add_endpoint(ep).expect("add endpoint");
        let m = EndpointMetrics {
            waiting_queue_size: i as u32,
            running_requests_size: 2 * i as u32,
            kv_cache_usage: 0.1 * i as f64,
            ..EndpointMetrics::default()
        };
        s.update_endpoint_metrics(&format!("pod-{i}"), m)
            .expect("metrics");
    }
    s
}

fn view(s: &str) -> llmd_str {
    llmd_str {
        ptr: s.as_ptr().cast(),
        len: s.len(),
    }
}

fn bench(c: &mut Criterion) {
    let tokens: Vec<u32> = (1..=PROMPT_TOKENS).collect();
    let mut g = c.benchmark_group("pick");

    let rust = scheduler();
    g.bench_function("rust", |b| {
        b.iter(|| {
            let req = Request::with_tokens("bench", "llama", tokens.clone());
            let d = rust.pick(black_box(&req)).expect("pick");
            black_box(d.targets.first().map(|t| t.address.len()));
            rust.on_complete("bench", None)
        })
    });

    let c_handle = Box::into_raw(Box::new(llmd_scheduler::from(scheduler())));
    let desc = llmd_request_desc {
        id: view("bench"),
        model: view("llama"),
        tokens: tokens.as_ptr(),
        n_tokens: tokens.len(),
        prompt: llmd_str {
            ptr: ptr::null(),
            len: 0,
        },
        lora_name: llmd_str {
            ptr: ptr::null(),
            len: 0,
        },
        lora_path: llmd_str {
            ptr: ptr::null(),
            len: 0,
        },
        cache_salt: llmd_str {
            ptr: ptr::null(),
            len: 0,
        },
        session_id: llmd_str {
            ptr: ptr::null(),
            len: 0,
        },
        headers: ptr::null(),
        n_headers: 0,
        priority: 0,
        ttft_slo_ms: 0.0,
        tpot_slo_ms: 0.0,
        multimodal: 0,
        arrived_at_ns: 0,
        mm_items: std::ptr::null(),
        n_mm_items: 0,
    };
    g.bench_function("c_abi", |b| {
        b.iter(|| {
            let mut d = ptr::null_mut();
            let mut info = MaybeUninit::<llmd_decision_info>::uninit();
            // SAFETY: every pointer is live for the call; `d` is freed once;
            // `info` is read only after `llmd_decision_get_info` filled it.
            unsafe {
                llmd_scheduler_pick(c_handle, &desc, &mut d, ptr::null_mut());
                if llmd_decision_get_info(d, info.as_mut_ptr()) {
                    black_box(info.assume_init().primary.address.len);
                }
                llmd_decision_free(d);
                llmd_scheduler_on_complete(
                    c_handle,
                    "bench".as_ptr().cast(),
                    5,
                    -1,
                    ptr::null_mut(),
                    ptr::null_mut(),
                    ptr::null_mut(),
                );
            }
        })
    });
    g.finish();

    // The bare boundary: a lifecycle call for an unknown id does almost no
    // work, so its cost is the call itself (panic guard, checks, UTF-8).
    let mut g = c.benchmark_group("call");
    g.bench_function("rust", |b| {
        b.iter(|| rust.on_first_token(black_box("unknown")))
    });
    g.bench_function("c_abi", |b| {
        b.iter(|| {
            let mut found = false;
            // SAFETY: every pointer is live for the call.
            unsafe {
                llmd_scheduler_on_first_token(
                    c_handle,
                    black_box("unknown").as_ptr().cast(),
                    7,
                    &mut found,
                    ptr::null_mut(),
                )
            };
            found
        })
    });
    g.finish();
    // SAFETY: made by `Box::into_raw` above and no longer used.
    drop(unsafe { Box::from_raw(c_handle) });
}

criterion_group!(benches, bench);
criterion_main!(benches);
