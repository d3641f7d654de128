#!/usr/bin/env bash
# Benchmarks behind docs/benchmarks.md. Each section prints what it measured; run on an idle
# machine. Needs hyperfine (Debian package) for timings and GNU time for peak memory.
#
#   scripts/bench.sh digest    1 GiB: evidock hash (SHA-256; +SM3) vs sha256sum, openssl, SM3 alone
#   scripts/bench.sh custody   custody log appends/s, proofs at 1,000,000 entries
#   scripts/bench.sh acquire   4 GiB of mixed files: evidock ingest vs cp -r + sha256sum, and hashing alone
#   scripts/bench.sh cameras   25 simulated cameras at USB 2.0 speed, docked at once
#
# BENCH_DIR (default ./target/bench) holds the generated data; it needs ~10 GiB free.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
DIR=${BENCH_DIR:-$PWD/target/bench}
BIN=$PWD/target/release
mkdir -p "$DIR"
command -v hyperfine >/dev/null || { echo "bench: apt-get install hyperfine" >&2; exit 1; }
cargo build --release --quiet --workspace --bins

gen() { # gen FILE BYTES SEED — incompressible deterministic data
  [ -f "$1" ] && [ "$(stat -c %s "$1")" = "$2" ] && return
  head -c "$2" < <(openssl enc -aes-128-ctr -pass "pass:$3" -nosalt -pbkdf2 -in /dev/zero 2>/dev/null) > "$1"
}

peak_rss() { # peak_rss CMD… — prints the peak resident set of the command (KiB)
  /usr/bin/time -f "%M" "$@" 2>&1 >/dev/null | tail -n1
}

digest() {
  gen "$DIR/1g.bin" $((1 << 30)) digest
  hyperfine --warmup 1 --runs 5 \
    -n "evidock hash (SHA-256)" "$BIN/evidock --data-dir $DIR/d hash $DIR/1g.bin" \
    -n "evidock hash --sm3 (SHA-256 + SM3)" "$BIN/evidock --data-dir $DIR/d hash --sm3 $DIR/1g.bin" \
    -n "SM3 alone (sm3 crate, one thread)" "$BIN/bench-digest sm3 $DIR/1g.bin" \
    -n "sha256sum" "sha256sum $DIR/1g.bin" \
    -n "openssl dgst -sha256" "openssl dgst -sha256 $DIR/1g.bin"
}

custody() {
  "$BIN/bench-custody" "$DIR" 1000000
}

mixed() { # a camera card: a few large videos, many small photos, a log — 4 GiB in all
  local card=$DIR/card4g
  [ -f "$card/.done" ] && return
  rm -rf "$card"; mkdir -p "$card/DCIM/100MEDIA" "$card/PHOTO" "$card/LOG"
  for i in 1 2 3 4 5 6; do gen "$card/DCIM/100MEDIA/ZFY0001_350201_2026112808${i}000_000$i.MP4" $((640 << 20)) "v$i"; done
  for i in $(seq 1 200); do gen "$card/PHOTO/IMG_$i.JPG" $((1200 << 10)) "p$i"; done
  gen "$card/LOG/device.log" $((64 << 10)) log
  touch "$card/.done"
}

acquire() {
  mixed
  local card=$DIR/card4g
  echo "card: $(du -sh --apparent-size "$card" | cut -f1) in $(find "$card" -type f | wc -l) files"
  hyperfine --warmup 1 --runs 3 \
    --prepare "rm -rf $DIR/acq $DIR/cp" \
    -n "evidock ingest (copy + SHA-256 + fsync + re-read from disk)" "$BIN/evidock --data-dir $DIR/acq ingest $card --serial ZFY0001 --quiet" \
    -n "cp -r, then sha256sum of every copy" "sh -c 'cp -r $card $DIR/cp && find $DIR/cp -type f -exec sha256sum {} + >/dev/null'" \
    -n "sha256sum alone" "sh -c 'find $card -type f -exec sha256sum {} + >/dev/null'" \
    -n "openssl dgst -sha256 alone" "sh -c 'find $card -type f -exec openssl dgst -sha256 {} + >/dev/null'"
  rm -rf "$DIR/acq"
  echo "peak RSS of evidock ingest (KiB): $(peak_rss "$BIN/evidock" --data-dir "$DIR/acq" ingest "$card" --serial ZFY0001 --quiet)"
  rm -rf "$DIR/acq" "$DIR/cp"
}

cameras() {
  local n=${CAMERAS:-25} size=${CAMERA_MIB:-160} rate=${CAMERA_RATE:-40000000}
  local root=$DIR/cams
  rm -rf "$root"; mkdir -p "$root/mnt" "$root/sims"
  cat > "$root/evidock.toml" <<EOF
[dock]
slots = $n
max_cameras = $n

[[camera]]
name = "simulated ZFY"
driver = "zfy-sim"
allow = ["*"]
EOF
  for i in $(seq -w 1 "$n"); do
    "$BIN/evidock" --data-dir "$root/data" simulate camera "$root/sims/c$i" --serial "ZFY00$i" \
      --rate "$rate" --generate 4 --size $(((size << 20) / 4)) 2>/dev/null
  done
  "$BIN/evidock" --data-dir "$root/data" --config "$root/evidock.toml" \
    dock --mount-root "$root/mnt" 2> "$root/dock.log" &
  local pid=$!
  sleep 1
  local t0; t0=$(date +%s.%N)
  for i in $(seq -w 1 "$n"); do mv "$root/sims/c$i/card" "$root/mnt/ZFY00$i"; done
  while [ "$("$BIN/evidock" --data-dir "$root/data" sessions --json | python3 -c 'import json,sys; print(sum(s["state"]=="released" for s in json.load(sys.stdin)))')" -lt "$n" ]; do sleep 0.2; done
  local t1; t1=$(date +%s.%N)
  awk '/VmHWM/{print $2}' "/proc/$pid/status" > "$root/rss"
  kill -TERM $pid; wait $pid || true
  python3 - "$t0" "$t1" "$n" "$size" "$rate" "$root" <<'EOF'
import json, sys, subprocess
t0, t1, n, size, rate, root = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
total = n * size * 2**20
wall = t1 - t0
alone = size * 2**20 / rate
print(f"{n} cameras x {size} MiB at {rate/1e6:.0f} MB/s each: {total/2**30:.2f} GiB in {wall:.1f} s")
print(f"aggregate {total/wall/1e6:.0f} MB/s (the cameras could deliver {n*rate/1e6:.0f} MB/s); one camera alone would take {alone:.1f} s")
print("peak RSS of the dock (KiB):", open(f"{root}/rss").read().strip())
EOF
}

case "$what" in
  digest) digest ;;
  custody) custody ;;
  acquire) acquire ;;
  cameras) cameras ;;
  all) digest; custody; acquire; cameras ;;
  *) echo "usage: $0 [digest|custody|acquire|cameras|all]" >&2; exit 2 ;;
esac
