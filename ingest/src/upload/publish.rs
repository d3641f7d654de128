//! Publication of the custody log beside the evidence: segments of events, checkpoints, tokens
//! and the station key, each object written once.

use super::*;

impl Uploader {
    /// Publish the custody log up to its latest checkpoint: the events since the last
    /// publication as one segment, the checkpoints, the tokens and the station key. Every object
    /// is written once; a reader rebuilds the log by concatenating segments in order.
    pub async fn publish_log(&self) -> Result<u64, StoreError> {
        let st = self.station.clone();
        let (dir, sizes, key_line, fingerprint) = self.log.with(|l| {
            let v = l.signer().verifier().clone();
            (
                l.dir().to_path_buf(),
                l.checkpoint_sizes().unwrap_or_default(),
                format!("{v}\n"),
                v.fingerprint(),
            )
        });
        self.store
            .put_once(
                &layout::station_key(&st, &fingerprint),
                key_line.into_bytes().into(),
            )
            .await?;
        let first_key = fs_err::read(dir.join(loglayout::KEY_FILE)).map_err(|e| {
            self.local_err(format!("{}: {e}", dir.join(loglayout::KEY_FILE).display()))
        })?;
        self.store
            .put_once(&layout::log_key(&st), first_key.into())
            .await?;
        let mut published = self
            .journal
            .published(st.as_str())
            .map_err(|e| self.local_err(e.to_string()))?;
        for size in sizes {
            let cp_file = dir
                .join(loglayout::CHECKPOINTS_DIR)
                .join(loglayout::checkpoint_file(size));
            if size > published {
                let lines = read_lines(&dir.join(loglayout::EVENTS_FILE), published, size)
                    .map_err(|e| self.local_err(e))?;
                self.store
                    .put_once(&layout::log_segment(&st, published, size), lines.into())
                    .await?;
                evidock_store::crash_point!("publish.segment");
                let note = tokio::fs::read(&cp_file)
                    .await
                    .map_err(|e| StoreError::Local {
                        path: cp_file.clone(),
                        reason: e.to_string(),
                    })?;
                self.store
                    .put_once(&layout::checkpoint(&st, size), note.into())
                    .await?;
                published = size;
                self.journal
                    .set_published(st.as_str(), published)
                    .map_err(|e| self.local_err(e.to_string()))?;
                evidock_store::crash_point!("publish.recorded");
            }
            let tsr = dir
                .join(loglayout::TIMESTAMPS_DIR)
                .join(loglayout::timestamp_file(size));
            if let Ok(token) = tokio::fs::read(&tsr).await {
                self.store
                    .put_once(&layout::timestamp(&st, size), token.into())
                    .await?;
            }
        }
        Ok(published)
    }
}

/// Lines `from..to` (events) of the events file, each with its newline.
fn read_lines(events: &std::path::Path, from: u64, to: u64) -> Result<Vec<u8>, String> {
    use std::io::BufRead as _;
    let f = std::fs::File::open(events).map_err(|e| format!("{}: {e}", events.display()))?;
    let mut out = Vec::new();
    for (i, line) in std::io::BufReader::new(f).split(b'\n').enumerate() {
        let i = i as u64;
        if i >= to {
            break;
        }
        let line = line.map_err(|e| format!("{}: {e}", events.display()))?;
        if i >= from {
            out.extend_from_slice(&line);
            out.push(b'\n');
        }
    }
    Ok(out)
}
