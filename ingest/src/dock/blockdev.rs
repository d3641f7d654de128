//! From a USB device to a read-only mounted card.
//!
//! The USB device's sysfs directory leads to its SCSI disk (`…/host*/target*/*/block/sdX`).
//! Real kernels race: the disk appears before its partition table is scanned, and opening
//! `/dev/sdX` right after it appears can fail with ENXIO. So: wait for the disk, read sector 0 to
//! decide whole-disk filesystem or partition table (and wait for the partitions the table
//! promises), retry opens for a few seconds, set every block device read-only (`BLKROSET`), and
//! mount read-only (`ro,nosuid,nodev,noexec`). A read-only mount that cannot be obtained is an
//! error: there is no read-write fallback. With the system's automounter instead, the block
//! devices are still set read-only, every filesystem of the card must be mounted read-only by
//! the system (or the card is refused, naming the one that is not), and evidock reads through
//! its own `ro,nosuid,nodev,noexec` bind of each.

use crate::device::volume::{CardSource, Volume};
use std::io::Read as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long to wait for the disk and its partitions after the camera switched to mass storage.
const APPEAR: Duration = Duration::from_secs(20);

/// What sector 0 says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// A filesystem on the whole disk (no partition table), of this type.
    WholeDisk(FsType),
    /// An MBR partition table with at least one partition in use.
    Partitioned,
    /// Neither: no filesystem evidock can read.
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsType {
    Vfat,
    Exfat,
}

impl FsType {
    pub fn name(self) -> &'static str {
        match self {
            FsType::Vfat => "vfat",
            FsType::Exfat => "exfat",
        }
    }

    /// Mount options: Chinese long names as UTF-8, GBK short names (codepage 936).
    pub fn options(self) -> &'static std::ffi::CStr {
        match self {
            FsType::Vfat => c"iocharset=utf8,codepage=936,shortname=mixed",
            FsType::Exfat => c"iocharset=utf8",
        }
    }
}

/// The filesystem a boot sector announces, if it is one evidock reads.
pub fn fs_type(sector: &[u8]) -> Option<FsType> {
    if sector.len() < 512 {
        return None;
    }
    if &sector[3..11] == b"EXFAT   " {
        return Some(FsType::Exfat);
    }
    let jump = sector[0] == 0xEB || sector[0] == 0xE9;
    let fat =
        &sector[82..87] == b"FAT32" || &sector[54..59] == b"FAT16" || &sector[54..59] == b"FAT12";
    (jump && fat && sector[510] == 0x55 && sector[511] == 0xAA).then_some(FsType::Vfat)
}

/// Decide the layout from sector 0.
pub fn layout(sector0: &[u8]) -> Layout {
    if let Some(t) = fs_type(sector0) {
        return Layout::WholeDisk(t);
    }
    if sector0.len() >= 512 && sector0[510] == 0x55 && sector0[511] == 0xAA {
        let any = (0..4).any(|i| sector0[446 + 16 * i + 4] != 0);
        if any {
            return Layout::Partitioned;
        }
    }
    Layout::Unknown
}

/// The disks (`sdX`) below a USB device's sysfs directory.
pub fn disks_of(usb_sysfs: &Path) -> Vec<String> {
    let mut out = Vec::new();
    find_block(usb_sysfs, 0, &mut out);
    out.sort();
    out.dedup();
    out
}

fn find_block(dir: &Path, depth: usize, out: &mut Vec<String>) {
    if depth > 8 {
        return;
    }
    let Ok(rd) = fs_err::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        // Stay inside this device: sysfs links point everywhere else.
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_symlink() {
            continue;
        }
        if name == "block" {
            if let Ok(b) = fs_err::read_dir(e.path()) {
                out.extend(
                    b.flatten()
                        .map(|d| d.file_name().to_string_lossy().into_owned()),
                );
            }
        } else if ft.is_dir() {
            find_block(&e.path(), depth + 1, out);
        }
    }
}

/// Partitions of `disk` the kernel knows (`sdb1`, `sdb2`, …).
pub fn partitions_of(disk: &str) -> Vec<String> {
    let mut out: Vec<String> = fs_err::read_dir(format!("/sys/block/{disk}"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(disk) && n.len() > disk.len())
                .collect()
        })
        .unwrap_or_default();
    out.sort_by_key(|p| {
        p[disk.len()..]
            .trim_start_matches('p')
            .parse::<u32>()
            .unwrap_or(0)
    });
    out
}

/// Open a block device, retrying while the kernel still answers ENXIO/ENOMEDIUM.
fn open_retrying(dev: &Path) -> Result<std::fs::File, String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match std::fs::File::open(dev) {
            Ok(f) => return Ok(f),
            Err(e)
                if Instant::now() < deadline
                    && matches!(
                        e.raw_os_error(),
                        Some(libc::ENXIO) | Some(libc::ENOMEDIUM) | Some(libc::ENOENT)
                    ) =>
            {
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => return Err(format!("cannot open {}: {e}", dev.display())),
        }
    }
}

fn read_sector0(dev: &Path) -> Result<Vec<u8>, String> {
    let mut f = open_retrying(dev)?;
    let mut b = vec![0u8; 512];
    f.read_exact(&mut b)
        .map_err(|e| format!("cannot read sector 0 of {}: {e}", dev.display()))?;
    Ok(b)
}

/// Set a block device read-only in the kernel, so nothing — not even a buggy mount — can write.
fn set_read_only(dev: &Path) -> Result<(), String> {
    let f = open_retrying(dev)?;
    hw::blkroset(&f).map_err(|e| format!("cannot set {} read-only (BLKROSET): {e}", dev.display()))
}

/// The one place evidock talks to the kernel with a raw ioctl.
#[allow(unsafe_code)]
mod hw {
    use std::os::fd::AsRawFd as _;

    /// `BLKROSET` from <linux/fs.h>: `_IO(0x12, 93)`.
    const BLKROSET: libc::c_ulong = 0x125d;

    pub fn blkroset(f: &std::fs::File) -> std::io::Result<()> {
        let one: libc::c_int = 1;
        // SAFETY: BLKROSET reads one `int` through the pointer; `one` lives for the call and the
        // descriptor is an open block device owned by `f`.
        let rc = unsafe { libc::ioctl(f.as_raw_fd(), BLKROSET, &one as *const libc::c_int) };
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }
}

/// A mount of a card's filesystem made by the system's automounter.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SystemMount {
    point: PathBuf,
    /// The folder of the filesystem mounted there (`/` for the whole of it).
    root: String,
    /// The per-mount options (`ro`, `nosuid`, …).
    options: Vec<String>,
    /// The filesystem's own options: `rw` here means some mount of it can write the card.
    super_options: Vec<String>,
}

impl SystemMount {
    fn read_only(&self) -> bool {
        let ro = |o: &[String]| o.iter().any(|o| o == "ro");
        ro(&self.options) && ro(&self.super_options)
    }
}

/// Every mount of `/dev/<dev_name>` in the mount namespace `mountinfo` describes.
fn mounts_of(mountinfo: &str, dev_name: &str) -> Vec<SystemMount> {
    let source = format!("/dev/{dev_name}");
    let list = |o: &str| o.split(',').map(str::to_string).collect();
    mountinfo
        .lines()
        .filter_map(|line| {
            // id parent major:minor root mountpoint options ... - fstype source superoptions
            let (left, right) = line.split_once(" - ")?;
            let f: Vec<&str> = left.split(' ').collect();
            let r: Vec<&str> = right.split(' ').collect();
            (f.len() >= 6 && r.len() >= 3 && r[1] == source).then(|| SystemMount {
                point: PathBuf::from(unescape(f[4])),
                root: unescape(f[3]),
                options: list(f[5]),
                super_options: list(r[2]),
            })
        })
        .collect()
}

/// The system's mounts of every filesystem in `filesystems`, once all are there; `Err` names
/// one that is mounted read-write anywhere (that marks a FAT card dirty) or only in part,
/// `Ok(None)` while some are still missing.
fn system_mounts(
    mountinfo: &str,
    filesystems: &[(String, FsType)],
) -> Result<Option<Vec<SystemMount>>, String> {
    let mut out = Vec::new();
    for (dev, _) in filesystems {
        let all = mounts_of(mountinfo, dev);
        if all.is_empty() {
            return Ok(None);
        }
        if let Some(m) = all.iter().find(|m| !m.read_only()) {
            return Err(format!(
                "/dev/{dev} was mounted read-write by the system at {} (that marks a FAT card dirty): refusing to read; configure the automounter to mount cameras read-only",
                m.point.display()
            ));
        }
        let Some(whole) = all.iter().find(|m| m.root == "/") else {
            return Err(format!(
                "/dev/{dev} is mounted by the system only in part ({} of it at {}): refusing to read part of a card",
                all[0].root,
                all[0].point.display()
            ));
        };
        out.push(whole.clone());
    }
    Ok(Some(out))
}

/// Bind `source` at `target` and make the bind read-only, nosuid, nodev and noexec (per-mount
/// flags: the automounter's own mount may lack some; evidock reads only through its bind).
fn bind_read_only(source: &Path, target: &Path) -> Result<(), String> {
    use rustix::mount::{MountFlags, mount_bind, mount_remount};
    fs_err::create_dir_all(target).map_err(|e| e.to_string())?;
    mount_bind(source, target).map_err(|e| {
        format!(
            "cannot bind {} at {}: {e}",
            source.display(),
            target.display()
        )
    })?;
    let flags = MountFlags::BIND
        | MountFlags::RDONLY
        | MountFlags::NOSUID
        | MountFlags::NODEV
        | MountFlags::NOEXEC;
    if let Err(e) = mount_remount(target, flags, "") {
        let _ = rustix::mount::unmount(target, rustix::mount::UnmountFlags::DETACH);
        return Err(format!(
            "cannot make the bind of {} at {} read-only, nosuid, nodev, noexec: {e}; not read",
            source.display(),
            target.display()
        ));
    }
    Ok(())
}

fn unescape(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// A USB camera's card, mounted read-only on `attach` and unmounted on drop.
#[derive(Debug)]
pub struct UsbCard {
    usb_sysfs: PathBuf,
    mount_point: PathBuf,
    automount: bool,
    mounted: Vec<PathBuf>,
}

impl UsbCard {
    pub fn new(usb_sysfs: PathBuf, mount_point: PathBuf, automount: bool) -> Self {
        UsbCard {
            usb_sysfs,
            mount_point,
            automount,
            mounted: Vec::new(),
        }
    }

    fn wait_disk(&self) -> Result<String, String> {
        let deadline = Instant::now() + APPEAR;
        loop {
            if let Some(d) = disks_of(&self.usb_sysfs).into_iter().next() {
                // A removable LUN without a medium has size 0: wait for the card.
                let size: u64 = fs_err::read_to_string(format!("/sys/block/{d}/size"))
                    .ok()
                    .and_then(|s| s.trim().parse().ok())
                    .unwrap_or(0);
                if size > 0 {
                    return Ok(d);
                }
                // The camera inserted its medium into a reader the kernel already knows;
                // the kernel reads the new capacity only when the disk is opened (udev's
                // blkid does that on a media-change event; a station without udev does
                // not). A read-only, non-blocking open that fails is as good as none.
                let _probe = std::fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_NONBLOCK)
                    .open(format!("/dev/{d}"));
            }
            if !self.usb_sysfs.exists() {
                return Err("the camera was unplugged before its card appeared".into());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "no card appeared under {} within {} s of switching to mass storage",
                    self.usb_sysfs.display(),
                    APPEAR.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The filesystems to mount: (device name, type).
    fn filesystems(&self, disk: &str) -> Result<Vec<(String, FsType)>, String> {
        let dev = PathBuf::from(format!("/dev/{disk}"));
        match layout(&read_sector0(&dev)?) {
            Layout::WholeDisk(t) => Ok(vec![(disk.to_string(), t)]),
            Layout::Unknown => Err(format!(
                "/dev/{disk} holds neither a FAT/exFAT filesystem nor a partition table: not read"
            )),
            Layout::Partitioned => {
                // The table is there; the kernel may not have scanned it yet.
                let deadline = Instant::now() + Duration::from_secs(5);
                let mut parts = partitions_of(disk);
                while parts.is_empty() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(100));
                    parts = partitions_of(disk);
                }
                let mut out = Vec::new();
                for p in parts {
                    match read_sector0(Path::new(&format!("/dev/{p}"))).map(|s| fs_type(&s)) {
                        Ok(Some(t)) => out.push((p, t)),
                        Ok(None) => {
                            tracing::warn!(partition = %p, "partition holds no FAT/exFAT filesystem; not read")
                        }
                        Err(e) => {
                            tracing::warn!(partition = %p, error = %e, "partition unreadable")
                        }
                    }
                }
                if out.is_empty() {
                    return Err(format!("no FAT/exFAT partition on /dev/{disk}: not read"));
                }
                Ok(out)
            }
        }
    }

    fn mount_ro(&mut self, dev: &str, fs: FsType, target: &Path) -> Result<(), String> {
        use rustix::mount::{MountFlags, mount};
        fs_err::create_dir_all(target).map_err(|e| e.to_string())?;
        let source = PathBuf::from(format!("/dev/{dev}"));
        let flags =
            MountFlags::RDONLY | MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC;
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match mount(&source, target, fs.name(), flags, fs.options()) {
                Ok(()) => break,
                Err(e) if e == rustix::io::Errno::NXIO && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => {
                    return Err(format!(
                        "cannot mount /dev/{dev} ({}) read-only at {}: {e}; not falling back to read-write",
                        fs.name(),
                        target.display()
                    ));
                }
            }
        }
        self.mounted.push(target.to_path_buf());
        Ok(())
    }
}

impl CardSource for UsbCard {
    fn attach(&mut self) -> Result<Volume, String> {
        let disk = self.wait_disk()?;
        // The disk read-only in the kernel at once, before its partitions are waited for (an
        // automounter may be quicker than that wait), then every partition before anything
        // mounts them; a system mount that was quicker still and read-write is refused.
        set_read_only(Path::new(&format!("/dev/{disk}")))?;
        let filesystems = self.filesystems(&disk)?;
        for (dev, _) in &filesystems {
            set_read_only(Path::new(&format!("/dev/{dev}")))?;
        }
        if self.automount {
            // Every filesystem of the card, not the first one found: a partition the system
            // did not mount is named, never left out in silence.
            let deadline = Instant::now() + APPEAR;
            let mounts = loop {
                let info = fs_err::read_to_string("/proc/self/mountinfo")
                    .map_err(|e| format!("/proc/self/mountinfo: {e}"))?;
                if let Some(m) = system_mounts(&info, &filesystems)? {
                    break m;
                }
                if Instant::now() > deadline {
                    let missing: Vec<String> = filesystems
                        .iter()
                        .filter(|(d, _)| mounts_of(&info, d).is_empty())
                        .map(|(d, _)| format!("/dev/{d}"))
                        .collect();
                    return Err(format!(
                        "the system did not mount {} within {} s: refusing to read part of a card",
                        missing.join(", "),
                        APPEAR.as_secs()
                    ));
                }
                std::thread::sleep(Duration::from_millis(200));
            };
            let targets: Vec<PathBuf> = if mounts.len() == 1 {
                vec![self.mount_point.clone()]
            } else {
                (1..=mounts.len())
                    .map(|i| self.mount_point.join(format!("p{i}")))
                    .collect()
            };
            for (m, target) in mounts.iter().zip(&targets) {
                bind_read_only(&m.point, target)?;
                self.mounted.push(target.clone());
            }
            tracing::info!(disk = %disk, mount = %self.mount_point.display(), filesystems = mounts.len(), "card mounted by the system, bound read-only");
            return Ok(Volume::new(self.mount_point.clone(), None));
        }
        if let [(dev, fs)] = filesystems.as_slice() {
            let target = self.mount_point.clone();
            self.mount_ro(dev, *fs, &target)?;
        } else {
            // Several filesystems: each under p<N>/, so nothing on the card is left out.
            for (i, (dev, fs)) in filesystems.iter().enumerate() {
                let target = self.mount_point.join(format!("p{}", i + 1));
                self.mount_ro(dev, *fs, &target)?;
            }
        }
        tracing::info!(disk = %disk, mount = %self.mount_point.display(), filesystems = filesystems.len(), "card mounted read-only");
        Ok(Volume::new(self.mount_point.clone(), None))
    }

    fn present(&self) -> bool {
        self.usb_sysfs.exists()
    }
}

impl Drop for UsbCard {
    fn drop(&mut self) {
        for m in self.mounted.iter().rev() {
            let _ = rustix::mount::unmount(m, rustix::mount::UnmountFlags::DETACH);
            let _ = fs_err::remove_dir(m);
        }
        let _ = fs_err::remove_dir(&self.mount_point);
    }
}

#[cfg(test)]
mod tests;
