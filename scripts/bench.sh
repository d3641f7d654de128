#!/usr/bin/env bash
# Benchmarks behind docs/benchmarks.md. Each section prints what it measured; run on an idle
# machine. Needs hyperfine (Debian package) for timings and GNU time for peak memory.
#
#   scripts/bench.sh digest    1 GiB: evidock hash (SHA-256; +SM3) vs sha256sum, openssl, SM3 alone
#   scripts/bench.sh custody   custody log appends/s, proofs at 1,000,000 entries
#   scripts/bench.sh history   a log of 2,000,000 events against one of 200: open, append, proofs, station show, log show
#   scripts/bench.sh acquire   4 GiB of mixed files: evidock ingest vs cp -r + sha256sum, and hashing alone
#   scripts/bench.sh card      1.2 GiB card: evidock ingest vs dd oflag=direct + dd iflag=direct of the same files, pair by pair
#   scripts/bench.sh photos    200 photos: evidock ingest vs dd oflag=direct,dsync of each, pair by pair
#   scripts/bench.sh cameras   25 simulated cameras at USB 2.0 speed, docked at once, vs the disk's floor
#   scripts/bench.sh transcode 60 s 1080p30 H.264 → 720p playback copy, and remux: evidock vs the ffmpeg CLI
#   scripts/bench.sh derive    the same clip's derivative job (copy + poster + contact sheet) vs one ffmpeg CLI command, pair by pair
#   scripts/bench.sh upload    the 4 GiB card to a local Ceph RGW: evidock upload (with read-back) vs rclone copy
#   scripts/bench.sh burst     shift end: 8 cameras docked together vs one alone; release times, upload, RSS
#   scripts/bench.sh package   evidock-verify on a 3.2 GiB disclosure package vs sha256sum -c on it
#
# BENCH_DIR (default ./target/bench) holds the generated data; it needs ~10 GiB free.
# Knobs: DIRECT_IO=false (card, cameras, burst: acquire.direct_io), DIRECT_WRITE=true (the same,
# acquire.direct_write); CAMERAS, CAMERA_MIB, CAMERA_RATE, BUFFER_KIB, BUFFERS, ROUNDS (cameras);
# BURST_CAMERAS, BURST_MIB, BURST_RATE (burst); PAIRS.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
DIR=${BENCH_DIR:-$PWD/target/bench}
BIN=${CARGO_TARGET_DIR:-$PWD/target}/release
mkdir -p "$DIR"
[ "$what" = derive ] || command -v hyperfine >/dev/null || { echo "bench: apt-get install hyperfine" >&2; exit 1; }
# BENCH_BUILD narrows the build, e.g. "-p evidock-tests --bin bench-transcode --features
# evidock-ingest/transcode" for `derive` (the tests crate alone builds ingest without FFmpeg);
# BENCH_NO_BUILD=1 uses the release binaries as they are.
[ -n "${BENCH_NO_BUILD:-}" ] || cargo build --release --quiet ${BENCH_BUILD:---workspace --bins}

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

history() { # a long custody log against a short one: the log itself, then whole commands
  local n=${HISTORY_EVENTS:-2000000}
  "$BIN/bench-log-history" "$DIR" "$n" 200
  local big=$DIR/hist-big small=$DIR/hist-small
  if [ ! -f "$big/.filled-$n" ]; then
    rm -rf "$big" "$small"
    for d in "$big" "$small"; do "$BIN/evidock" --data-dir "$d" station init --station-id hist-01 >/dev/null; done
    "$BIN/bench-log-history" --fill "$big" hist-01 "$n"
    "$BIN/bench-log-history" --fill "$small" hist-01 200
    touch "$big/.filled-$n"
  fi
  hyperfine --warmup 2 --runs 10 \
    -n "station show, $n events" "$BIN/evidock --data-dir $big station show" \
    -n "station show, 200 events" "$BIN/evidock --data-dir $small station show" \
    -n "log show --kind key-rotated, $n events (a full streamed scan)" "$BIN/evidock --data-dir $big log show --kind key-rotated"
  echo "peak RSS (KiB): station show $(peak_rss "$BIN/evidock" --data-dir "$big" station show)," \
    "log show $(peak_rss "$BIN/evidock" --data-dir "$big" log show), log show --json $(peak_rss "$BIN/evidock" --data-dir "$big" log show --json)"
  # 1,000 cases of one window each, imported once into each station (one run each: an import
  # is an act, logged), then the case queries against both.
  local reg=$DIR/cases-1000.csv
  if [ ! -f "$reg" ]; then
    echo "case_id,case_type,title,unit,officers,window_start,window_end,place,status" > "$reg.tmp"
    for i in $(seq 1 1000); do
      printf '晋应急罚〔2026〕%d号,一般程序,检查 %d,执法一中队,%d,2026-03-%02dT09:00:00+08:00,2026-03-%02dT11:00:00+08:00,某镇,open\n' \
        "$i" "$i" $((140100 + i % 44)) $((1 + i % 28)) $((1 + i % 28)) >> "$reg.tmp"
    done
    mv "$reg.tmp" "$reg"
  fi
  for d in "$big" "$small"; do
    if [ ! -f "$d/.imported" ]; then
      # The case index brought up to the log first: a new station (or a new index format)
      # builds it once from the whole log, which is not what an import costs.
      "$BIN/evidock" --data-dir "$d" case list --limit 1 >/dev/null
      /usr/bin/time -f "case import of 1,000 cases into $(basename "$d"): %e s, peak RSS %M KiB" \
        "$BIN/evidock" --data-dir "$d" case import "$reg" --by bench >/dev/null
      touch "$d/.imported"
    fi
  done
  hyperfine --warmup 1 --runs 5 \
    -n "case list --limit 50, $n events" "$BIN/evidock --data-dir $big case list --limit 50" \
    -n "case list --limit 50, 200 events" "$BIN/evidock --data-dir $small case list --limit 50" \
    -n "case show, $n events" "$BIN/evidock --data-dir $big case show 晋应急罚〔2026〕500号" \
    -n "case show, 200 events" "$BIN/evidock --data-dir $small case show 晋应急罚〔2026〕500号" \
    -n "case list (all 1,000), $n events" "$BIN/evidock --data-dir $big case list"
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
    --prepare "rm -rf $DIR/acq $DIR/cp && $BIN/evidock --data-dir $DIR/acq station init >/dev/null" \
    -n "evidock ingest (copy + SHA-256 + fsync + re-read from disk)" "$BIN/evidock --data-dir $DIR/acq ingest $card --force --serial ZFY0001 --quiet --no-transcode" \
    -n "cp -r, then sha256sum of every copy" "sh -c 'cp -r $card $DIR/cp && find $DIR/cp -type f -exec sha256sum {} + >/dev/null'" \
    -n "sha256sum alone" "sh -c 'find $card -type f -exec sha256sum {} + >/dev/null'" \
    -n "openssl dgst -sha256 alone" "sh -c 'find $card -type f -exec openssl dgst -sha256 {} + >/dev/null'"
  rm -rf "$DIR/acq"
  "$BIN/evidock" --data-dir "$DIR/acq" station init >/dev/null
  echo "peak RSS of evidock ingest (KiB): $(peak_rss "$BIN/evidock" --data-dir "$DIR/acq" ingest "$card" --force --serial ZFY0001 --quiet --no-transcode)"
  rm -rf "$DIR/acq" "$DIR/cp"
}

pairs() { # pairs N NAME_A CMD_A NAME_B CMD_B — A, B, A, B… after one warm-up each; A/B pair by pair
  python3 - "$@" <<'PY'
import subprocess, sys, time, statistics
n, na, a, nb, b = int(sys.argv[1]), *sys.argv[2:6]
def run(cmd):
    t = time.monotonic(); subprocess.run(["sh", "-c", cmd], check=True, stdout=subprocess.DEVNULL); return time.monotonic() - t
run(a); run(b)
ta, tb = [], []
for _ in range(n):
    ta.append(run(a)); tb.append(run(b))
r = [x / y for x, y in zip(ta, tb)]
print(f"{na}: median {statistics.median(ta):.2f} s; {nb}: median {statistics.median(tb):.2f} s")
print(f"{na} / {nb}, {n} pairs: median {statistics.median(r):.3f}x (min {min(r):.3f}, max {max(r):.3f})")
PY
}

# The physical floor of acquiring FILES into OUT: each written with O_DIRECT, then read back
# with O_DIRECT (what the spool copy and its re-read check ask of the disk).
floor_cmd() { # floor_cmd OUT FILES…
  local out=$1; shift
  printf 'rm -rf %s && mkdir -p %s' "$out" "$out"
  for f in "$@"; do printf ' && dd if=%s of=%s/%s bs=1M oflag=direct status=none' "$f" "$out" "$(basename "$f")"; done
  for f in "$@"; do printf ' && dd if=%s/%s of=/dev/null bs=1M iflag=direct status=none' "$out" "$(basename "$f")"; done
}

card() { # 4 x 256 MiB + 50 photos of 1.2 MiB, page-cached
  local card=$DIR/card1g
  if [ ! -f "$card/.done" ]; then
    rm -rf "$card"; mkdir -p "$card/DCIM/100MEDIA" "$card/PHOTO"
    for i in 1 2 3 4; do gen "$card/DCIM/100MEDIA/ZFY0001_350201_2026112808${i}000_000$i.MP4" $((256 << 20)) "c$i"; done
    for i in $(seq 1 50); do gen "$card/PHOTO/IMG_$i.JPG" $((1200 << 10)) "q$i"; done
    touch "$card/.done"
  fi
  local files; mapfile -t files < <(find "$card" -type f ! -name .done | sort)
  cat "${files[@]}" > /dev/null
  echo "card: $(du -sh --apparent-size "$card" | cut -f1) in ${#files[@]} files"
  printf '[acquire]\ndirect_io = %s\ndirect_write = %s\n' "${DIRECT_IO:-true}" "${DIRECT_WRITE:-false}" > "$DIR/card.toml"
  local ingest="rm -rf $DIR/acq && $BIN/evidock --data-dir $DIR/acq station init >/dev/null && $BIN/evidock --data-dir $DIR/acq --config $DIR/card.toml ingest $card --force --serial ZFY0001 --quiet --no-transcode --no-upload"
  pairs "${PAIRS:-5}" "evidock ingest" "$ingest" "dd oflag=direct, then dd iflag=direct" "$(floor_cmd "$DIR/dd" "${files[@]}")"
  pairs 3 "evidock ingest" "$ingest" "openssl dgst -sha256" "openssl dgst -sha256 ${files[*]}"
  rm -rf "$DIR/acq" "$DIR/dd"
  "$BIN/evidock" --data-dir "$DIR/acq" station init >/dev/null
  echo "peak RSS of evidock ingest (KiB): $(peak_rss "$BIN/evidock" --data-dir "$DIR/acq" --config "$DIR/card.toml" ingest "$card" --force --serial ZFY0001 --quiet --no-transcode --no-upload)"
  rm -rf "$DIR/acq"
}

photos() { # 200 photos of 1.2 MiB: per-file costs (fsyncs), against a synchronous direct write of each
  local card=$DIR/photos
  if [ ! -f "$card/.done" ]; then
    rm -rf "$card"; mkdir -p "$card/PHOTO"
    for i in $(seq 1 200); do gen "$card/PHOTO/IMG_$i.JPG" $((1200 << 10)) "p$i"; done
    touch "$card/.done"
  fi
  cat "$card"/PHOTO/* > /dev/null
  local dd="rm -rf $DIR/dd && mkdir -p $DIR/dd"
  for f in "$card"/PHOTO/*; do dd+=" && dd if=$f of=$DIR/dd/$(basename "$f") bs=1M oflag=direct,dsync status=none"; done
  pairs "${PAIRS:-7}" "evidock ingest (200 photos)" \
    "rm -rf $DIR/acq && $BIN/evidock --data-dir $DIR/acq station init >/dev/null && $BIN/evidock --data-dir $DIR/acq ingest $card --force --serial ZFY0001 --quiet --no-transcode --no-upload" \
    "dd oflag=direct,dsync of each" "$dd"
  rm -rf "$DIR/acq" "$DIR/dd"
}

cameras() { # ROUNDS (default 3) pairs: the station, then the disk's floor for the same bytes
  local n=${CAMERAS:-25} size=${CAMERA_MIB:-160} rate=${CAMERA_RATE:-40000000}
  local root=$DIR/cams big=$DIR/floor.bin total=$((n * size << 20))
  gen "$big" "$total" floor
  : > "$DIR/cameras.rounds"
  for round in $(seq 1 "${ROUNDS:-3}"); do
    rm -rf "$root"; mkdir -p "$root/mnt" "$root/sims"
    cat > "$root/evidock.toml" <<EOF
[dock]
slots = $n
max_cameras = $n

[acquire]
direct_io = ${DIRECT_IO:-true}
direct_write = ${DIRECT_WRITE:-false}
buffer_kib = ${BUFFER_KIB:-1024}
buffers = ${BUFFERS:-4}

[[camera]]
name = "simulated ZFY"
driver = "zfy-sim"
allow = ["*"]
EOF
    for i in $(seq -w 1 "$n"); do
      "$BIN/evidock" --data-dir "$root/data" simulate camera "$root/sims/c$i" --serial "ZFY00$i" \
        --rate "$rate" --generate 4 --size $(((size << 20) / 4)) 2>/dev/null
    done
    sync # the simulated cards' own writeback is not the station's work
    "$BIN/evidock" --data-dir "$root/data" --config "$root/evidock.toml" \
      dock --init --mount-root "$root/mnt" 2> "$root/dock.log" &
    local pid=$!
    sleep 1
    local t0; t0=$(date +%s.%N)
    for i in $(seq -w 1 "$n"); do mv "$root/sims/c$i/card" "$root/mnt/ZFY00$i"; done
    while [ "$("$BIN/evidock" --data-dir "$root/data" sessions --json | python3 -c 'import json,sys; print(sum(s["state"]=="released" for s in json.load(sys.stdin)))')" -lt "$n" ]; do sleep 0.2; done
    local t1; t1=$(date +%s.%N)
    local rss; rss=$(awk '/VmHWM/{print $2}' "/proc/$pid/status")
    kill -TERM $pid; wait $pid || true
    # The disk's floor for the same bytes, right after: written with O_DIRECT, read back with it.
    cat "$big" > /dev/null
    local f0 f1 f2
    f0=$(date +%s.%N); dd if="$big" of="$root/floor.out" bs=1M oflag=direct status=none
    f1=$(date +%s.%N); dd if="$root/floor.out" of=/dev/null bs=1M iflag=direct status=none
    f2=$(date +%s.%N)
    rm -f "$root/floor.out"
    python3 - "$t0" "$t1" "$f0" "$f1" "$f2" "$total" "$n" "$size" "$rate" "$rss" >> "$DIR/cameras.rounds" <<'PY'
import sys
t0, t1, f0, f1, f2, total = (float(x) for x in sys.argv[1:7])
n, size, rate, rss = (int(x) for x in sys.argv[7:11])
agg, floor = total / (t1 - t0), total / (f2 - f0)
print(f"{agg/floor:.3f} {n} cameras x {size} MiB at {rate/1e6:.0f} MB/s each: {total/2**30:.2f} GiB in {t1-t0:.1f} s, "
      f"aggregate {agg/1e6:.0f} MB/s; floor right after: dd oflag=direct {total/(f1-f0)/1e6:.0f} MB/s, "
      f"dd iflag=direct {total/(f2-f1)/1e6:.0f} MB/s, write then read back {floor/1e6:.0f} MB/s; "
      f"ratio {agg/floor:.2f}x; peak RSS of the dock {rss // 1024} MiB ({rss / 1024 / n:.1f} MiB per camera)")
PY
    tail -1 "$DIR/cameras.rounds" | cut -d' ' -f2-
  done
  python3 -c '
import sys
r = sorted(float(l.split()[0]) for l in open(sys.argv[1]))
print(f"aggregate / floor, {len(r)} rounds: median {r[len(r)//2]:.2f}x (min {r[0]:.2f}, max {r[-1]:.2f}; goal >= 0.9x)")
' "$DIR/cameras.rounds"
  rm -rf "$root"
}

transcode() { # the playback copy: evidock (ffmpeg-next) vs the ffmpeg CLI, same settings
  local src=$DIR/1080p60s.mp4
  [ -f "$src" ] || ffmpeg -loglevel error -f lavfi -i "testsrc2=size=1920x1080:rate=30:duration=60" \
    -f lavfi -i "sine=frequency=440:duration=60" -c:v libx264 -preset veryfast -pix_fmt yuv420p \
    -b:v 8M -c:a aac "$src"
  # What evidock's defaults mean, spelled out for the CLI (docs/formats/custody-log.md).
  local vf="scale=1280:720:flags=bicubic,setsar=1,format=yuv420p"
  local x264="-c:v libx264 -preset veryfast -crf 23 -profile:v high -c:a aac -b:a 128k -movflags +faststart"
  hyperfine --warmup 1 --runs 3 \
    -n "evidock playback copy (1080p → 720p)" "$BIN/bench-transcode transcode $src $DIR/t-evidock.mp4" \
    -n "ffmpeg CLI, same settings" "ffmpeg -loglevel error -y -i $src -vf $vf $x264 $DIR/t-cli.mp4"
  hyperfine --warmup 1 --runs 5 \
    -n "evidock remux" "$BIN/bench-transcode remux $src $DIR/r-evidock.mp4" \
    -n "ffmpeg -c copy" "ffmpeg -loglevel error -y -i $src -c copy -movflags +faststart $DIR/r-cli.mp4"
  echo "peak RSS (KiB): evidock transcode $(peak_rss "$BIN/bench-transcode" transcode "$src" "$DIR/t-evidock.mp4"), ffmpeg CLI $(peak_rss ffmpeg -loglevel error -y -i "$src" -vf "$vf" $x264 "$DIR/t-cli.mp4")"
}

derive() { # the derivative job: playback copy + poster + contact sheet, one decode each side
  local src=$DIR/1080p60s.mp4 pairs=${PAIRS:-3}
  [ -f "$src" ] || ffmpeg -loglevel error -f lavfi -i "testsrc2=size=1920x1080:rate=30:duration=60" \
    -f lavfi -i "sine=frequency=440:duration=60" -c:v libx264 -preset veryfast -pix_fmt yuv420p \
    -b:v 8M -c:a aac "$src"
  # evidock's sample times (thumbnails.rs): the poster at duration/10, tile k of n=16 at
  # duration*(2k+1)/(2n), each the first frame at or after it; 320 wide; 4x4 tiles.
  local d; d=$(ffprobe -v error -show_entries format=duration -of csv=p=0 "$src")
  local sel; sel=$(python3 -c "d=$d; n=16; print('+'.join(f'gte(t,{d*(2*k+1)/(2*n):.6f})*not(gte(prev_selected_t,{d*(2*k+1)/(2*n):.6f}))' for k in range(n)))")
  local poster_at; poster_at=$(python3 -c "print(f'{$d/10:.6f}')")
  local fc="[0:v]scale=1280:720:flags=bicubic,setsar=1,format=yuv420p,split=3[pb][a][b];"
  fc+="[a]select='isnan(prev_selected_t)*gte(t,$poster_at)',scale=320:-2:flags=bicubic[po];"
  fc+="[b]select='$sel',scale=320:-2:flags=bicubic,drawtext=text='%{pts\\:hms}':x=6:y=h-th-6:fontsize=h/9:fontcolor=white:box=1:boxcolor=black@0.6:boxborderw=3,tile=4x4:padding=4:margin=4[sh]"
  local x264="-c:v libx264 -preset veryfast -crf 23 -profile:v high -c:a aac -b:a 128k -movflags +faststart"
  local jpg="-frames:v 1 -qmin 2 -qmax 4 -update 1"
  mkdir -p "$DIR/d-evidock" "$DIR/d-cli"
  ev() { "$BIN/bench-transcode" derive "$src" "$DIR/d-evidock" 2>/dev/null; }
  # shellcheck disable=SC2086
  cli() { ffmpeg -loglevel error -y -i "$src" -filter_complex "$fc" -map "[pb]" -map 0:a $x264 "$DIR/d-cli/playback.mp4" \
    -map "[po]" $jpg "$DIR/d-cli/poster.jpg" -map "[sh]" $jpg "$DIR/d-cli/contact-sheet.jpg"; }
  wall() { local t0 t1; t0=$(date +%s.%N); "$@"; t1=$(date +%s.%N); python3 -c "print($t1 - $t0)"; }
  echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
  ev; cli # warm-up (page cache, fonts)
  local ratios=() e c
  for i in $(seq 1 "$pairs"); do
    e=$(wall ev); c=$(wall cli)
    echo "pair $i: evidock ${e} s, ffmpeg CLI ${c} s, ratio $(python3 -c "print(f'{$e/$c:.3f}')")"
    ratios+=("$(python3 -c "print($e/$c)")")
  done
  python3 -c "import statistics as s; r=[float(x) for x in '${ratios[*]}'.split()]; print(f'derivative job / ffmpeg CLI: median {s.median(r):.3f}x (min {min(r):.3f}, max {max(r):.3f}, {len(r)} pairs)')"
  echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
  for f in poster contact-sheet; do
    echo "$f: evidock $(ffprobe -v error -show_entries stream=width,height -of csv=p=0 "$DIR/d-evidock/$f.jpg"), CLI $(ffprobe -v error -show_entries stream=width,height -of csv=p=0 "$DIR/d-cli/$f.jpg")"
  done
}

upload() { # the acquired 4 GiB card to a local Ceph RGW: evidock upload vs rclone copy, one run each
  mixed
  local card=$DIR/card4g root=$DIR/up
  rm -rf "$root"; mkdir -p "$root"
  # The OSD keeps objects in memory: room for both copies.
  coproc RIG { MEMSTORE_BYTES=$((10 << 30)) "$BIN/ceph-rig"; }
  local line endpoint="" key="" secret=""
  while read -r line <&"${RIG[0]}"; do
    case "$line" in
      endpoint=*) endpoint=${line#endpoint=} ;;
      access_key=*) key=${line#access_key=} ;;
      secret_key=*) secret=${line#secret_key=} ;;
      ready) break ;;
    esac
  done
  [ -n "$endpoint" ] || { echo "bench: the Ceph rig did not start" >&2; exit 1; }
  printf '[store]\nurl = "s3://bench-evidock/evidence"\nendpoint = "%s"\nregion = "us-east-1"\nallow_http = true\npart_size_mib = %s\n' \
    "$endpoint" "${PART_MIB:-8}" > "$root/evidock.toml"
  export AWS_ACCESS_KEY_ID=$key AWS_SECRET_ACCESS_KEY=$secret
  local ev=("$BIN/evidock" --data-dir "$root/data" --config "$root/evidock.toml")
  "${ev[@]}" station init >/dev/null
  "${ev[@]}" store init >/dev/null
  "${ev[@]}" ingest "$card" --force --serial ZFY0001 --no-upload --no-transcode --quiet
  export RCLONE_CONFIG_CEPH_TYPE=s3 RCLONE_CONFIG_CEPH_PROVIDER=Ceph RCLONE_CONFIG_CEPH_ENDPOINT=$endpoint \
    RCLONE_CONFIG_CEPH_ACCESS_KEY_ID=$key RCLONE_CONFIG_CEPH_SECRET_ACCESS_KEY=$secret
  unset AWS_CA_BUNDLE  # rclone cannot load a custom CA bundle with its own transport
  rclone mkdir ceph:bench-rclone
  sync
  echo "card: $(du -sh --apparent-size "$card" | cut -f1) in $(find "$card" -type f | wc -l) files"
  local t0 t1 t2 rss_e rss_r
  t0=$(date +%s.%N)
  rss_e=$(peak_rss "${ev[@]}" upload)
  t1=$(date +%s.%N)
  rss_r=$(peak_rss rclone copy "$card" ceph:bench-rclone/card4g)
  t2=$(date +%s.%N)
  python3 -c '
import sys
t0, t1, t2, rss_e, rss_r, size = (float(x) for x in sys.argv[1:])
e, r = t1 - t0, t2 - t1
print(f"evidock upload (multipart, read-back of every object): {e:.1f} s, {size/e/1e6:.0f} MB/s, peak RSS {rss_e/1024:.0f} MiB")
print(f"rclone copy (its defaults, no read-back):              {r:.1f} s, {size/r/1e6:.0f} MB/s, peak RSS {rss_r/1024:.0f} MiB")
print(f"evidock throughput / rclone throughput: {r/e:.2f}x")
' "$t0" "$t1" "$t2" "$rss_e" "$rss_r" "$(du -sb --apparent-size "$card" | cut -f1)"
  eval "exec ${RIG[1]}>&-"
  wait "$RIG_PID" || true
}

burst() { # shift end: N cameras x SIZE docked at once; each one's release time vs one camera alone
  local n=${BURST_CAMERAS:-8} mib=${BURST_MIB:-1024} rate=${BURST_RATE:-40000000}
  local root=$DIR/burst
  run_dock() { # run_dock NAME COUNT — dock COUNT cameras at once, wait until uploaded; prints timings
    local name=$1 count=$2 d=$root/$1
    rm -rf "$d"; mkdir -p "$d/mnt" "$d/sims"
    printf '[dock]\nslots = %s\nmax_cameras = %s\n[acquire]\ndirect_io = %s\ndirect_write = %s\n[status]\nenabled = false\n[[camera]]\nname = "sim"\ndriver = "zfy-sim"\nallow = ["*"]\n' "$count" "$count" "${DIRECT_IO:-true}" "${DIRECT_WRITE:-false}" > "$d/evidock.toml"
    for i in $(seq -w 1 "$count"); do
      "$BIN/evidock" --data-dir "$d/data" simulate camera "$d/sims/c$i" --serial "ZFY10$i" \
        --rate "$rate" --generate 4 --size $(((mib << 20) / 4)) 2>/dev/null
    done
    sync
    "$BIN/evidock" --data-dir "$d/data" --config "$d/evidock.toml" dock --init --mount-root "$d/mnt" 2> "$d/dock.log" &
    local pid=$!
    sleep 1
    local t0; t0=$(date +%s.%N)
    for i in $(seq -w 1 "$count"); do mv "$d/sims/c$i/card" "$d/mnt/ZFY10$i"; done
    until "$BIN/evidock" --data-dir "$d/data" --config "$d/evidock.toml" store status --json 2>/dev/null | python3 -c '
import json, sys
q = json.load(sys.stdin)
rows = q if isinstance(q, list) else q.get("uploads", [])
sys.exit(0 if rows and all(r["state"] == "uploaded" for r in rows) and len([r for r in rows if r["role"] == "original"]) >= '"$((count * 5))"' else 1)'; do sleep 1; done
    local t1; t1=$(date +%s.%N)
    awk '/VmHWM/{print $2}' "/proc/$pid/status" > "$d/rss"
    kill -TERM $pid; wait $pid || true
    "$BIN/evidock" --data-dir "$d/data" sessions --json > "$d/sessions.json"
    python3 - "$name" "$t0" "$t1" "$d" <<'PY'
import json, sys, datetime as dt
name, t0, t1, d = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
ss = json.load(open(f"{d}/sessions.json"))
def ts(s): return dt.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
rel = sorted(ts(s["released_at"]) - t0 for s in ss if s.get("released_at"))
print(f"{name}: {len(ss)} camera(s); safe to undock after {', '.join(f'{r:.1f}' for r in rel)} s; all uploaded after {t1 - t0:.1f} s; peak RSS {int(open(f'{d}/rss').read()) // 1024} MiB")
json.dump({"release": rel, "all": t1 - t0}, open(f"{d}/result.json", "w"))
PY
  }
  run_dock alone 1
  run_dock burst "$n"
  python3 - "$root" <<'PY'
import json, sys
a = json.load(open(f"{sys.argv[1]}/alone/result.json"))["release"][0]
b = json.load(open(f"{sys.argv[1]}/burst/result.json"))["release"]
print(f"release time / alone: median {sorted(b)[len(b)//2] / a:.2f}x, worst {max(b) / a:.2f}x (goal <= 1.2x)")
PY
  rm -rf "$root"
}

package() { # the card's six recordings linked to one case and exported; the offline check vs sha256sum -c
  mixed
  local root=$DIR/pkg
  rm -rf "$root"; mkdir -p "$root"
  local ev=("$BIN/evidock" --data-dir "$root/data")
  "${ev[@]}" station init >/dev/null
  "${ev[@]}" ingest "$DIR/card4g" --force --serial ZFY0001 --officer 350201 --no-transcode --no-upload --quiet
  printf 'case_id,officers,window_start,window_end\n晋应急罚〔2026〕1号,350201,2026-11-28T00:00:00+08:00,2026-11-29T00:00:00+08:00\n' > "$root/cases.csv"
  "${ev[@]}" case import --by bench "$root/cases.csv" >/dev/null
  "${ev[@]}" export --case '晋应急罚〔2026〕1号' --out "$root/package" --by bench
  echo "package: $(du -sh --apparent-size "$root/package" | cut -f1) in $(find "$root/package" -type f | wc -l) files"
  # The receiver pins the station key (as copied from the collection record): the verdict is
  # then PROVEN and the exit status 0.
  printf '[[station]]\nkey = "%s"\n' "$("${ev[@]}" station show --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["public_key"])')" > "$root/trust.toml"
  hyperfine --warmup 1 --runs 5 \
    -n "evidock-verify --trust (every digest, signature, proof)" "$BIN/evidock-verify $root/package --trust $root/trust.toml" \
    -n "sha256sum -c SHA256SUMS" "sh -c 'cd $root/package && sha256sum -c --quiet SHA256SUMS'"
  echo "peak RSS of evidock-verify (KiB): $(peak_rss "$BIN/evidock-verify" "$root/package" --trust "$root/trust.toml")"
}

case "$what" in
  digest) digest ;;
  custody) custody ;;
  history) history ;;
  acquire) acquire ;;
  card) card ;;
  photos) photos ;;
  cameras) cameras ;;
  upload) upload ;;
  transcode) transcode ;;
  derive) derive ;;
  package) package ;;
  burst) burst ;;
  all) digest; custody; acquire; card; photos; cameras; upload; transcode; derive; package; burst ;;
  *) echo "usage: $0 [digest|custody|acquire|card|photos|cameras|upload|transcode|derive|package|burst|all]" >&2; exit 2 ;;
esac
