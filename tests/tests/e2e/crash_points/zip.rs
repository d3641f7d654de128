//! `export --zip` holds the zip to the package as recorded: a package changed after its release
//! (a file added, a file's bytes changed, a file swapped for a link) is not zipped, and the
//! export run again says why; untouched, the same command makes the zip. [`problems`] is the
//! zip check the desk's crash matrix runs after every case.

use super::desk::{CASE, Desk, Outcome, Step};
use std::path::{Path, PathBuf};
use std::process::Command;

impl Desk {
    /// `evidock export --zip` to the desk's package: exit code, stderr.
    fn export_zip(&self) -> (Option<i32>, String) {
        self.export_with(CASE, self.package().to_str().unwrap(), &["--zip"], &[])
    }

    /// A package released without its zip (the export cut off right after the release), then
    /// changed before `export --zip` runs again: what was zipped that should not have been,
    /// one line each.
    pub fn tampered_zips(&self) -> Vec<String> {
        let mut bad = Vec::new();
        self.restore();
        if !matches!(self.run(Step::Import, &[]), Outcome::Done) {
            return vec!["import failed".into()];
        }
        let pkg = self.package();
        let zip = PathBuf::from(format!("{}.zip", pkg.display()));
        let crashed = self.run(Step::Export, &[("EVIDOCK_CRASH_AT", "export.released@1")]);
        if !matches!(crashed, Outcome::Crashed) || !pkg.is_dir() || zip.exists() {
            return vec!["the export was not cut off between its release and its zip".into()];
        }
        let list = pkg.join("evidence-list.csv");
        let original = std::fs::read(&list).unwrap();
        let secret = self.root.join("secret.txt");
        std::fs::write(&secret, "not evidence").unwrap();
        type Change<'a> = (&'a str, Box<dyn Fn() + 'a>, Box<dyn Fn() + 'a>);
        let changes: Vec<Change> = vec![
            (
                "a file added",
                Box::new(|| std::fs::write(pkg.join("extra.txt"), "planted").unwrap()),
                Box::new(|| std::fs::remove_file(pkg.join("extra.txt")).unwrap()),
            ),
            (
                "a listed file's bytes changed",
                Box::new(|| {
                    let mut b = original.clone();
                    b[0] ^= 1;
                    std::fs::write(&list, b).unwrap();
                }),
                Box::new(|| std::fs::write(&list, &original).unwrap()),
            ),
            (
                "a listed file swapped for a link to a file outside",
                Box::new(|| {
                    std::fs::remove_file(&list).unwrap();
                    std::os::unix::fs::symlink(&secret, &list).unwrap();
                }),
                Box::new(|| {
                    std::fs::remove_file(&list).unwrap();
                    std::fs::write(&list, &original).unwrap();
                }),
            ),
        ];
        for (what, change, undo) in &changes {
            change();
            let (code, err) = self.export_zip();
            if code == Some(0) || zip.exists() {
                bad.push(format!("{what}: zipped anyway ({code:?})"));
                let _ = std::fs::remove_file(&zip);
            } else if !err.contains("not the package recorded") {
                bad.push(format!("{what}: refused, but not saying why: {err}"));
            }
            for e in std::fs::read_dir(self.work.join("out")).unwrap().flatten() {
                if e.path() != pkg {
                    bad.push(format!(
                        "{what}: left beside the package: {}",
                        e.path().display()
                    ));
                }
            }
            undo();
        }
        // Untouched again: the zip is made, of the package as recorded.
        let (code, err) = self.export_zip();
        if code != Some(0) {
            bad.push(format!(
                "the untouched package was not zipped ({code:?}): {err}"
            ));
        }
        bad.extend(problems(&pkg));
        bad
    }
}

/// What is wrong with `<pkg>.zip`, read by an independent reader (Python's zipfile): not
/// there, not whole (its CRCs, its central directory), an entry whose bytes are not the
/// package's file of that name, a file of the package missing from it, or the verifier not
/// executable once unpacked.
pub fn problems(pkg: &Path) -> Vec<String> {
    const CHECK: &str = r#"
import os, sys, zipfile
zip_path, pkg = sys.argv[1], sys.argv[2]
top = os.path.basename(pkg)
z = zipfile.ZipFile(zip_path)
bad = z.testzip()
if bad is not None:
    print(f"{zip_path}: entry {bad} fails its CRC")
entries = {}
for i in z.infolist():
    if not i.filename.startswith(top + "/"):
        print(f"{zip_path}: entry {i.filename} is not under {top}/")
        continue
    entries[i.filename[len(top) + 1:]] = i
files = set()
for d, _, names in os.walk(pkg):
    for n in names:
        files.add(os.path.relpath(os.path.join(d, n), pkg))
for rel in sorted(files - set(entries)):
    print(f"{zip_path}: the package's {rel} is not in it")
for rel in sorted(set(entries) - files):
    print(f"{zip_path}: {rel} is not in the package")
for rel in sorted(files & set(entries)):
    with open(os.path.join(pkg, rel), "rb") as f:
        if z.read(entries[rel]) != f.read():
            print(f"{zip_path}: {rel} differs from the package's")
mode = entries.get("tools/evidock-verify")
if mode is None or (mode.external_attr >> 16) & 0o777 != 0o755:
    print(f"{zip_path}: tools/evidock-verify is not 0755")
"#;
    let zip = PathBuf::from(format!("{}.zip", pkg.display()));
    if !zip.is_file() {
        return vec![format!("no zip at {}", zip.display())];
    }
    let out = Command::new("python3")
        .args(["-c", CHECK])
        .arg(&zip)
        .arg(pkg)
        .output()
        .unwrap();
    let mut bad: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    if !out.status.success() {
        bad.push(format!(
            "{} could not be read as a zip: {}",
            zip.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    bad
}
