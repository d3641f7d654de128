//! `evidock index`: the case index (`index.db`) is a cache of custody logs; rebuild it.

use super::Ctx;
use crate::exit;
use clap::Subcommand;
use evidock_store::objects::layout;
use evidock_verify::event::CustodyEvent;
use evidock_verify::id::StationId;

#[derive(Debug, Subcommand)]
pub enum IndexCmd {
    /// Forget the index and build it again from this station's custody log — and, with
    /// --from-store, from every station's log published in the evidence store (what a second
    /// station or a reviewer's workstation sees).
    Rebuild {
        #[arg(long)]
        from_store: bool,
    },
}

pub fn run(ctx: &Ctx, cmd: IndexCmd) -> anyhow::Result<u8> {
    let IndexCmd::Rebuild { from_store } = cmd;
    let st = ctx.station()?;
    let cases = st.cases()?;
    cases.index.clear()?;
    let mut report = vec![(st.id().to_string(), cases.index.catch_up(&st.log)?)];
    if from_store {
        let rt = st.runtime()?;
        for (station, events) in rt.block_on(published_logs(&st.store, st.id()))? {
            let n = cases.index.apply_all(&station, &events)?;
            report.push((station.to_string(), n));
        }
    }
    if ctx.json {
        ctx.print_json(&report)?;
    } else {
        for (station, n) in &report {
            eprintln!("station {station}: {n} custody event(s) applied");
        }
    }
    Ok(exit::OK)
}

/// Every other station's published custody events, segment by segment in order.
async fn published_logs(
    store: &evidock_store::objects::EvidenceStore,
    me: &StationId,
) -> anyhow::Result<Vec<(StationId, Vec<CustodyEvent>)>> {
    let mut stations = std::collections::BTreeSet::new();
    for key in store.list("stations/").await? {
        if let Some(name) = key
            .strip_prefix("stations/")
            .and_then(|k| k.split('/').next())
            && let Ok(id) = StationId::new(name)
            && id != *me
        {
            stations.insert(id);
        }
    }
    let mut out = Vec::new();
    for station in stations {
        let prefix = format!("{}/log/segments/", layout::station(&station));
        let mut segments: Vec<(u64, u64, String)> = store
            .list(&prefix)
            .await?
            .into_iter()
            .filter_map(|k| {
                let name = k.rsplit('/').next()?.to_string();
                let (from, to) = layout::segment_range(&name)?;
                Some((from, to, k))
            })
            .collect();
        segments.sort();
        let mut events = Vec::new();
        for (_, _, key) in segments {
            let bytes = store.get_bytes(&key).await?;
            for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                events.push(CustodyEvent::parse(line).map_err(|e| {
                    anyhow::anyhow!(
                        "{}: {e} (check it with evidock-verify)",
                        store.full_key(&key)
                    )
                })?);
            }
        }
        out.push((station, events));
    }
    Ok(out)
}
