#!/usr/bin/env bash
# `make run`: the embedded default end to end. The station is made on first run, a
# simulated ZFY camera with generated footage is docked, `evidock dock` acquires it (clock
# checked and synced, every file hashed once, re-read from disk, custody events, checkpoint),
# and the stand-alone verifier checks the custody log.
set -euo pipefail
BIN=${BIN:-target/release}
DATA_DIR=${DATA_DIR:-./evidock-data}
WORK=$(mktemp -d)
trap 'rc=$?; kill "${DOCK_PID:-}" 2>/dev/null || true; [ $rc -eq 0 ] || cat "$WORK/dock.log" >&2 2>/dev/null; rm -rf "$WORK"' EXIT
evidock() { "$BIN/evidock" --data-dir "$DATA_DIR" "$@"; }

echo "== This station (made on first run by \`evidock station init\`: key mode 0600; no TSA configured: local time only)"
[ -e "$DATA_DIR/station.key" ] || evidock station init
evidock station show
echo

echo "== A simulated camera: ZFY_INFO identity, password, a clock reset to 2000-01-01 by a dead battery"
clips=()
if command -v ffmpeg >/dev/null; then
  for i in 1 2 3; do
    ffmpeg -loglevel error -f lavfi -i "testsrc2=size=640x360:rate=25:duration=4" \
      -f lavfi -i "sine=frequency=$((300 * i)):duration=4" \
      -c:v libx264 -preset veryfast -pix_fmt yuv420p -c:a aac -shortest "$WORK/clip$i.mp4"
    clips+=(--add "$WORK/clip$i.mp4")
  done
else
  clips+=(--generate 3 --size 4000000)
fi
serial="ZFY$(date +%M%S)"  # 产品序号: 7 characters in ZFY_INFO
evidock simulate camera "$WORK/cam" --serial "$serial" --clock 20000101080000 --rate 20000000 "${clips[@]}"
echo

echo "== evidock dock (watching $DATA_DIR/dock): dock the camera"
mkdir -p "$DATA_DIR/dock"
EVIDOCK_LOG=info "$BIN/evidock" --data-dir "$DATA_DIR" dock 2> "$WORK/dock.log" &
DOCK_PID=$!
sleep 1
mv "$WORK/cam/card" "$DATA_DIR/dock/$serial"
for _ in $(seq 1 120); do
  if evidock sessions --json | python3 -c "import json,sys; sys.exit(0 if any(s['device']=='$serial' and s['state']=='released' for s in json.load(sys.stdin)) else 1)"; then
    break
  fi
  sleep 0.5
done
grep -E "docked|reset|safe to undock|released" "$WORK/dock.log" | sed 's/^/  dock: /' || true
echo
echo "== evidock status (the same as the status page at http://127.0.0.1:8470/, 中文/English)"
evidock status || true
echo
evidock sessions
echo
echo "== Evidence (raw camera time 2000-01-01 → corrected to today by the docking offset)"
evidock evidence list
echo
echo "== Undock, stop the dock"
mv "$DATA_DIR/dock/$serial" "$WORK/undocked"
sleep 2
kill -TERM "$DOCK_PID"; wait "$DOCK_PID" 2>/dev/null || true; DOCK_PID=
echo "== Playback copies and thumbnails (the dock makes them in the background; this makes any it left)"
evidock transcode
evidock log show | tail -n 8
echo
echo "== The stand-alone verifier on the custody log (no trust file: fingerprints printed for comparison)"
station=$(evidock station show --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["station"])')
"$BIN/evidock-verify" "$DATA_DIR/custody/$station" || true
echo
echo "== A case register with one case for this officer; the recordings are linked by corrected time"
officer=$(evidock evidence list --json | python3 -c 'import json,sys; print(next(e["officer"] for e in json.load(sys.stdin) if e["officer"]))')
case_id="晋应急罚〔$(date +%Y)〕1号"
printf 'case_id,case_type,title,officers,window_start,window_end,place\n%s,一般程序,演示案件 demo case,%s,%s,%s,演示地点\n' \
  "$case_id" "$officer" "$(date -d '-2 hour' -Iseconds)" "$(date -d '+1 hour' -Iseconds)" > "$WORK/cases.csv"
evidock case import --by admin01 "$WORK/cases.csv"
evidock case show "$case_id"
echo
echo "== Its disclosure package (证据移送), checked offline by the stand-alone verifier"
pkg="$DATA_DIR/export-$(date +%Y%m%d%H%M%S)"
evidock export --case "$case_id" --out "$pkg" --by demo
echo "-- without a trust file: only CONSISTENT with the key the package brings (exit 3)"
"$BIN/evidock-verify" "$pkg" || true
echo
echo "-- as a court does it: the station key fingerprint copied from the collection record into trust.toml"
fingerprint=$(evidock station show --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["fingerprint_sha256"])')
printf '[[station]]\nfingerprint = "%s"\n' "$fingerprint" > "$WORK/trust.toml"
"$BIN/evidock-verify" "$pkg" --trust "$WORK/trust.toml" || true
echo
echo "Open $pkg/report.html and $pkg/collection-record.html in a browser; VERIFY.md says how a court checks it."
