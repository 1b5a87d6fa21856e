//! Any bytes as one BGP message, under every decoding context: decoding never panics,
//! and what decodes re-encodes to something that decodes again.
#![no_main]

use bgp::wire::{DecodeCtx, EncodeCtx, Message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for as4 in [true, false] {
        for ibgp in [true, false] {
            let ctx = DecodeCtx { as4, ibgp };
            if let Ok(d) = Message::decode(data, &ctx) {
                let bytes = d.value.to_bytes(&EncodeCtx { as4 });
                // Our own encoding of a decoded message is a message again (the
                // attributes RFC 7606 discarded are gone, so equality is not asked).
                let again = Message::decode(&bytes, &ctx);
                assert!(
                    again.is_ok(),
                    "re-encoded message does not decode: {again:?}"
                );
            }
        }
    }
});
