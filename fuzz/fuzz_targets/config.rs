//! Fuzzes scheduler configs (llm-d's YAML `EndpointPickerConfig`): no input
//! may panic or abort; a config either loads or is refused with an error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llmd_sched::Scheduler;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = Scheduler::from_config_str(text);
});
