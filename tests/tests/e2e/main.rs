//! Every end-to-end test of evidock, in one test binary.
//!
//! One binary, not one per file: each test binary links the whole station (FFmpeg's bindings,
//! the object store, the TLS stack), and twenty of them filled a CI disk and spent minutes of
//! its two cores in the linker. Tests of different files share one process, so shared rigs
//! ([`evidock_tests::ceph::CephRig::shared`]) start once; a test that stops the gateway holds
//! the rig alone (`gateway().write()`), and each test uses its own bucket and directories.
//!
//! Run one file's tests with its module as the filter, e.g.
//! `cargo test -p evidock-tests --test e2e crash_points::`.

mod acquire;
mod attacks;
mod cases;
mod crash;
mod crash_points;
mod custody;
mod dir_fsync;
mod dock;
mod exit_codes;
mod export;
mod group_commit;
mod history;
mod keys;
mod s3control;
mod status;
mod status_hardening;
mod store;
mod timestamp;
mod transcode;
mod wipe;
