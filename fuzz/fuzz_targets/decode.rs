//! Fuzzes the KV-event decoder: no input may panic, and whatever decodes
//! must survive an encode/decode round trip in the newest layout.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llmd_kvindex::events::{decode_event_batch, encode_event_batch, EventLayout};

fuzz_target!(|data: &[u8]| {
    if let Ok(batch) = decode_event_batch(data) {
        let bytes = encode_event_batch(&batch, EventLayout::V0_33);
        let again = decode_event_batch(&bytes).expect("own encoding decodes");
        assert_eq!(again.events.len(), batch.events.len());
    }
});
