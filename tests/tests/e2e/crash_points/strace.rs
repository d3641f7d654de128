//! The strace sweep: the same scenario and the same checks as the crash points, but over the
//! unmodified binary (`target/debug/evidock`, what `cargo build` makes, no crash-points
//! feature), killed from outside with `strace -f -e inject=SYSCALL:signal=KILL:when=N`.
//!
//! Why beside the crash points: they name the moments the code's authors thought durable, in
//! a build of its own; this kills the binary stations run, just before the fsyncs, fdatasyncs,
//! renames, links and unlinks it really makes, whoever makes them (SQLite, object_store, std).
//!
//! What strace does, and why the sweep is built this way (strace 6.1):
//!
//! - `signal=KILL` without `error=` is delivered when the thread *enters* the call, so the
//!   kernel never runs it: the dock dies just before its Nth fsync (rename, unlink …). SIGKILL
//!   to one thread ends the whole process; the trace then shows the call `= ?` and `+++ killed
//!   by SIGKILL +++` for every thread, and strace ends itself with SIGKILL.
//! - `when=N` counts "per syscall and per tracee" (man strace), and with `-f` every *thread* is
//!   a tracee: the kill comes when the first thread makes its own Nth call, not at the
//!   process's Nth. So the highest N that can land is the busiest thread's count, which the
//!   first, kill-free run measures per phase. Which blocking thread takes which task changes
//!   from run to run, so a high N is not always reached: such a case is tried twice, then
//!   reported as not reached and never counted as passing (at N = 1 it fails the test). Each
//!   landed kill is confirmed from strace's own record (`Trace::landed`).
//! - Not `--seccomp-bpf`: with it strace 6.1's `when=` counter misses (`when=2` never fires;
//!   tried on a three-fsync thread).
//! - With `-o FILE`, strace blocks fatal signals: the harness stops the dock with SIGTERM to
//!   the dock itself (scenario.rs), and kills the dock before strace when it gives up.
//!
//! `STRACE_CASE='dock:fsync@7'` replays one case; `STRACE_ALL=1` runs every N instead of a
//! sample; `STRACE_WORKERS` sets how many station directories run cases at once (default 2).

use super::checks::{self, Report};
use super::scenario::{Launch, Phase, Scenario};
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::path::Path;
use std::time::Instant;

/// Where a kill is injected: every call that makes a write durable or publishes or removes a
/// name. `rename`, `renameat`, `renameat2`: std's `fs::rename` is glibc's `rename(2)`, other
/// code may use the `at` forms; `link`/`linkat`: the station's write-once files are published
/// by a link, not a rename (store/src/fsutil.rs; `strace -f -c` of a dock phase: fsync 225,
/// unlink 66, linkat 56, fdatasync 38, rename 2, no `at` form of rename or unlink). The first
/// run says which the binary really makes, and only those are swept (`?`: a name the kernel
/// lacks is ignored).
const SYSCALLS: [&str; 9] = [
    "fsync",
    "fdatasync",
    "rename",
    "renameat",
    "renameat2",
    "link",
    "linkat",
    "unlink",
    "unlinkat",
];

/// How many cases a default run tries: ~100 s on 2 cores with two workers (a case — restore,
/// killed run, restart, checks — takes ~3.5 s under strace's ptrace stops). Each (phase,
/// syscall) gets its fair share, its N sampled evenly from 1 to K, both ends kept, when K is
/// more; `STRACE_ALL=1` runs every N (118 cases, 137 s).
const BUDGET: usize = 60;

/// One kill: before the `n`th call of `syscall` by one thread of the dock, during `phase`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Case {
    phase: Phase,
    syscall: String,
    n: u32,
}

impl std::fmt::Display for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}@{}", self.phase.name(), self.syscall, self.n)
    }
}

impl std::str::FromStr for Case {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (phase, rest) = s.split_once(':').ok_or("want PHASE:SYSCALL@N")?;
        let (syscall, n) = rest.split_once('@').ok_or("want PHASE:SYSCALL@N")?;
        if !SYSCALLS.contains(&syscall) {
            return Err(format!("{syscall} is not one of {SYSCALLS:?}"));
        }
        let n: u32 = n.parse().map_err(|_| format!("not a number: {n}"))?;
        if !(1..=65535).contains(&n) {
            return Err(format!("strace's when= takes 1…65535, not {n}"));
        }
        Ok(Case {
            phase: Phase::named(phase).ok_or_else(|| format!("no phase {phase}"))?,
            syscall: syscall.into(),
            n,
        })
    }
}

/// What strace wrote with `-f -o FILE`: every line starts with the thread's id.
#[derive(Default)]
struct Trace {
    /// (syscall, thread) → the result of each call, in order; `None` while unfinished.
    calls: BTreeMap<(String, u32), Vec<Option<String>>>,
    /// Threads that ended by SIGKILL.
    killed: BTreeSet<u32>,
    /// Threads that called execve: only the dock itself may (another program started by the
    /// dock would die alone, and the dock would not be killed).
    execs: Vec<u32>,
}

impl Trace {
    fn read(path: &Path) -> Trace {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let mut t = Trace::default();
        let result = |s: &str| {
            s.rsplit_once(" = ")
                .map(|(_, r)| r.split_whitespace().next().unwrap_or_default().to_string())
        };
        for line in text.lines() {
            let Some((tid, rest)) = line.split_once(' ') else {
                continue;
            };
            let Ok(tid) = tid.parse::<u32>() else {
                continue;
            };
            let rest = rest.trim_start();
            if rest.starts_with("+++ killed by SIGKILL") {
                t.killed.insert(tid);
            } else if let Some(r) = rest.strip_prefix("<... ") {
                // `<... fsync resumed>) = 0`: the end of this thread's last call of it.
                let name = r.split_whitespace().next().unwrap_or_default();
                if let Some(last) = t
                    .calls
                    .get_mut(&(name.to_string(), tid))
                    .and_then(|v| v.last_mut())
                {
                    *last = result(rest);
                }
            } else if let Some((name, _)) = rest.split_once('(')
                && !name.is_empty()
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            {
                if name == "execve" {
                    t.execs.push(tid);
                    continue;
                }
                let r = if rest.ends_with("<unfinished ...>") {
                    None
                } else {
                    result(rest)
                };
                t.calls.entry((name.into(), tid)).or_default().push(r);
            }
        }
        t
    }

    /// Per syscall: (calls, threads, the busiest thread's calls).
    fn counts(&self) -> BTreeMap<String, (usize, usize, u32)> {
        let mut out: BTreeMap<String, (usize, usize, u32)> = BTreeMap::new();
        for ((name, _), v) in &self.calls {
            let e = out.entry(name.clone()).or_default();
            e.0 += v.len();
            e.1 += 1;
            e.2 = e.2.max(v.len() as u32);
        }
        out
    }

    /// Whether the kill landed as asked: the dock (the thread that exec'd it) died by SIGKILL,
    /// and some thread's `n`th call of `syscall` was its last and never returned.
    fn landed(&self, syscall: &str, n: u32) -> Result<u32, String> {
        let Some(&dock) = self.execs.first() else {
            return Err("no execve in the trace: strace did not start the dock".into());
        };
        if !self.killed.contains(&dock) {
            return Err(format!("the dock ({dock}) did not die by SIGKILL"));
        }
        // Counted per thread, the first thread at its nth call dies with the rest: none can
        // have made more (else strace counted otherwise than this sweep assumes).
        if let Some(((_, tid), v)) = self
            .calls
            .iter()
            .find(|((name, _), v)| name == syscall && v.len() > n as usize)
        {
            return Err(format!(
                "thread {tid} made {} calls of {syscall}, more than the {n} the kill waited for",
                v.len()
            ));
        }
        self.calls
            .iter()
            .find(|((name, _), v)| {
                name == syscall
                    && v.len() == n as usize
                    && v.last()
                        .is_some_and(|r| r.as_deref().is_none_or(|r| r == "?"))
            })
            .map(|((_, tid), _)| *tid)
            .ok_or_else(|| {
                format!("killed, but no thread's call {n} of {syscall} is where it died")
            })
    }
}

/// `strace … --`: trace execve (to know the dock) and `traced`, kill before call `when` of
/// `inject`, write to `out`.
fn strace(out: &Path, traced: &[&str], inject: Option<(&str, u32)>) -> Vec<OsString> {
    let mut a: Vec<OsString> = vec!["strace".into(), "-f".into(), "-q".into()];
    a.push("-o".into());
    a.push(out.into());
    let mut set = vec!["execve".to_string()];
    set.extend(traced.iter().map(|s| format!("?{s}")));
    a.push("-e".into());
    a.push(format!("trace={}", set.join(",")).into());
    a.push("-e".into());
    // Only the kill: no signal lines, but `+++ killed by SIGKILL +++` (hidden if not in the set).
    a.push("signal=KILL".into());
    if let Some((syscall, n)) = inject {
        a.push("-e".into());
        a.push(format!("inject={syscall}:signal=KILL:when={n}").into());
    }
    a.push("--".into());
    a
}

/// `n` values from 1 to `k`, evenly spread, both ends kept.
fn sample(k: u32, n: usize) -> Vec<u32> {
    if n >= k as usize {
        return (1..=k).collect();
    }
    if n <= 1 {
        return vec![1];
    }
    let mut v: Vec<u32> = (0..n)
        .map(|i| 1 + ((i as f64) * f64::from(k - 1) / ((n - 1) as f64)).round() as u32)
        .collect();
    v.dedup();
    v
}

#[test]
fn strace_kills_of_the_normal_binary_lose_duplicate_and_strand_nothing() {
    let started = Instant::now();
    let have = std::process::Command::new("strace").arg("-V").output();
    assert!(
        have.is_ok_and(|o| o.status.success()),
        "strace is not installed: `scripts/deps.sh test` (make test) installs it"
    );
    // The binary `cargo build` makes; it must hold no crash point, or this would sweep a
    // binary that stations never run.
    let evidock = evidock_tests::bins::bin("evidock");
    let normal = std::process::Command::new("grep")
        .args(["-aqF", "crash-point "])
        .arg(&evidock)
        .status()
        .unwrap();
    assert_eq!(
        normal.code(),
        Some(1),
        "{} holds crash points, or grep failed",
        evidock.display()
    );
    super::scenario::remove_leftovers();
    let only: Option<Case> = std::env::var("STRACE_CASE")
        .ok()
        .map(|s| s.parse().unwrap());
    let workers: usize = if only.is_some() {
        1
    } else {
        std::env::var("STRACE_WORKERS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(2)
    };

    // The first run of each worker, without a kill, under strace: how often each phase makes
    // each call, per thread (the busiest thread's count is K). It must pass the checks itself.
    // Several workers give a range (the dock phase's busiest thread made 27 fsyncs in one
    // run, 67 in another): K is the lowest, a count every first run reached.
    let mut scenarios = Vec::new();
    // (phase, syscall) → (calls, threads, lowest and highest busiest-thread count)
    let mut seen: BTreeMap<(Phase, String), (usize, usize, u32, u32)> = BTreeMap::new();
    std::thread::scope(|s| {
        let runs: Vec<_> = (0..workers)
            .map(|w| {
                let evidock = &evidock;
                s.spawn(move || {
                    let sc = Scenario::new(evidock, 200 + w);
                    let out = sc.scratch("strace-baseline.out");
                    let args = strace(&out, &SYSCALLS, None);
                    let mut counts = BTreeMap::new();
                    sc.baseline_with(
                        |_| Launch {
                            under: Some(&args),
                            ..Launch::default()
                        },
                        |phase, _| {
                            let t = Trace::read(&out);
                            assert_eq!(
                                t.execs.len(),
                                1,
                                "the dock started another program during {}: a kill there \
                                 would not kill the dock ({})",
                                phase.name(),
                                out.display()
                            );
                            counts.insert(phase, t.counts());
                        },
                    );
                    let report = checks::check(&sc);
                    assert!(
                        report.is_empty(),
                        "the run without a kill fails: {report:#?}"
                    );
                    (sc, counts)
                })
            })
            .collect();
        for r in runs {
            let (sc, counts) = r.join().unwrap();
            for (phase, per) in counts {
                for (name, (calls, threads, most)) in per {
                    let e = seen
                        .entry((phase, name))
                        .or_insert((calls, threads, most, most));
                    e.2 = e.2.min(most);
                    e.3 = e.3.max(most);
                }
            }
            scenarios.push(sc);
        }
    });
    for ((phase, name), (calls, threads, lo, hi)) in &seen {
        println!(
            "strace sweep: {}: {name}: {calls} calls on {threads} threads, busiest thread {lo}…{hi}",
            phase.name()
        );
    }

    // The cases: every (phase, syscall) the first run saw, N from 1 to K; sampled evenly,
    // each group its fair share of BUDGET, when K is more.
    let mut cases: Vec<Case> = Vec::new();
    if let Some(o) = &only {
        cases.push(o.clone());
    } else {
        let all = std::env::var("STRACE_ALL").is_ok_and(|v| v == "1");
        let mut groups: Vec<(&(Phase, String), u32)> = seen.iter().map(|(k, v)| (k, v.2)).collect();
        groups.sort_by_key(|g| g.1);
        let mut left = BUDGET;
        for (i, ((phase, name), k)) in groups.iter().enumerate() {
            let share = if all {
                *k as usize
            } else {
                (left / (groups.len() - i)).max(2)
            };
            let ns = sample(*k, share);
            left = left.saturating_sub(ns.len());
            cases.extend(ns.into_iter().map(|n| Case {
                phase: *phase,
                syscall: name.clone(),
                n,
            }));
        }
    }
    cases.sort();

    let queue = std::sync::Mutex::new(cases.clone());
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for sc in scenarios {
            let (queue, results) = (&queue, &results);
            s.spawn(move || {
                loop {
                    let Some(case) = queue.lock().unwrap().pop() else {
                        break;
                    };
                    let (report, hit) = run_case(&sc, &case);
                    if report.unreached {
                        eprintln!("strace kill at {case}: not reached (twice)");
                    } else if report.is_empty() {
                        eprintln!("strace kill at {case}: recovered");
                    } else {
                        eprintln!("strace kill at {case}: {report:?}");
                    }
                    results.lock().unwrap().push((case, report, hit));
                }
            });
        }
    });

    let mut results = results.into_inner().unwrap();
    results.sort_by(|a, b| a.0.cmp(&b.0));
    let (mut lost, mut duplicated, mut stuck) = (0, 0, 0);
    let mut unreached = Vec::new();
    // syscall → (kills landed, cases)
    let mut landed: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut failed = Vec::new();
    for (case, report, hit) in &results {
        let l = landed.entry(case.syscall.as_str()).or_default();
        l.1 += 1;
        l.0 += usize::from(*hit);
        if report.unreached {
            // Never a pass: counted apart. A first call is always reached if the first run
            // made one at all (and a case asked for by name must be): there it fails.
            if only.is_some() || case.n == 1 {
                failed.push((
                    case,
                    "not reached: the phase finished twice without the kill".to_string(),
                ));
            } else {
                unreached.push(case.to_string());
            }
            continue;
        }
        if !report.is_empty() {
            lost += usize::from(report.lost());
            duplicated += usize::from(report.duplicated());
            stuck += usize::from(report.stuck());
            failed.push((case, format!("{report:#?}")));
        }
    }
    let syscalls: BTreeSet<&str> = cases.iter().map(|c| c.syscall.as_str()).collect();
    let hits: usize = landed.values().map(|l| l.0).sum();
    println!(
        "strace sweep: {} × {} cases ({} phases, kill before a thread's call N; {hits} kills landed, {} not reached), {lost} lost, {duplicated} duplicated, {stuck} stuck, {:.0} s",
        syscalls.len(),
        cases.len(),
        cases.iter().map(|c| c.phase).collect::<BTreeSet<_>>().len(),
        results.iter().filter(|r| r.1.unreached).count(),
        started.elapsed().as_secs_f64()
    );
    println!(
        "strace sweep: kills landed: {}",
        landed
            .iter()
            .map(|(k, (hit, of))| format!("{k} {hit}/{of}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if !unreached.is_empty() {
        println!(
            "strace sweep: not reached (no thread made that many calls in two tries; which thread does what follows the scheduling): {}",
            unreached.join(" ")
        );
    }
    if !failed.is_empty() {
        let mut msg = String::new();
        for (c, r) in &failed {
            msg.push_str(&format!(
                "\n{c} (replay alone: STRACE_CASE='{c}' cargo test -p evidock-tests --test e2e crash_points::strace -- --nocapture):\n{r}"
            ));
        }
        panic!("{} strace case(s) broke a promise:{msg}", failed.len());
    }
}

/// One case, tried again once if no thread reached the count (which blocking thread takes
/// which task changes from run to run); the report, and whether strace's record shows the
/// kill where it was asked for. A dock killed anywhere else fails the case.
fn run_case(sc: &Scenario, case: &Case) -> (Report, bool) {
    let out = sc.scratch("strace-case.out");
    let args = strace(
        &out,
        &[case.syscall.as_str()],
        Some((&case.syscall, case.n)),
    );
    let launch = Launch {
        under: Some(&args),
        ..Launch::default()
    };
    let mut report = sc.crash_run(case.phase, launch);
    if report.unreached {
        report = sc.crash_run(case.phase, launch);
    }
    if report.unreached {
        return (report, false);
    }
    match Trace::read(&out).landed(&case.syscall, case.n) {
        Ok(_) => (report, true),
        Err(e) => {
            report
                .stuck
                .push(format!("{case}: {e} ({})", out.display()));
            (report, false)
        }
    }
}
