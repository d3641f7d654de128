//! `evidock simulate camera`: make a simulated ZFY camera, for the demo and for trying a
//! station without hardware. Dock it by moving its card under the mount root.

use super::Ctx;
use crate::device::sim::{self, Firmware, SimContent, SimSpec};
use crate::exit;
use anyhow::Context as _;
use chrono::{Duration, NaiveDateTime};
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum SimulateCmd {
    /// Create a simulated camera in DIR (DIR/firmware.toml and its card DIR/card).
    Camera {
        dir: PathBuf,
        #[arg(long, default_value = "ZFY0001")]
        serial: String,
        /// The camera's 警号.
        #[arg(long, default_value = "350201")]
        officer: String,
        #[arg(long, default_value = "张三")]
        user_name: String,
        #[arg(long, default_value = "350500000001")]
        unit_number: String,
        #[arg(long, default_value = "应急管理局执法大队")]
        unit_name: String,
        #[arg(long, default_value = "000000")]
        password: String,
        /// The camera's clock now, `YYYYMMDDhhmmss` (e.g. 20000101000000 after a dead battery);
        /// default: the station's local time.
        #[arg(long)]
        clock: Option<String>,
        /// How fast its clock runs off, parts per million.
        #[arg(long, default_value_t = 0)]
        drift_ppm: i64,
        /// Card read speed, bytes per second (0 = as fast as the disk).
        #[arg(long, default_value_t = 0)]
        rate: u64,
        /// Put these files on the card as recordings (e.g. clips made with ffmpeg).
        #[arg(long = "add", value_name = "FILE")]
        add: Vec<PathBuf>,
        /// Also this many generated files of --size bytes.
        #[arg(long, default_value_t = 0)]
        generate: u32,
        #[arg(long, default_value_t = 1 << 20)]
        size: u64,
    },
}

pub fn run(ctx: &Ctx, cmd: SimulateCmd) -> anyhow::Result<u8> {
    let SimulateCmd::Camera {
        dir,
        serial,
        officer,
        user_name,
        unit_number,
        unit_name,
        password,
        clock,
        drift_ppm,
        rate,
        add,
        generate,
        size,
    } = cmd;
    let now = chrono::Utc::now();
    let local_now = now.with_timezone(&chrono::Local).naive_local();
    let camera_now: NaiveDateTime = match &clock {
        Some(c) => crate::device::zfy::parse_time(c)?,
        None => local_now,
    };
    let firmware = Firmware {
        serial: serial.clone(),
        officer: officer.clone(),
        user_name,
        unit_number,
        unit_name,
        password,
        clock: crate::device::zfy::format_time(camera_now),
        clock_set_at: now,
        drift_ppm,
        battery: 76,
        read_bytes_per_sec: rate,
    };
    // Recordings made over the last hours, as the camera's clock stamped them.
    let total = add.len() as u32 + generate;
    let mut files = Vec::new();
    for (i, f) in add.iter().enumerate() {
        let at = camera_now - Duration::minutes(10 * i64::from(total - i as u32));
        let ext = f
            .extension()
            .map(|e| e.to_string_lossy().to_uppercase())
            .unwrap_or_else(|| "BIN".into());
        let name = sim::recording_name(&serial, &officer, at, i as u32 + 1, &ext);
        files.push((name.into_bytes(), SimContent::CopyOf(f.clone())));
    }
    for j in 0..generate {
        let i = add.len() as u32 + j;
        let at = camera_now - Duration::minutes(10 * i64::from(total - i));
        let name = sim::recording_name(&serial, &officer, at, i + 1, "MP4");
        files.push((
            name.into_bytes(),
            SimContent::Generated {
                size,
                seed: u64::from(i) + 1,
            },
        ));
    }
    let card = sim::create(&dir, &SimSpec { firmware, files })
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("creating a simulated camera in {}", dir.display()))?;
    if ctx.json {
        ctx.print_json(&serde_json::json!({"card": card, "firmware": dir.join("firmware.toml")}))?;
    } else {
        eprintln!(
            "simulated camera {serial} ({} file(s)) — dock it: mv {} <mount root>/{serial}",
            total,
            card.display()
        );
    }
    Ok(exit::OK)
}
