//! Fuzzes the feed's HTTP/1.1 response reader (what a pod's `/metrics`
//! endpoint or an OTLP collector answers): no input may panic, and a body
//! that is read stays within the limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llmd_feed::http::read_response_bytes;

fuzz_target!(|data: &[u8]| {
    if let Ok(body) = read_response_bytes(data, 1024) {
        assert!(body.len() <= 1024);
    }
});
