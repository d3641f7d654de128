#!/usr/bin/env bash
# `make run`: the embedded default end to end — a station key generated on first run, a custody
# log in the data directory, a checkpoint, and the stand-alone verifier checking the log.
set -euo pipefail
BIN=${BIN:-target/release}
DATA_DIR=${DATA_DIR:-./evidock-data}
evidock() { "$BIN/evidock" --data-dir "$DATA_DIR" "$@"; }

echo "== This station (key created on first run, mode 0600)"
evidock station show
echo
echo "== Digests in one pass (SHA-256 + SM3 + MD5) of a generated sample"
sample=$(mktemp -d)/sample.bin
head -c 8M /dev/urandom > "$sample"
evidock hash --sm3 --md5 "$sample"
echo
echo "== Seal the custody log with a signed checkpoint"
evidock log checkpoint || true
echo
echo "== The stand-alone verifier on the log (no trust file: fingerprints printed for comparison)"
station=$(evidock station show --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["station"])')
"$BIN/evidock-verify" "$DATA_DIR/custody/$station" || true
