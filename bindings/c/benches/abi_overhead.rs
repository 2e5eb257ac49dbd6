//! What the C ABI adds to a pick, measured robustly on a shared, noisy
//! machine: the Rust call and the same call through the exported C
//! functions run in alternating rounds in one process, and the minimum
//! per-iteration time of each is compared (noise only ever adds time).
//! Same scenario as `benches/pick.rs`; then the same for `pick_openai`
//! (a short chat body, tokenized with the tiny test tokenizer). Run:
//! `cargo bench -p llmd-c --bench abi_overhead`.

use std::hint::black_box;
use std::mem::MaybeUninit;
use std::ptr;
use std::time::Instant;

use llmd::decision::{llmd_decision_free, llmd_decision_get_info, llmd_scheduler_pick};
use llmd::lifecycle::{llmd_scheduler_on_complete, llmd_scheduler_on_first_token};
use llmd::request::llmd_request_desc;
use llmd::scheduler::llmd_scheduler;
use llmd::tokenizer::llmd_scheduler_pick_openai;
use llmd::views::llmd_str;
use llmd_sched::{Endpoint, EndpointMetrics, Request, Scheduler};

const ROUNDS: usize = 30;

fn scheduler() -> Scheduler {
    let s = Scheduler::from_config_str("")
        .expect("default config")
        .with_seed(1);
    for i in 0..4u32 {
        let mut ep = Endpoint::new(format!("pod-{i}"), format!("10.0.0.{i}:8000"));
        ep.model = Some("llama".into());
        s.add_endpoint(ep).expect("add endpoint");
        let m = EndpointMetrics {
            waiting_queue_size: i,
            running_requests_size: 2 * i,
            kv_cache_usage: 0.1 * f64::from(i),
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

/// What a C host does with a decision: reads the primary target, frees
/// the decision, completes the request.
///
/// # Safety
/// `handle` live; `d` a decision it returned, not yet freed.
unsafe fn read_and_complete(handle: *mut llmd_scheduler, d: *mut llmd::decision::llmd_decision) {
    let mut info = MaybeUninit::uninit();
    // SAFETY: caller contract; `info` is read only after it was filled.
    unsafe {
        if llmd_decision_get_info(d, info.as_mut_ptr()) {
            black_box(info.assume_init().primary.address.len);
        }
        llmd_decision_free(d);
        llmd_scheduler_on_complete(
            handle,
            c"bench".as_ptr(),
            5,
            -1,
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
        );
    }
}

/// Nanoseconds per iteration of `f` over `iters` iterations.
fn time(iters: u32, mut f: impl FnMut()) -> f64 {
    let t0 = Instant::now();
    for _ in 0..iters {
        f();
    }
    t0.elapsed().as_nanos() as f64 / f64::from(iters)
}

fn report(name: &str, rust: &mut [f64], abi: &mut [f64]) {
    let name = format!("{name:<10}");
    rust.sort_by(f64::total_cmp);
    abi.sort_by(f64::total_cmp);
    let (r, a) = (rust[0], abi[0]);
    println!(
        "{name} rust min {r:>8.1} ns (median {:>8.1}) | c_abi min {a:>8.1} ns (median {:>8.1}) | overhead {:>6.1} ns",
        rust[rust.len() / 2],
        abi[abi.len() / 2],
        a - r
    );
}

fn main() {
    let tokens: Vec<u32> = (1..=256).collect();
    // Both sides tokenize chat bodies with the tiny test tokenizer (used by
    // `pick_openai` only).
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../testdata/tokenizers/tiny"
    );
    let tok = std::sync::Arc::new(llmd_tokenize::Tokenizer::from_dir(dir).expect("tiny tokenizer"));
    let rust = scheduler();
    rust.set_tokenizer("llama", tok.clone());
    let c_side = scheduler();
    c_side.set_tokenizer("llama", tok);
    let handle = Box::into_raw(Box::new(llmd_scheduler::from(c_side)));
    let none = llmd_str {
        ptr: ptr::null(),
        len: 0,
    };
    let desc = llmd_request_desc {
        id: view("bench"),
        model: view("llama"),
        tokens: tokens.as_ptr(),
        n_tokens: tokens.len(),
        prompt: none,
        lora_name: none,
        lora_path: none,
        cache_salt: none,
        session_id: none,
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
    let rust_pick = || {
        let req = Request::with_tokens("bench", "llama", tokens.clone());
        let d = rust.pick(black_box(&req)).expect("pick");
        black_box(d.targets.first().map(|t| t.address.len()));
        black_box(rust.on_complete("bench", None));
    };
    let abi_pick = || {
        let mut d = ptr::null_mut();
        // SAFETY: every pointer is live for the calls.
        unsafe {
            llmd_scheduler_pick(handle, &desc, &mut d, ptr::null_mut());
            read_and_complete(handle, d);
        }
    };
    let (mut r, mut a) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        r.push(time(20_000, rust_pick));
        a.push(time(20_000, abi_pick));
    }
    report("pick", &mut r, &mut a);

    let rust_call = || {
        black_box(rust.on_first_token(black_box("unknown")));
    };
    let abi_call = || {
        let mut found = false;
        // SAFETY: every pointer is live for the call.
        unsafe {
            llmd_scheduler_on_first_token(
                handle,
                black_box(c"unknown").as_ptr(),
                7,
                &mut found,
                ptr::null_mut(),
            );
        }
        black_box(found);
    };
    let (mut r, mut a) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        r.push(time(200_000, rust_call));
        a.push(time(200_000, abi_call));
    }
    report("call", &mut r, &mut a);
    openai(&rust, handle);
    // SAFETY: made by `Box::into_raw` above and no longer used.
    drop(unsafe { Box::from_raw(handle) });
}

/// `pick_openai` of a short chat body, Rust vs the C ABI.
fn openai(rust: &Scheduler, handle: *mut llmd_scheduler) {
    let tokenized = br#"{"model": "llama", "messages": [{"role": "system", "content": "w1 w2"}, {"role": "user", "content": "w1 w2 w1 w2"}], "max_tokens": 64}"#;
    openai_round(rust, handle, "openai", tokenized);
    // Schedulers without a tokenizer: estimated, a cheaper pick, so the
    // boundary's cost stands out of the noise.
    let plain = scheduler();
    let plain_handle = Box::into_raw(Box::new(llmd_scheduler::from(scheduler())));
    openai_round(&plain, plain_handle, "openai-est", tokenized);
    // SAFETY: made by `Box::into_raw` above and no longer used.
    drop(unsafe { Box::from_raw(plain_handle) });
}

fn openai_round(rust: &Scheduler, handle: *mut llmd_scheduler, name: &str, body: &[u8]) {
    let path = "/v1/chat/completions";
    let headers = std::collections::BTreeMap::new();
    let rust_pick = || {
        let d = rust
            .pick_openai("bench", path, black_box(body), &headers)
            .expect("pick_openai");
        black_box(d.targets.first().map(|t| t.address.len()));
        black_box(rust.on_complete("bench", None));
    };
    let abi_pick = || {
        let mut d = ptr::null_mut();
        // SAFETY: every pointer is live for the calls.
        unsafe {
            llmd_scheduler_pick_openai(
                handle,
                c"bench".as_ptr(),
                5,
                path.as_ptr().cast(),
                path.len(),
                black_box(body).as_ptr(),
                body.len(),
                ptr::null(),
                0,
                &mut d,
                ptr::null_mut(),
            );
            read_and_complete(handle, d);
        }
    };
    let (mut r, mut a) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        r.push(time(5_000, rust_pick));
        a.push(time(5_000, abi_pick));
    }
    report(name, &mut r, &mut a);
}
