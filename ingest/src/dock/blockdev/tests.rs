use super::*;

fn fat32_boot() -> Vec<u8> {
    let mut s = vec![0u8; 512];
    s[0] = 0xEB;
    s[2] = 0x90;
    s[82..90].copy_from_slice(b"FAT32   ");
    s[510] = 0x55;
    s[511] = 0xAA;
    s
}

const MOUNTINFO: &str = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
95 22 8:17 / /media/op/CAM\\0401 ro,nosuid,nodev,relatime shared:50 - vfat /dev/sdb1 ro,fmask=0022
96 22 8:18 / /media/op/CAM2 rw,nosuid,nodev,relatime shared:51 - vfat /dev/sdb2 rw
";

#[test]
fn every_filesystem_of_the_card_must_be_mounted_read_only_by_the_system() {
    let one = [("sdb1".to_string(), FsType::Vfat)];
    let m = system_mounts(MOUNTINFO, &one).unwrap().unwrap();
    assert_eq!(m[0].point, PathBuf::from("/media/op/CAM 1"));
    let both = [
        ("sdb1".to_string(), FsType::Vfat),
        ("sdb2".to_string(), FsType::Vfat),
    ];
    let e = system_mounts(MOUNTINFO, &both).unwrap_err();
    assert!(e.contains("/dev/sdb2") && e.contains("read-write"), "{e}");
    let missing = [
        ("sdb1".to_string(), FsType::Vfat),
        ("sdb3".to_string(), FsType::Vfat),
    ];
    assert_eq!(system_mounts(MOUNTINFO, &missing).unwrap(), None);
}

/// One read-only mount is not enough: a second, read-write mount of the same filesystem
/// (the superblock says `rw`) writes to the card; a mount of a folder of it (root not `/`)
/// would leave the rest of the card out.
#[test]
fn a_read_only_mount_beside_a_read_write_one_or_of_a_folder_is_refused() {
    let one = [("sdb1".to_string(), FsType::Vfat)];
    let twice = "\
95 22 8:17 / /media/op/CAM1 ro,nosuid,nodev shared:50 - vfat /dev/sdb1 rw,fmask=0022
97 22 8:17 / /mnt/other rw,relatime shared:52 - vfat /dev/sdb1 rw,fmask=0022
";
    let e = system_mounts(twice, &one).unwrap_err();
    assert!(e.contains("/dev/sdb1") && e.contains("read-write"), "{e}");
    let folder = "\
95 22 8:17 /DCIM /media/op/DCIM ro,nosuid,nodev shared:50 - vfat /dev/sdb1 ro,fmask=0022
";
    let e = system_mounts(folder, &one).unwrap_err();
    assert!(e.contains("/dev/sdb1") && e.contains("/DCIM"), "{e}");
    // The whole filesystem's mount is the one bound, wherever it comes in mountinfo.
    let both = "\
95 22 8:17 /DCIM /media/op/DCIM ro,nosuid,nodev shared:50 - vfat /dev/sdb1 ro,fmask=0022
96 22 8:17 / /media/op/CAM1 ro,nosuid,nodev shared:51 - vfat /dev/sdb1 ro,fmask=0022
";
    let m = system_mounts(both, &one).unwrap().unwrap();
    assert_eq!(m[0].point, PathBuf::from("/media/op/CAM1"));
}

/// The bind evidock reads through is read-only, nosuid, nodev and noexec whatever the
/// automounter chose (needs CAP_SYS_ADMIN, as the dock does).
#[test]
fn the_bind_of_a_system_mount_is_read_only_nosuid_nodev_noexec() {
    use rustix::mount::{MountFlags, UnmountFlags, mount, unmount};
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("system");
    let dst = dir.path().join("evidock");
    fs_err::create_dir(&src).unwrap();
    if let Err(e) = mount(
        "tmpfs",
        &src,
        "tmpfs",
        MountFlags::empty(),
        Some(c"size=1m"),
    ) {
        assert_eq!(e, rustix::io::Errno::PERM, "{e}");
        eprintln!("skipped: mounting needs CAP_SYS_ADMIN");
        return;
    }
    fs_err::write(src.join("f"), b"x").unwrap();
    bind_read_only(&src, &dst).unwrap();
    let info = fs_err::read_to_string("/proc/self/mountinfo").unwrap();
    let line = info
        .lines()
        .find(|l| l.split(' ').nth(4) == Some(dst.to_str().unwrap()))
        .unwrap();
    let opts: Vec<&str> = line.split(' ').nth(5).unwrap().split(',').collect();
    for o in ["ro", "nosuid", "nodev", "noexec"] {
        assert!(opts.contains(&o), "{o} missing: {line}");
    }
    assert_eq!(fs_err::read(dst.join("f")).unwrap(), b"x");
    let w = fs_err::write(dst.join("g"), b"y").unwrap_err();
    assert_eq!(w.kind(), std::io::ErrorKind::ReadOnlyFilesystem, "{w}");
    unmount(&dst, UnmountFlags::DETACH).unwrap();
    unmount(&src, UnmountFlags::DETACH).unwrap();
}

#[test]
fn layouts() {
    assert_eq!(layout(&fat32_boot()), Layout::WholeDisk(FsType::Vfat));
    let mut ex = vec![0u8; 512];
    ex[0] = 0xEB;
    ex[3..11].copy_from_slice(b"EXFAT   ");
    ex[510] = 0x55;
    ex[511] = 0xAA;
    assert_eq!(layout(&ex), Layout::WholeDisk(FsType::Exfat));
    let mut mbr = vec![0u8; 512];
    mbr[446 + 4] = 0x0c;
    mbr[510] = 0x55;
    mbr[511] = 0xAA;
    assert_eq!(layout(&mbr), Layout::Partitioned);
    assert_eq!(layout(&[0u8; 512]), Layout::Unknown);
    assert_eq!(layout(&[0u8; 10]), Layout::Unknown);
}
