//! A request's arrival time (`Request::arrived_at_ns`) starts its latencies:
//! router queue time, TTFT and end-to-end include time queued in the host.

use std::sync::Arc;

use llmd_sched::{Endpoint, ManualClock, Request, Scheduler};

fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.starts_with(name)
                && (l.as_bytes().get(name.len()) == Some(&b'{')
                    || l.as_bytes().get(name.len()) == Some(&b' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn run(arrived_at_ns: Option<u64>) -> String {
    let clock = Arc::new(ManualClock::new(10_000_000_000));
    let s = Scheduler::default().with_seed(1).with_clock(clock.clone());
    s.add_endpoint(Endpoint::new("pod-a", "10.0.0.1:8000"))
        .unwrap();
    let mut req = Request::with_tokens("r1", "m", (0..64).collect());
    req.arrived_at_ns = arrived_at_ns;
    s.pick(&req).unwrap();
    clock.advance_ns(200_000_000);
    assert!(s.on_first_token("r1"));
    clock.advance_ns(300_000_000);
    assert!(s.on_tokens("r1", 10));
    assert!(s.on_complete("r1", Some(0)).is_some());
    s.render_metrics()
}

#[test]
fn latencies_start_at_arrival_when_given() {
    // Arrived 0.5 s before pick: queue 0.5 s, TTFT 0.7 s, end-to-end 1.0 s.
    let text = run(Some(9_500_000_000));
    assert!(
        (sample(&text, "llmd_router_queue_time_seconds_sum") - 0.5).abs() < 1e-9,
        "{text}"
    );
    assert!((sample(&text, "llmd_inference_ttft_sum") - 0.7).abs() < 1e-9);
    assert!((sample(&text, "llmd_inference_e2e_latency_seconds_sum") - 1.0).abs() < 1e-9);
}

#[test]
fn latencies_start_at_pick_without_arrival_or_with_a_future_one() {
    for arrived in [None, Some(20_000_000_000)] {
        let text = run(arrived);
        assert!(sample(&text, "llmd_router_queue_time_seconds_sum").abs() < 1e-9);
        assert!((sample(&text, "llmd_inference_ttft_sum") - 0.2).abs() < 1e-9);
        assert!((sample(&text, "llmd_inference_e2e_latency_seconds_sum") - 0.5).abs() < 1e-9);
    }
}
