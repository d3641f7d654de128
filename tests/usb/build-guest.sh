#!/usr/bin/env bash
# Build the USB test guest (docs/usb-testing.md): a Debian kernel unpacked from its .deb, a
# busybox initramfs holding the real `evidock`, the emulated camera's firmware (zfy-gadget), the
# USB/SCSI/FAT/gadget modules, and the card images.
#
#   tests/usb/build-guest.sh WORKDIR
#
# Idempotent: each step is skipped when its inputs are unchanged (cargo decides for the binaries).
# Leaves in WORKDIR: vmlinux, initramfs.cpio.gz, cards/*.img + cards/manifest.tsv, guest.env.
# Env: CARGO (default cargo); WORKSPACE: the cargo workspace to build (default: this repository);
#      CARGO_TARGET_DIR as usual.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
W=${1:?usage: build-guest.sh WORKDIR}
mkdir -p "$W"; W=$(cd "$W" && pwd)
CARGO=${CARGO:-cargo}
WORKSPACE=${WORKSPACE:-$ROOT}
TARGET_DIR=${CARGO_TARGET_DIR:-$WORKSPACE/target}
t() { echo "[build-guest +${SECONDS}s] $*" >&2; }

t "1. host tools"
PKGS=(qemu-system-x86 busybox-static dosfstools mtools cpio kmod fdisk python3)
need=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
if [ ${#need[@]} -gt 0 ]; then
  t "   installing ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq -o DPkg::Lock::Timeout=600 \
    --no-install-recommends "${need[@]}" >/dev/null
fi

t "2. Debian kernel"
# linux-image-amd64 is a meta package: resolve the current ABI package (security updates bump it)
kpkg() { apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}'; }
KPKG=$(kpkg)
if [ -z "$KPKG" ]; then $sudo apt-get update -qq; KPKG=$(kpkg); fi
[ -n "$KPKG" ] || { echo "build-guest: cannot resolve linux-image-amd64" >&2; exit 1; }
K="$W/kernel"
# only boot/ and the module directories the guest loads from (no install, no initramfs-tools)
PARTS=(./boot/vmlinuz-\* ./lib/modules/\*/modules.order ./lib/modules/\*/modules.builtin\*)
for d in drivers/usb drivers/scsi drivers/block drivers/virtio drivers/char fs crypto lib block \
         arch/x86/crypto; do PARTS+=("./lib/modules/*/kernel/$d/*"); done
DONE="$K/$KPKG.$(echo "${PARTS[*]}" | sha256sum | cut -c1-8).done"
if [ ! -f "$DONE" ]; then
  rm -rf "$K"; mkdir -p "$K/root"
  (cd "$K" && apt-get download -o APT::Sandbox::User=root -qq "$KPKG")
  dpkg-deb --fsys-tarfile "$K"/"$KPKG"_*.deb | tar -x -C "$K/root" --wildcards "${PARTS[@]}"
  rm -f "$K"/*.deb
  KV=$(ls "$K/root/lib/modules")
  depmod -b "$K/root" "$KV"
  # An uncompressed vmlinux boots through its PVH entry point: QEMU skips the bzImage
  # decompressor, which under TCG takes about as long as the rest of the boot.
  python3 - "$K/root/boot/vmlinuz-$KV" "$K/vmlinux" <<'EOF'
import gzip, lzma, sys
data = open(sys.argv[1], "rb").read()
for magic, unpack in ((b"\xfd7zXZ\x00", lambda d: lzma.LZMADecompressor().decompress(d)),
                      (b"\x1f\x8b\x08", lambda d: gzip.GzipFile(fileobj=__import__("io").BytesIO(d)).read())):
    i = data.find(magic)
    while i >= 0:
        try:
            out = unpack(data[i:])
        except Exception:
            out = b""
        if out[:4] == b"\x7fELF":
            open(sys.argv[2], "wb").write(out)
            sys.exit(0)
        i = data.find(magic, i + 1)
sys.exit("no xz- or gzip-compressed ELF kernel inside " + sys.argv[1])
EOF
  touch "$DONE"
fi
KROOT="$K/root"
KV=$(ls "$KROOT/lib/modules")
ln -sf "$K/vmlinux" "$W/vmlinux"

t "3. evidock and the camera firmware (release)"
(cd "$WORKSPACE" && CARGO_TARGET_DIR="$TARGET_DIR" $CARGO build --release --locked -q -p evidock-ingest --no-default-features --bin evidock)
(cd "$WORKSPACE" && CARGO_TARGET_DIR="$TARGET_DIR" $CARGO build --release --locked -q -p evidock-tests --bin zfy-gadget --bin zfy-probe)
BINS=("$TARGET_DIR/release/evidock" "$TARGET_DIR/release/zfy-gadget" "$TARGET_DIR/release/zfy-probe")

t "4. card images"
"$HERE/mkcard.sh" "$W/cards"

t "5. initramfs"
MODS=$(cat "$HERE/guest/modules"; echo usb_storage)
KEY=$( { sha256sum "${BINS[@]}" /bin/busybox "$0" "$HERE"/guest/*; echo "$KPKG"; } | sha256sum | cut -c1-32)
if [ "$(cat "$W/initramfs.key" 2>/dev/null)" != "$KEY" ] || [ ! -f "$W/initramfs.cpio.gz" ]; then
  R=$(mktemp -d)
  trap 'rm -rf "$R"' EXIT
  mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,lib/modules/"$KV"}
  cp /bin/busybox "$R/bin/busybox"
  cp "$HERE/guest/init" "$R/init"
  cp "$HERE/guest/gadget.sh" "$R/bin/gadget.sh"
  cp "$HERE/guest/udev-probe" "$R/bin/udev-probe"
  cp "$HERE/guest/evidock.toml" "$R/etc/evidock.toml"
  grep -v '^#' "$HERE/guest/modules" > "$R/etc/modules"
  chmod 755 "$R/init" "$R/bin/gadget.sh" "$R/bin/udev-probe"
  for b in "${BINS[@]}"; do
    strip -o "$R/bin/$(basename "$b")" "$b"
    # the shared libraries it links (glibc, libgcc_s, …) and the dynamic loader
    ldd "$b" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' | while read -r lib; do
      mkdir -p "$R$(dirname "$lib")"; cp -L "$lib" "$R$lib"
    done
  done
  # the modules and what they depend on, resolved on the host from the unpacked tree
  for m in $MODS; do
    modprobe -d "$KROOT" -S "$KV" --show-depends "$m" 2>/dev/null | awk '$1=="insmod"{print $2}' || true
  done | sort -u | while read -r ko; do
    rel=${ko#"$KROOT"/}; mkdir -p "$R/$(dirname "$rel")"; cp "$ko" "$R/$rel"
  done
  cp "$KROOT/lib/modules/$KV/"modules.{order,builtin,builtin.modinfo} "$R/lib/modules/$KV/" 2>/dev/null || true
  depmod -b "$R" "$KV"
  (cd "$R" && find . | cpio -o -H newc --quiet | gzip -1) > "$W/initramfs.cpio.gz.new"
  mv "$W/initramfs.cpio.gz.new" "$W/initramfs.cpio.gz"
  echo "$KEY" > "$W/initramfs.key"
  t "   $(du -h "$W/initramfs.cpio.gz" | cut -f1), $(find "$R" -name '*.ko*' | wc -l) modules, kernel $KV"
fi
printf 'KERNEL=%s\nINITRD=%s\nCARDS=%s\nKPKG=%s\n' "$W/vmlinux" "$W/initramfs.cpio.gz" "$W/cards" "$KPKG" > "$W/guest.env"
t "guest ready in $W"
