//! Unit tests of the event envelope (event.rs): its canonical round trip, strict parsing, kinds
//! and offsets; apart so the envelope reads without them.

use super::payload::ReleasedPayload;
use super::*;

fn sample() -> CustodyEvent {
    let st = StationId::new("dock-01").unwrap();
    let se = SessionId::new("s1").unwrap();
    NewEvent::new(
        Actor::station(&st),
        Subject::Session(se.clone()),
        "released/s1",
        &ReleasedPayload {
            session: se,
            files: 3,
            bytes: 1234,
            failed: 0,
            skipped: 1,
        },
    )
    .unwrap()
    .into_event(
        st,
        7,
        "2026-11-28T09:10:55.123Z".parse().unwrap(),
        "+08:00".parse().unwrap(),
    )
}

#[test]
fn canonical_round_trip() {
    let ev = sample();
    let bytes = ev.to_canonical().unwrap();
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(text.starts_with(r#"{"actor":{"id":"dock-01","role":"station"},"key":"released/s1","kind":"released","offset":"+08:00","payload":{"#));
    assert!(text.ends_with(r#""time":"2026-11-28T09:10:55.123Z","v":1}"#));
    let back = CustodyEvent::parse(&bytes).unwrap();
    assert_eq!(back, ev);
    back.check_payload().unwrap();
    assert_eq!(back.payload::<ReleasedPayload>().unwrap().files, 3);
    assert_eq!(
        back.local_time().to_rfc3339(),
        "2026-11-28T17:10:55.123+08:00"
    );
}

#[test]
fn strictness() {
    let ev = sample();
    let bytes = ev.to_canonical().unwrap();
    let pretty = serde_json::to_vec_pretty(&ev).unwrap();
    assert!(matches!(
        CustodyEvent::parse(&pretty),
        Err(EventError::NotCanonical)
    ));
    let mut v: Value = serde_json::from_slice(&bytes).unwrap();
    v["extra"] = Value::from(1);
    let extra = canonical::canonical_value(&v).unwrap();
    assert!(matches!(
        CustodyEvent::parse(&extra),
        Err(EventError::Malformed(_))
    ));
    let mut v: Value = serde_json::from_slice(&bytes).unwrap();
    v["v"] = Value::from(2);
    assert!(matches!(
        CustodyEvent::parse(&canonical::canonical_value(&v).unwrap()),
        Err(EventError::Version(2))
    ));
    let mut v: Value = serde_json::from_slice(&bytes).unwrap();
    v["time"] = Value::from("2026-11-28T17:10:55.123+08:00");
    assert!(CustodyEvent::parse(&canonical::canonical_value(&v).unwrap()).is_err());
    let mut v: Value = serde_json::from_slice(&bytes).unwrap();
    v["kind"] = Value::from("from-the-future");
    let fut = CustodyEvent::parse(&canonical::canonical_value(&v).unwrap()).unwrap();
    assert_eq!(fut.kind, EventKind::Other("from-the-future".into()));
    assert!(fut.check_payload().is_ok());
    assert!(fut.payload::<ReleasedPayload>().is_err());
}

#[test]
fn kinds_round_trip() {
    for k in EventKind::KNOWN {
        assert_eq!(EventKind::parse(k.as_str()), k);
    }
}

#[test]
fn offsets() {
    for s in ["+08:00", "-05:30", "+00:00"] {
        assert_eq!(s.parse::<UtcOffset>().unwrap().to_string(), s);
    }
    for s in ["08:00", "+8:00", "+15:00", "-00:00", "+08:60", "+0800"] {
        assert!(s.parse::<UtcOffset>().is_err(), "{s}");
    }
}
