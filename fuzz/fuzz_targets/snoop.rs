//! Any bytes as an Ethernet frame seen by the ARP/ND snooper: never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = fib::snoop::binding(data);
});
