//! Fuzzes the feed's ZMTP frame reader (what a publisher, or anything that
//! answers on its port, sends after the greeting): the READY command's
//! properties, then frames. No input may panic; every frame read is within
//! the limit, and a refused one ends the reading.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llmd_feed::zmq::wire::{parse_after_greeting, Limits};

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_message_bytes: 1024,
        max_frames: 16,
        ..Limits::default()
    };
    let r = parse_after_greeting(data, &limits);
    assert!(r.frames.iter().all(|&(_, len)| len <= 1024));
});
