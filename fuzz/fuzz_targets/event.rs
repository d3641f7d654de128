//! Custody event parsing: any bytes give an event or an error, never a panic; whatever parses
//! re-encodes to exactly the same bytes (one encoding per event).
#![no_main]
use evidock_verify::canonical;
use evidock_verify::event::CustodyEvent;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let canonical = canonical::is_canonical(data);
    if let Ok(ev) = CustodyEvent::parse(data) {
        assert!(canonical);
        let _ = ev.check_payload();
        let again = ev.to_canonical().expect("a parsed event re-encodes");
        assert_eq!(again, data);
    }
});
