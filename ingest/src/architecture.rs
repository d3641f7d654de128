//! The rooms of the code, checked: the library never reaches up into the command layer, no two
//! modules (files) import each other round a cycle, and no source file is over ~600 lines
//! without saying at its top why it is kept whole. A newcomer reads the structure from the
//! folders only while these hold, so they are tests, not a convention.
//!
//! The module graph is read from the sources: every `crate::…` and `super::…` path outside
//! comments and `#[cfg(test)]` modules, resolved to the longest module (file) it names. A module
//! and its own submodules are one room (a parent declares its children), so only paths that
//! leave a file for another file count.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Files longer than this say at their top why they are one file.
const MAX_LINES: usize = 600;
/// How a long file states its reason (in its first lines).
const REASON: &str = "Kept whole because";

type Module = Vec<String>;

fn sources(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in fs_err::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// `src/acquire/session.rs` → `acquire::session`; `src/journal/mod.rs` → `journal`.
fn module_of(root: &Path, file: &Path) -> Option<Module> {
    let rel = file.strip_prefix(root).ok()?.with_extension("");
    let mut m: Module = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    match m.last().map(String::as_str) {
        Some("mod") | Some("lib") => {
            m.pop();
        }
        Some("main") if m.len() == 1 => return None,
        _ => {}
    }
    Some(m)
}

/// The source without comments and without `#[cfg(test)] mod … { … }` blocks.
fn code(src: &str) -> String {
    let lines: Vec<&str> = src.lines().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < lines.len() {
        let next_is_mod = lines
            .get(i + 1)
            .is_some_and(|l| l.trim_start().starts_with("mod ") || l.contains(" mod "));
        if lines[i].trim() == "#[cfg(test)]" && next_is_mod {
            i += 1;
            if lines[i].trim_end().ends_with(';') {
                i += 1;
                continue;
            }
            let mut depth = 0i64;
            loop {
                let l = lines[i];
                depth += l.matches('{').count() as i64 - l.matches('}').count() as i64;
                i += 1;
                if depth <= 0 || i >= lines.len() {
                    break;
                }
            }
            continue;
        }
        out.push_str(lines[i].split("//").next().unwrap_or(""));
        out.push('\n');
        i += 1;
    }
    out
}

/// Every `crate::a::b…` / `super::…` path in `code`, as its segments (relative ones resolved
/// against `at`).
fn paths(code: &str, at: &Module) -> Vec<Module> {
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    for start in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(pos) = code[from..].find(start) {
            let p = from + pos;
            from = p + start.len();
            // A whole path's start: not `my_crate::`, not the second `super::` of `super::super::`.
            if p > 0
                && (bytes[p - 1].is_ascii_alphanumeric() || matches!(bytes[p - 1], b'_' | b':'))
            {
                continue;
            }
            let tail: String = code[p..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            let mut segs: Vec<&str> = tail.split("::").filter(|s| !s.is_empty()).collect();
            let mut base: Module = if segs.first() == Some(&"crate") {
                segs.remove(0);
                Vec::new()
            } else {
                at.clone()
            };
            while segs.first() == Some(&"super") {
                segs.remove(0);
                base.pop();
            }
            base.extend(segs.iter().map(|s| s.to_string()));
            out.push(base);
        }
    }
    out
}

struct Crate {
    /// Module → the modules (files) it uses.
    uses: BTreeMap<Module, BTreeSet<Module>>,
    lines: BTreeMap<PathBuf, (usize, bool)>,
}

fn read_crate(root: &Path, skip: &[&str]) -> Crate {
    let files = sources(root);
    let mods: BTreeMap<Module, PathBuf> = files
        .iter()
        .filter_map(|f| Some((module_of(root, f)?, f.clone())))
        .collect();
    let mut uses: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    let mut lines = BTreeMap::new();
    for f in &files {
        let src = fs_err::read_to_string(f).unwrap();
        let head: String = src.lines().take(12).collect::<Vec<_>>().join("\n");
        lines.insert(f.clone(), (src.lines().count(), head.contains(REASON)));
        let Some(m) = module_of(root, f) else {
            continue;
        };
        // A file's own unit tests (`mod tests;` beside it) are not a room of the code.
        if m.last().is_some_and(|l| l == "tests")
            || skip.iter().any(|s| m.first().is_some_and(|f| f == s))
        {
            continue;
        }
        // A child file uses `super::` relative to its own module.
        let here = m.clone();
        for p in paths(&code(&src), &here) {
            let target = (1..=p.len())
                .rev()
                .map(|k| p[..k].to_vec())
                .find(|k| mods.contains_key(k));
            // Paths into a module's own children, or to its ancestors' items it is part of.
            if let Some(t) = target
                && t != m
                && !t.starts_with(&m)
                && !m.starts_with(&t)
            {
                uses.entry(m.clone()).or_default().insert(t);
            }
        }
    }
    Crate { uses, lines }
}

/// Each set of modules that reach one another, with the edges between them.
fn cycles(uses: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<String>> {
    let reach = |from: &Module| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.clone()];
        while let Some(m) = todo.pop() {
            for t in uses.get(&m).into_iter().flatten() {
                if seen.insert(t.clone()) {
                    todo.push(t.clone());
                }
            }
        }
        seen
    };
    let mut found = BTreeSet::new();
    for (m, targets) in uses {
        for t in targets {
            if reach(t).contains(m) {
                found.insert(format!("{} -> {}", m.join("::"), t.join("::")));
            }
        }
    }
    if found.is_empty() {
        Vec::new()
    } else {
        vec![found.into_iter().collect()]
    }
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn the_library_never_imports_the_command_layer() {
    let root = workspace().join("ingest/src");
    let lib = fs_err::read_to_string(root.join("lib.rs")).unwrap();
    assert!(
        !code(&lib)
            .lines()
            .any(|l| l.trim_start().starts_with("pub mod cmd")
                || l.trim_start().starts_with("mod cmd")),
        "ingest/src/lib.rs declares the command layer; it belongs to the binary (main.rs)"
    );
    let c = read_crate(&root, &["cmd"]);
    let up: Vec<String> = c
        .uses
        .iter()
        .filter(|(_, t)| t.iter().any(|t| t.first().is_some_and(|f| f == "cmd")))
        .map(|(m, _)| m.join("::"))
        .collect();
    assert!(up.is_empty(), "library modules that import cmd: {up:?}");
}

#[test]
fn no_module_imports_another_round_a_cycle() {
    for (krate, skip) in [
        ("ingest", &["cmd"][..]),
        ("store", &[][..]),
        ("verify", &[][..]),
    ] {
        let c = read_crate(&workspace().join(krate).join("src"), skip);
        let found = cycles(&c.uses);
        assert!(
            found.is_empty(),
            "{krate}: modules that import each other round a cycle: {found:#?}"
        );
    }
}

#[test]
fn no_source_file_is_over_600_lines_without_a_reason_at_its_top() {
    let mut long = Vec::new();
    for krate in ["ingest", "store", "verify"] {
        let c = read_crate(&workspace().join(krate).join("src"), &[]);
        for (f, (n, reason)) in c.lines {
            if n > MAX_LINES && !reason {
                long.push(format!("{} ({n} lines)", f.display()));
            }
        }
    }
    assert!(
        long.is_empty(),
        "over {MAX_LINES} lines, with no `{REASON} …` at the top: {long:#?}"
    );
}

#[test]
fn a_cycle_is_found_and_a_parent_child_pair_is_not() {
    let m = |s: &str| s.split("::").map(String::from).collect::<Module>();
    let mut uses = BTreeMap::new();
    uses.insert(m("a"), BTreeSet::from([m("b")]));
    uses.insert(m("b"), BTreeSet::from([m("c")]));
    uses.insert(m("c"), BTreeSet::from([m("a")]));
    assert_eq!(cycles(&uses)[0].len(), 3);
    uses.remove(&m("c"));
    assert!(cycles(&uses).is_empty());
    let src = "use crate::journal::uploads::Row;\n// crate::cmd::x\nfn f() { super::super::x::y(); }\n#[cfg(test)]\nmod tests {\n use crate::cmd::z;\n}\n";
    let found = paths(&code(src), &m("a::b"));
    assert_eq!(found, vec![m("journal::uploads::Row"), m("x::y")]);
}
