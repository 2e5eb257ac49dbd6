//! Fuzzes the `/metrics` text parser (scraped from pods, untrusted): no
//! input may panic, and a page that parses gives values in range.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llmd_sched::metrics_text::parse_metrics_text;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(m) = parse_metrics_text(text, 7) {
        assert!((0.0..=1.0).contains(&m.kv_cache_usage));
        assert_eq!(m.updated_at_ns, 7);
    }
});
