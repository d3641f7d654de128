//! Start the tests' single-node Ceph RGW outside a test, for benchmarks and manual checks.
//!
//! Prints `endpoint=…`, `access_key=…`, `secret_key=…`, `region=…` on stdout, one per line,
//! then `ready`; stops the cluster when its stdin closes. `MEMSTORE_BYTES` sizes the OSD.
//!
//! ```sh
//! coproc RIG { MEMSTORE_BYTES=$((8<<30)) target/release/ceph-rig; }
//! ```

use evidock_tests::ceph::CephRig;
use std::io::{Read, Write};

fn main() -> anyhow::Result<()> {
    let mut rig = CephRig::start()?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "endpoint={}", rig.endpoint())?;
    writeln!(out, "access_key={}", rig.access_key())?;
    writeln!(out, "secret_key={}", rig.secret_key())?;
    writeln!(out, "region={}", rig.region())?;
    writeln!(out, "ready")?;
    out.flush()?;
    drop(out);
    // Wait for the caller to go away; any read result means that.
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    rig.stop();
    Ok(())
}
