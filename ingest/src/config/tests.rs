use super::*;

#[test]
fn embedded_default_is_valid() {
    let s = Settings::embedded().unwrap();
    assert_eq!(s.profiles.len(), 1);
    assert_eq!(s.dock.max_cameras, 8);
    assert!(s.tsa.is_none());
    assert_eq!(s.digests, DigestSet::SHA256_ONLY);
}

/// Every key of the configuration is in docs/config.md, every key there exists, and the
/// example configuration is valid.
#[test]
fn config_doc_lists_every_key() {
    fn paths(prefix: &str, v: &serde_json::Value, out: &mut std::collections::BTreeSet<String>) {
        match v {
            serde_json::Value::Object(m) if prefix != "cases.columns" => {
                for (k, v) in m {
                    let p = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    paths(&p, v, out);
                }
            }
            serde_json::Value::Array(a) if a.iter().all(|x| x.is_object()) && !a.is_empty() => {
                for x in a {
                    paths(prefix, x, out);
                }
            }
            _ => {
                out.insert(prefix.to_string());
            }
        }
    }
    let example = include_str!("../../../docs/evidock.example.toml");
    let cfg: Config = toml::from_str(example).unwrap();
    let mut keys = std::collections::BTreeSet::new();
    paths("", &serde_json::to_value(&cfg).unwrap(), &mut keys);
    let doc = include_str!("../../../docs/config.md");
    let mut documented = std::collections::BTreeSet::new();
    for line in doc.lines().filter(|l| l.starts_with("| `")) {
        let first = line.split('|').nth(1).unwrap_or_default();
        for k in first.split('`').skip(1).step_by(2) {
            documented.insert(k.to_string());
        }
    }
    let missing: Vec<_> = keys.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&keys).collect();
    assert!(missing.is_empty(), "not in docs/config.md: {missing:?}");
    assert!(
        extra.is_empty(),
        "docs/config.md lists keys that do not exist: {extra:?}"
    );
}

#[test]
fn errors_name_the_key() {
    let p = Path::new("/etc/evidock.toml");
    let e = Settings::parse("station_id = \"a/b\"\n", p).unwrap_err();
    assert!(e.to_string().contains("`station_id`"), "{e}");
    let e = Settings::parse("utc_offset = \"8\"\n", p).unwrap_err();
    assert!(e.to_string().contains("`utc_offset`"), "{e}");
    let e = Settings::parse("[tsa]\nurl = \"ftp://x\"\n", p).unwrap_err();
    assert!(e.to_string().contains("`tsa.url`"), "{e}");
    let e = Settings::parse(
        "[[camera]]\nname = \"x\"\ndriver = \"mass-storage\"\npassword = \"1\"\n",
        p,
    )
    .unwrap_err();
    assert!(e.to_string().contains("`camera[0].password`"), "{e}");
    let e = Settings::parse("[dock]\nslots = 0\n", p).unwrap_err();
    assert!(e.to_string().contains("`dock.slots`"), "{e}");
    let e = Settings::parse("[acquire]\ndirect_io = false\ndirect_write = true\n", p).unwrap_err();
    assert!(e.to_string().contains("`acquire.direct_write`"), "{e}");
    let e = Settings::parse("[acquire]\nbackground_wait_s = 3601\n", p).unwrap_err();
    assert!(e.to_string().contains("`acquire.background_wait_s`"), "{e}");
    let e = Settings::parse("colour = 1\n", p).unwrap_err();
    assert!(e.to_string().contains("colour"), "{e}");
    let ok = Settings::parse(
        "station_id = \"dock-01\"\nutc_offset = \"+08:00\"\n[digests]\nsm3 = true\n",
        p,
    )
    .unwrap();
    assert!(ok.digests.sm3 && !ok.digests.md5);
}
