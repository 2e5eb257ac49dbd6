//! The cost model reproduces the calibration's own worked examples and
//! behaves sensibly between and beyond the measured points.

use llmd_sim::calibration::Calibration;
use llmd_sim::cost::{CostModel, CostParams, StepShape};

fn model(name: &str) -> CostModel {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../testdata/calibration/h100_ops.json"
    ))
    .expect("calibration in testdata");
    let cal = Calibration::from_json(&text).expect("parses");
    // The README's examples exclude all-reduce and per-step overhead.
    let bare = CostParams {
        allreduce_gbps: 1e12,
        allreduce_latency_us: 0.0,
        step_overhead_ms: 0.0,
    };
    CostModel::new(cal.shape(name).expect("shape"), bare).expect("model")
}

fn prefill(m: &CostModel, n: u32) -> f64 {
    m.step_ms(&StepShape {
        prefills: vec![(0, n)],
        sampled: 1,
        ..StepShape::default()
    })
}

fn decode(m: &CostModel, b: u32, ctx: u64) -> f64 {
    m.step_ms(&StepShape {
        prefills: vec![],
        decodes: b,
        decode_context: u64::from(b) * ctx,
        sampled: b,
        ..StepShape::default()
    })
}

/// A decode batch whose sequences have these contexts, as a worker builds it.
fn decode_each(m: &CostModel, contexts: &[u64]) -> f64 {
    let mut s = StepShape::default();
    for &c in contexts {
        s.add_decode(c);
    }
    s.sampled = s.decodes;
    m.step_ms(&s)
}

#[test]
fn decode_attention_is_each_sequences_own_context() {
    // Half the batch at 512 tokens, half at 8192: each sequence costs its
    // own context's share of the batched kernel, not the mean context's.
    let m = model("qwen3-32b-tp2");
    let layers = f64::from(m.shape().config.layers);
    let mut mixed = vec![512u64; 32];
    mixed.extend([8192u64; 32]);
    let want_attn =
        0.5 * m.decode_attention_ms(64, 512.0) + 0.5 * m.decode_attention_ms(64, 8192.0);
    let uniform = decode_each(&m, &[8192u64; 64]);
    let got = decode_each(&m, &mixed);
    let want = uniform + layers * (want_attn - m.decode_attention_ms(64, 8192.0));
    assert!(
        close(got, want, 1e-9),
        "mixed batch {got} ms, want {want} ms"
    );
    // The mean context (4352) would be timed differently.
    let at_mean =
        uniform + layers * (m.decode_attention_ms(64, 4352.0) - m.decode_attention_ms(64, 8192.0));
    assert!(
        !close(got, at_mean, 0.005),
        "{got} vs mean-context {at_mean}"
    );
    // A uniform batch is the same either way.
    assert!(close(uniform, decode(&m, 64, 8192), 1e-9));
}

fn close(got: f64, want: f64, tol: f64) -> bool {
    (got - want).abs() <= want * tol
}

#[test]
fn reproduces_the_calibration_table() {
    // (shape, prefill 1k, prefill 4k, decode B=1 ctx 2k, B=32, B=128), ms.
    let table = [
        ("llama-3.1-8b-tp1", 24.0, 101.0, 9.6, 11.8, 20.8),
        ("qwen3-32b-tp1", 105.0, 420.0, 29.0, 39.0, 54.0),
        ("qwen3-32b-tp2", 53.0, 224.0, 17.0, 21.0, 31.0),
        // B=1 here is 30 ms in the table, slower than B=32: an elementwise
        // launch spike at M=1..2 (0.16 ms vs 0.035 ms at M=64) that the model
        // removes when it makes tables monotone; checked separately below.
        ("llama-3.1-70b-tp4", 59.0, 244.0, f64::NAN, 25.0, 28.0),
    ];
    for (name, p1, p4, d1, d32, d128) in table {
        let m = model(name);
        let got = [
            prefill(&m, 1024),
            prefill(&m, 4096),
            decode(&m, 1, 2048),
            decode(&m, 32, 2048),
            decode(&m, 128, 2048),
        ];
        // Large GEMMs repeat within ~5% between runs; small kernels are
        // noisier, so decode steps get a wider band.
        for (i, (g, w)) in got.iter().zip([p1, p4, d1, d32, d128]).enumerate() {
            if w.is_nan() {
                continue;
            }
            let tol = if i < 2 { 0.08 } else { 0.12 };
            assert!(
                close(*g, w, tol),
                "{name}: {g:.1} ms vs calibration {w} ms ({got:?})"
            );
        }
        assert!(
            got[2] <= got[3] && got[3] <= got[4],
            "{name}: decode not monotone in batch {got:?}"
        );
    }
}

#[test]
fn monotone_and_extrapolates_by_work() {
    let m = model("qwen3-32b-tp2");
    let mut last = 0.0;
    for n in [1, 16, 100, 512, 1000, 3000, 8192, 16384, 32768] {
        let t = prefill(&m, n);
        assert!(t >= last, "prefill of {n} tokens got faster: {t} < {last}");
        last = t;
    }
    assert!(prefill(&m, 32768) > 1.9 * prefill(&m, 16384));
    // Cached context makes new tokens dearer, never cheaper.
    assert!(m.prefill_attention_ms(6000, 1200) > m.prefill_attention_ms(0, 1200));
    // Beyond the decode grid, longer contexts cost more.
    assert!(m.decode_attention_ms(64, 20000.0) > m.decode_attention_ms(64, 8192.0));
}

#[test]
fn tensor_parallel_adds_allreduce_and_kv_bytes_match() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../testdata/calibration/h100_ops.json"
    ))
    .expect("read");
    let cal = Calibration::from_json(&text).expect("parses");
    let tp2 = CostModel::new(
        cal.shape("qwen3-32b-tp2").expect("shape"),
        CostParams::default(),
    )
    .expect("model");
    assert!(tp2.allreduce_ms(4096) > 0.0);
    let tp1 = CostModel::new(
        cal.shape("qwen3-32b-tp1").expect("shape"),
        CostParams::default(),
    )
    .expect("model");
    assert_eq!(tp1.allreduce_ms(4096), 0.0);
    assert_eq!(tp2.kv_bytes_per_token(), 262_144.0);
    assert!(cal.shape("no-such-model").is_err());
}
