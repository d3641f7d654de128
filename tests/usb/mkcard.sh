#!/usr/bin/env bash
# Camera-card images for the USB end-to-end test, made without root or loop devices (mtools).
#
#   tests/usb/mkcard.sh OUTDIR
#
# Writes into OUTDIR:
#   cam.img    ZFY0001's card: whole-disk FAT32 (no partition table), ZFY-style names, a 48 MiB
#              clip (long enough to pull the cable mid-copy under TCG), a Chinese long name and a
#              file whose 8.3 short name is GBK bytes (no long-name entry: needs codepage=936)
#   mbr.img    ZFY0002's card: MBR partition table, one FAT32 partition at 1 MiB
#   two.img    ZFY0003's card: MBR with two FAT32 partitions, different files on each
#   small.img  one small clip, whole-disk FAT32 (the measuring runs and the bad-input cameras)
#   stick.img  a plain USB stick for QEMU's usb-storage (46f4:0001): must never be read
#   manifest.tsv  card, partition (0 = whole disk), path, size, sha256 of every file put on a card
#
# Idempotent: skips everything when OUTDIR holds a manifest made by this same script.
set -euo pipefail
OUT=${1:?usage: mkcard.sh OUTDIR}
mkdir -p "$OUT"
STAMP=$(sha256sum "$0" | cut -c1-16)
if [ -f "$OUT/manifest.tsv" ] && [ "$(cat "$OUT/.stamp" 2>/dev/null)" = "$STAMP" ]; then
  exit 0
fi
export MTOOLS_SKIP_CHECK=1 LC_ALL=C.UTF-8
SRC=$(mktemp -d)
trap 'rm -rf "$SRC"' EXIT
MANIFEST="$OUT/manifest.tsv.new"
: > "$MANIFEST"

# new_image NAME SIZE_MIB LAYOUT: LAYOUT is "whole" or a list of partition sizes in MiB ("38 38")
new_image() {
  local img="$OUT/$1.img" size=$2; shift 2
  rm -f "$img"; truncate -s "${size}M" "$img"
  if [ "$1" = whole ]; then
    # FAT32 needs >= 65525 clusters: with 512-byte clusters (-s 1) that is ~33 MiB
    mkfs.vfat -F 32 -s 1 -n "$(echo "$(basename "$img" .img)" | tr a-z A-Z)" "$img" >/dev/null 2>&1
    return
  fi
  local start=2048 table="" n=0
  for p in "$@"; do table+="start=$start, size=$((p * 2048)), type=c"$'\n'; start=$((start + p * 2048)); done
  echo -n "$table" | sfdisk -q "$img"
  start=2048
  for p in "$@"; do
    n=$((n + 1))
    mkfs.vfat -F 32 -s 1 -n "PART$n" --offset "$start" "$img" $((p * 1024)) >/dev/null 2>&1
    start=$((start + p * 2048))
  done
}

# target CARD PART: the mtools drive spec for the whole disk (0) or partition n (its byte offset)
target() {
  local img="$OUT/$1.img"
  if [ "$2" = 0 ]; then echo "$img"; return; fi
  local off
  off=$(sfdisk -d "$img" | awk -v n="$2" -F'[=,]' '/start=/{i++; if (i==n) {gsub(/ /,"",$2); print $2*512}}')
  echo "$img@@$off"
}

# put CARD PART PATH SIZE_BYTES [MTIME]: a file of random bytes, recorded in the manifest
put() {
  local card=$1 part=$2 path=$3 bytes=$4 mtime=${5:-2026-01-01 08:30:00}
  local t name dir f
  t=$(target "$card" "$part")
  name=$(basename "$path"); dir=$(dirname "$path")
  f="$SRC/$name"
  head -c "$bytes" /dev/urandom > "$f"
  touch -d "$mtime" "$f"
  # make each directory level (mmd fails on an existing one)
  local d="" c
  IFS=/ read -ra parts <<< "$dir"
  for c in "${parts[@]}"; do
    [ -n "$c" ] && [ "$c" != . ] || continue
    d="$d/$c"
    mmd -i "$t" "::$d" 2>/dev/null || true
  done
  mcopy -m -i "$t" "$f" "::/$path"
  printf '%s\t%s\t%s\t%s\t%s\n' "$card" "$part" "$path" "$bytes" "$(sha256sum < "$f" | cut -d' ' -f1)" >> "$MANIFEST"
  rm -f "$f"
}

M=DCIM/100MEDIA
# (a) the camera's own card, whole disk
new_image cam 80 whole
put cam 0 "$M/ZFY0001_350201_20260101083000_0001.MP4" $((3 * 1048576)) "2026-01-01 08:35:00"
put cam 0 "$M/ZFY0001_350201_20260101084000_0002.MP4" $((48 * 1048576)) "2026-01-01 08:55:00"
put cam 0 "$M/ZFY0001_350201_20260101090000_0003.JPG" 524288 "2026-01-01 09:00:00"
put cam 0 "$M/执法记录_张三_20260101091000.MP4" 1048576 "2026-01-01 09:12:00"
put cam 0 "LOG/ZFY0001.TXT" 4096 "2026-01-01 09:20:00"
# a pure 8.3 name (no long-name entry), then its 11 name bytes replaced by GBK "录像01  MP4"
put cam 0 "$M/GBKNAME.MP4" 262144 "2026-01-01 09:15:00"
python3 - "$OUT/cam.img" "$MANIFEST" <<'EOF'
import sys
img, manifest = sys.argv[1], sys.argv[2]
data = bytearray(open(img, "rb").read())
old, new = b"GBKNAME MP4", "录像01".encode("gbk") + b"  MP4"
assert data.count(old) == 1 and len(new) == 11, "8.3 entry GBKNAME.MP4 not found exactly once"
i = data.index(old)
data[i:i + 11] = new
assert data[i + 12] == 0  # no lower-case flags: the name is shown as stored
open(img, "r+b").write(data)
rows = open(manifest, encoding="utf-8").read().replace("/GBKNAME.MP4\t", "/录像01.MP4\t")
open(manifest, "w", encoding="utf-8").write(rows)
EOF

# (b) MBR partition table, one FAT32 partition
new_image mbr 40 38
put mbr 1 "$M/ZFY0002_350202_20260102100000_0001.MP4" 1048576 "2026-01-02 10:05:00"
put mbr 1 "$M/ZFY0002_350202_20260102101000_0002.MP4" 524288 "2026-01-02 10:12:00"

# (c) two FAT32 partitions, different files on each
new_image two 80 38 38
put two 1 "$M/ZFY0003_350203_20260103100000_0001.MP4" 786432 "2026-01-03 10:05:00"
put two 2 "$M/ZFY0003_350203_20260103110000_0002.MP4" 655360 "2026-01-03 11:05:00"

# (d) a small whole-disk card
new_image small 40 whole
put small 0 "$M/ZFY0005_350205_20260105100000_0001.MP4" 262144 "2026-01-05 10:05:00"

# (e) a plain USB stick: not a camera, never to be read
new_image stick 40 whole
put stick 0 "DCIM/100MEDIA/STICK_0001.MP4" 393216 "2026-01-06 10:00:00"
put stick 0 "README.TXT" 1024 "2026-01-06 10:00:00"

mv "$MANIFEST" "$OUT/manifest.tsv"
echo "$STAMP" > "$OUT/.stamp"
echo "mkcard: $(wc -l < "$OUT/manifest.tsv") files on $(ls "$OUT"/*.img | wc -l) images in $OUT" >&2
