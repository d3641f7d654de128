//! RFC 3161 responses and tokens: any bytes give a token or an error, never a panic.
#![no_main]
use evidock_verify::timestamp::{self, Expectation, ImprintAlgorithm, TsaTrust};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let imprint = [0u8; 32];
    let expect = Expectation {
        algorithm: ImprintAlgorithm::Sha256,
        imprint: &imprint,
        nonce: None,
        policy: None,
    };
    let trust = TsaTrust::default();
    let _ = timestamp::check_response(data, &expect, &trust);
    let _ = timestamp::check_token(data, &expect, &trust);
});
