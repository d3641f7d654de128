//! Whether a folder handed to `evidock ingest` is a camera's card.
//!
//! Everything `ingest` reads becomes permanent evidence, so a folder must show a sign of a
//! camera before it is read: the simulator's identity, an ID file a device profile names, a
//! file named as a profile's pattern says, or the `DCIM`/`RECORD` layout of a camera card.
//! Pseudo-filesystems (`/proc`, `/sys`, `/dev` and their kin) are refused always, even with
//! `--force`: their "files" are the kernel's, endless or changing while read.

use super::profile::Profile;
use std::path::Path;

/// What made a folder look like a camera's card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sign {
    /// A simulated camera's identity file.
    Simulator,
    /// The ID file a device profile names (e.g. `ZFYINFO.TXT`).
    IdFile(String),
    /// A file whose name matches a device profile's pattern.
    FileName { profile: String, file: String },
    /// A camera card's folder at the top (`DCIM`, `RECORD`).
    Layout(String),
}

impl std::fmt::Display for Sign {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Sign::Simulator => f.write_str("a simulated camera's identity"),
            Sign::IdFile(n) => write!(f, "its ID file {n}"),
            Sign::FileName { profile, file } => {
                write!(
                    f,
                    "{file}, named as device profile {profile:?} names recordings"
                )
            }
            Sign::Layout(d) => write!(f, "a camera card's {d} folder"),
        }
    }
}

/// How many directory entries are looked at for a file-name sign: a card's first folders
/// show it at once, and a huge folder that is no card must not be walked whole to say so.
const LOOK_AT: usize = 4096;

/// Top-level folders of a camera card.
const LAYOUT: [&str; 2] = ["DCIM", "RECORD"];

/// The pseudo-filesystem `path` is on, by name, if it is one (statfs magic, and the mount
/// points the kernel's own live at, for a `/dev` that is a plain tmpfs).
#[allow(unsafe_code)]
pub fn pseudo_filesystem(path: &Path) -> Option<&'static str> {
    for (root, name) in [("/proc", "proc"), ("/sys", "sysfs"), ("/dev", "devtmpfs")] {
        if path.starts_with(root) {
            return Some(name);
        }
    }
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).ok()?;
    // SAFETY: statfs is plain old data; all zeroes is a valid value for it.
    let mut s: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated path and `s` a statfs the call fills.
    if unsafe { libc::statfs(c.as_ptr(), &mut s) } != 0 {
        return None;
    }
    // Magic numbers from linux/magic.h.
    #[allow(clippy::unnecessary_cast)]
    let name = match s.f_type as i64 {
        0x9fa0 => "proc",
        0x6265_6572 => "sysfs",
        0x1cd1 => "devpts",
        0x6462_6720 => "debugfs",
        0x7472_6163 => "tracefs",
        0x7363_6673 => "securityfs",
        0x0027_e0eb | 0x6367_7270 => "cgroup",
        0xcafe_4a11 => "bpf",
        0x6265_6570 => "configfs",
        0xde5e_81e4 => "efivarfs",
        0x6165_676c => "pstore",
        0x6573_5543 => "fusectl",
        0x4249_4e4d => "binfmt_misc",
        0x1980_0202 => "mqueue",
        0x6e73_6673 => "nsfs",
        0x9584_58f6 => "hugetlbfs",
        0x0187 => "autofs",
        0xf97c_ff8c => "selinuxfs",
        0x6759_6969 => "rpc_pipefs",
        0x6e66_7364 => "nfsd",
        _ => return None,
    };
    Some(name)
}

/// Why `dir` is refused whole, if it is on one of the kernel's filesystems: the one message of
/// `ingest` (before anything is recorded) and of the walk of any volume (a bind in the watch
/// folder).
pub fn on_kernel_filesystem(dir: &Path) -> Option<String> {
    pseudo_filesystem(dir).map(|fs| {
        format!(
            "{} is on {fs}, a filesystem of the kernel, not a camera card: nothing read",
            dir.display()
        )
    })
}

/// The first sign that `dir` is a camera's card, if any.
pub fn recognise(dir: &Path, profiles: &[Profile]) -> Option<Sign> {
    if super::sim::firmware_of_volume(dir).is_some() {
        return Some(Sign::Simulator);
    }
    let vol = super::volume::Volume::new(dir.to_path_buf(), None);
    for p in profiles {
        // Through the volume (never a link), as the driver reads it.
        if vol
            .read_small(p.id_file.as_bytes(), super::mass_storage::ID_FILE_LIMIT)
            .is_ok()
        {
            return Some(Sign::IdFile(p.id_file.clone()));
        }
    }
    let mut looked = 0usize;
    let mut stack = vec![(dir.to_path_buf(), 0u8)];
    while let Some((d, depth)) = stack.pop() {
        let Ok(entries) = fs_err::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            looked += 1;
            if looked > LOOK_AT {
                return None;
            }
            let name = e.file_name();
            let Ok(kind) = e.file_type() else { continue };
            if kind.is_dir() {
                if depth == 0 {
                    let upper = name.to_string_lossy().to_ascii_uppercase();
                    if let Some(l) = LAYOUT.iter().find(|l| **l == upper) {
                        return Some(Sign::Layout((*l).to_string()));
                    }
                }
                if depth < 3 {
                    stack.push((e.path(), depth + 1));
                }
            } else if kind.is_file() {
                let bytes = name.as_encoded_bytes();
                if let Some(p) = profiles.iter().find(|p| p.parse_name(bytes).time.is_some()) {
                    return Some(Sign::FileName {
                        profile: p.name.clone(),
                        file: name.to_string_lossy().into_owned(),
                    });
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profiles() -> Vec<Profile> {
        crate::config::Settings::embedded().unwrap().profiles
    }

    #[test]
    fn the_kernels_filesystems_are_pseudo() {
        assert_eq!(pseudo_filesystem(Path::new("/proc/self")), Some("proc"));
        assert_eq!(pseudo_filesystem(Path::new("/sys/kernel")), Some("sysfs"));
        assert_eq!(pseudo_filesystem(Path::new("/dev")), Some("devtmpfs"));
        let t = tempfile::tempdir().unwrap();
        assert_eq!(pseudo_filesystem(t.path()), None);
    }

    #[test]
    fn a_plain_folder_is_no_card_and_a_card_shows_its_sign() {
        let t = tempfile::tempdir().unwrap();
        fs_err::write(t.path().join("notes.txt"), b"x").unwrap();
        fs_err::create_dir(t.path().join("photos")).unwrap();
        assert_eq!(recognise(t.path(), &profiles()), None);

        fs_err::create_dir(t.path().join("Dcim")).unwrap();
        assert_eq!(
            recognise(t.path(), &profiles()),
            Some(Sign::Layout("DCIM".into()))
        );

        let named = tempfile::tempdir().unwrap();
        fs_err::create_dir_all(named.path().join("a/b")).unwrap();
        fs_err::write(
            named
                .path()
                .join("a/b/ZFY0001_350201_20240301093000_0001.MP4"),
            b"x",
        )
        .unwrap();
        assert!(matches!(
            recognise(named.path(), &profiles()),
            Some(Sign::FileName { .. })
        ));

        let id = tempfile::tempdir().unwrap();
        let id_file = profiles()[0].id_file.clone();
        fs_err::write(id.path().join(&id_file), b"serial=ZFY0001\n").unwrap();
        assert_eq!(
            recognise(id.path(), &profiles()),
            Some(Sign::IdFile(id_file))
        );
    }

    #[test]
    fn an_id_file_that_is_a_link_is_no_sign() {
        let t = tempfile::tempdir().unwrap();
        let id_file = profiles()[0].id_file.clone();
        std::os::unix::fs::symlink("/etc/hostname", t.path().join(&id_file)).unwrap();
        assert_eq!(recognise(t.path(), &profiles()), None);
    }
}
