//! Trust files and PEM bundles: errors, never panics.
#![no_main]
use evidock_verify::trust::{Trust, pem_certificates};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = Trust::parse(s, std::path::Path::new("/nonexistent/trust.toml"));
    }
    let _ = pem_certificates(data);
});
