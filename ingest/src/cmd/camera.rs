//! `evidock camera`: cameras shared between shifts.

use super::Ctx;
use crate::exit;
use clap::Subcommand;
use evidock_verify::event::payload::CameraAssignedPayload;
use evidock_verify::event::{Actor, NewEvent, Role, Subject, Timestamp};
use evidock_verify::id::{DeviceSerial, OfficerId};

#[derive(Debug, Subcommand)]
pub enum CameraCmd {
    /// Record who carries a camera from when (used when the camera's own 警号 is missing or
    /// stale). A custody event.
    Assign {
        /// The camera's device serial.
        serial: String,
        /// The officer: 执法证号 or 警号.
        officer: String,
        /// From when (RFC 3339, e.g. 2026-11-28T08:00:00+08:00). Default: now.
        #[arg(long)]
        from: Option<String>,
        /// Who records the assignment.
        #[arg(long, value_parser = super::person)]
        by: String,
    },
}

pub fn run(ctx: &Ctx, cmd: CameraCmd) -> anyhow::Result<u8> {
    match cmd {
        CameraCmd::Assign {
            serial,
            officer,
            from,
            by,
        } => {
            let device = DeviceSerial::new(serial)?;
            let officer = OfficerId::new(officer)?;
            let st = ctx.station()?;
            let from = match from {
                Some(f) => chrono::DateTime::parse_from_rfc3339(&f)
                    .map_err(|e| {
                        crate::exit::BadInput(format!(
                            "--from {f:?}: {e} (use RFC 3339 with an offset)"
                        ))
                    })?
                    .with_timezone(&chrono::Utc),
                None => st.clock.now(),
            };
            let from = Timestamp::from_datetime(from);
            let ev = NewEvent::new(
                Actor {
                    role: Role::Admin,
                    id: by,
                },
                Subject::Device(device.clone()),
                format!("camera-assigned/{device}/{from}"),
                &CameraAssignedPayload {
                    device: device.clone(),
                    officer: officer.clone(),
                    from,
                },
            )?;
            let a = st.log.append(ev)?;
            st.journal.add_assignment(&device, &officer, from.0)?;
            if ctx.json {
                ctx.print_json(&a.event)?;
            } else {
                eprintln!(
                    "camera {device} assigned to {officer} from {} (custody event #{})",
                    from.local(a.event.offset).format("%Y-%m-%d %H:%M:%S%:z"),
                    a.event.seq
                );
            }
        }
    }
    Ok(exit::OK)
}
