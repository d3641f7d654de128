//! Acquisition: pulling a docked camera's files read-only into the spool, hashing every byte
//! once, checking the spool copy from disk, and releasing the camera.
//!
//! | module | what |
//! | --- | --- |
//! | [`session`] | one camera session from identify to release, resumable |
//! | [`lock`] | one acquirer per station (`evidock dock` or `evidock ingest`) |
//! | [`copy`] | copying one file: one pass, shared buffers, durable offsets, re-read check |
//! | [`spool`] | the content-addressed spool |
//! | [`walk`] | listing a card without following links |
//! | [`times`] | correcting recording times for clock drift and resets |
//! | [`progress`] | live counters for progress bars and the status page |
//! | [`foreground`] | upload and transcode give way while cameras are copied |

pub mod copy;
pub mod direct;
pub mod foreground;
pub mod lock;
pub mod progress;
pub mod session;
pub mod spool;
pub mod times;
pub mod walk;
