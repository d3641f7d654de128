#!/usr/bin/env bash
# Install what evidock needs to build, run and test on Debian 12 — only what is missing.
# Idempotent: a second run installs nothing and takes a second.
#
#   scripts/deps.sh build    compilers and libraries for `cargo build`
#   scripts/deps.sh run      build + the ffmpeg CLI the demo makes footage with
#   scripts/deps.sh test     build + the tools the tests start (openssl TSA, ffmpeg CLI, …)
#   scripts/deps.sh deb      build + what `make deb` packages with (dpkg-dev: dpkg-shlibdeps)
#   scripts/deps.sh fuzz     test + cargo-fuzz
#   scripts/deps.sh bench    test + the peers the benchmarks compare with (hyperfine, rclone)
set -euo pipefail
what=${1:-test}

sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi

# FFmpeg's libraries (ffmpeg-next binds them with bindgen, hence clang).
apt_build=(pkg-config gcc libc6-dev make python3 clang libclang-dev
  libavcodec-dev libavformat-dev libavfilter-dev libavutil-dev libswscale-dev libswresample-dev)
# The contact sheets' time labels are drawn with a font found through fontconfig; the status
# page's Chinese needs a CJK font on the machine that shows it.
apt_run=(ffmpeg fonts-dejavu-core fonts-wqy-microhei)
# `make deb`: dpkg-shlibdeps computes the package's Depends.
apt_deb=(dpkg-dev)
# strace: tests/tests/e2e/crash_points/strace.rs kills the normal binary with `strace -e inject`;
# tests/tests/e2e/dir_fsync.rs reads which directories it fsyncs (`strace -y`). dpkg-dev, systemd,
# adduser: tests/deb/run.sh builds the package, checks its unit with systemd-analyze, installs it.
apt_test=(openssl coreutils strace ffmpeg fonts-dejavu-core python3-venv python3-pip chromium fonts-wqy-microhei qemu-system-x86 busybox-static dosfstools mtools cpio kmod fdisk radosgw ceph-mon ceph-osd uuid-runtime "${apt_deb[@]}" systemd adduser)

need=()
want=("${apt_build[@]}")
case "$what" in
  run) want+=("${apt_run[@]}") ;;
  deb) want+=("${apt_deb[@]}") ;;
  test|fuzz) want+=("${apt_test[@]}") ;;
  bench) want+=("${apt_test[@]}" hyperfine rclone time) ;;
esac
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "deps: installing ${need[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null; then
  echo "deps: cargo not found; install Rust 1.95 (rustup) first" >&2
  exit 1
fi

if [ "$what" = fuzz ] || [ "$what" = test ]; then
  if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "deps: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked --quiet
  fi
fi

# cargo-deny (make deny): licences, bans and sources of the dependency tree. Pinned: its checks
# and config keys change between releases.
if [ "$what" = test ]; then
  if ! cargo deny --version 2>/dev/null | grep -qx 'cargo-deny 0.20.2'; then
    echo "deps: installing cargo-deny 0.20.2" >&2
    cargo install cargo-deny --version 0.20.2 --locked --quiet
  fi
fi

# case_validate (PyPI case-utils) checks the CASE/UCO graph of disclosure packages; kept in a
# virtual environment under target/ so nothing is installed system-wide.
if [ "$what" = test ] || [ "$what" = fuzz ] || [ "$what" = bench ]; then
  venv="$(dirname "$0")/../target/caseenv"
  if [ ! -x "$venv/bin/case_validate" ]; then
    echo "deps: installing case-utils (case_validate) into target/caseenv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check case-utils
  fi
fi
