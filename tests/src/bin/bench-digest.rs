//! Digest benchmark helper (docs/benchmarks.md): SM3 alone on one thread, as the yardstick for
//! "SHA-256 + SM3 together is no slower than SM3 alone".
//!
//! usage: bench-digest sm3 FILE
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use sm3::Digest as _;
use std::io::Read as _;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    assert_eq!(args[1], "sm3", "only `sm3` is measured here");
    let mut f = std::fs::File::open(&args[2]).unwrap();
    let mut h = sm3::Sm3::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    println!("{}  {}", hex::encode(h.finalize()), args[2]);
}
