#!/usr/bin/env bash
# `make deb`: the Debian package target/deb/evidock_<version>_<arch>.deb, built with dpkg-deb
# from a staged tree (what cargo-deb would do, with the tools every Debian machine has).
#
#   DEB_PROFILE=release scripts/deb.sh   (default) cargo build --release --locked --bins first
#   DEB_PROFILE=debug   scripts/deb.sh   package target/debug as it is (built by `make unit`);
#                                        tests/deb/run.sh does this
#   DEB_COMPRESS=xz|gzip|zstd|none       dpkg-deb's compressor (default: xz for release, none
#                                        for debug: a 300 MiB debug binary packs in a second)
#
# The package: /usr/bin/evidock and evidock-verify (0755), the unit /lib/systemd/system/
# evidock.service, the udev rules /lib/udev/rules.d/70-evidock.rules, the conffile
# /etc/evidock/evidock.toml, the guides in /usr/share/doc/evidock/, and the maintainer scripts
# (packaging/debian/: system user evidock, /var/lib/evidock 0750; removal keeps the evidence).
# Depends: what dpkg-shlibdeps finds the binaries link (falling back to ldd + dpkg -S), plus
# adduser (postinst), ca-certificates (HTTPS to the TSA and the store trusts the system's roots)
# and fonts-dejavu-core (the time labels on contact sheets need a font).
set -euo pipefail
cd "$(dirname "$0")/.."
umask 022
CARGO=${CARGO:-cargo}
PROFILE=${DEB_PROFILE:-release}
SRC=packaging/debian

say() { echo "deb: $*" >&2; }
die() { echo "deb: error: $*" >&2; exit 1; }

for tool in dpkg-deb dpkg-shlibdeps python3; do
  command -v "$tool" >/dev/null || die "$tool not found (Debian: apt-get install dpkg-dev python3)"
done

# Version, maintainer and target directory from cargo's own view of the workspace.
meta=$("$CARGO" metadata --format-version 1 --no-deps --offline 2>/dev/null) || meta=""
read_meta() {
  python3 -c '
import json, sys
m = json.loads(sys.stdin.read())
p = next(p for p in m["packages"] if p["name"] == "evidock-ingest")
print(p["version"]); print((p.get("authors") or [""])[0]); print(m["target_directory"])
'
}
version="" author="" target_dir=""
if [ -n "$meta" ] && info=$(printf '%s' "$meta" | read_meta); then
  { read -r version; read -r author; read -r target_dir; } <<<"$info"
fi
# Without cargo metadata, or for what a crate does not inherit (authors), the workspace's
# Cargo.toml.
workspace_key() { sed -n "/^\[workspace.package\]/,/^\[/s/^$1 *= *\[\{0,1\}\"\([^\"]*\)\".*/\1/p" Cargo.toml; }
[ -n "$version" ] || version=$(workspace_key version)
[ -n "$author" ] || author=$(workspace_key authors)
[ -n "$target_dir" ] || target_dir=${CARGO_TARGET_DIR:-$PWD/target}
[ -n "$version" ] || die "no version in cargo metadata or Cargo.toml"
# Debian orders 1.0~rc1 before 1.0, as semver orders 1.0-rc1 before 1.0.
deb_version=${version/-/\~}
maintainer=${author:-evidock engineers}
arch=$(dpkg --print-architecture)

case "$PROFILE" in
  release)
    say "cargo build --release --locked --bins"
    "$CARGO" build --release --locked --bins
    bin_dir=$target_dir/release
    compress=${DEB_COMPRESS:-xz}
    ;;
  debug)
    bin_dir=$target_dir/debug
    compress=${DEB_COMPRESS:-none}
    ;;
  *) die "DEB_PROFILE=$PROFILE: use release or debug" ;;
esac
for b in evidock evidock-verify; do
  [ -x "$bin_dir/$b" ] || die "$bin_dir/$b is missing: build it first (make unit, or cargo build --bins)"
done

out_dir=$target_dir/deb
mkdir -p "$out_dir"
deb=$out_dir/evidock_${deb_version}_${arch}.deb
# The stage is a throw-away source tree: debian/control (dpkg-shlibdeps reads it) beside
# debian/evidock/, the package's root.
stage=$(mktemp -d "$out_dir/.stage.XXXXXX")
trap 'rm -rf "$stage"' EXIT
chmod 0755 "$stage"
pkg=$stage/debian/evidock
doc=$pkg/usr/share/doc/evidock

install -d -m 0755 "$pkg/DEBIAN" "$pkg/usr/bin" "$pkg/lib/systemd/system" "$pkg/lib/udev/rules.d" \
  "$pkg/etc/evidock" "$doc/formats" "$doc/examples"
install -m 0755 "$bin_dir/evidock" "$bin_dir/evidock-verify" "$pkg/usr/bin/"
install -m 0644 "$SRC/evidock.service" "$pkg/lib/systemd/system/evidock.service"
install -m 0644 "$SRC/70-evidock.rules" "$pkg/lib/udev/rules.d/70-evidock.rules"
# Camera passwords may be in it: root:root 0640 here, the group evidock given by postinst.
install -m 0640 "$SRC/evidock.toml" "$pkg/etc/evidock/evidock.toml"
# The guides side by side, as in docs/ (README's links to docs/… point next to it).
sed 's#](docs/#](#g' README.md > "$doc/README.md"
install -m 0644 docs/*.md docs/evidock.example.toml "$doc/"
install -m 0644 docs/formats/*.md "$doc/formats/"
install -m 0644 docs/examples/* "$doc/examples/"
install -m 0644 "$SRC/copyright" "$doc/copyright"
chmod 0644 "$doc/README.md"
install -m 0755 "$SRC/postinst" "$SRC/prerm" "$SRC/postrm" "$pkg/DEBIAN/"
printf '/etc/evidock/evidock.toml\n' > "$pkg/DEBIAN/conffiles"
chmod 0644 "$pkg/DEBIAN/conffiles"

# The configuration shipped must be one the shipped binary accepts.
"$pkg/usr/bin/evidock" --config "$pkg/etc/evidock/evidock.toml" config check "$pkg/etc/evidock/evidock.toml" >&2 \
  || die "$SRC/evidock.toml does not pass evidock config check"

# Depends: the libraries' packages, as dpkg-shlibdeps reads them from their shlibs/symbols files.
cat > "$stage/debian/control" <<EOF
Source: evidock
Maintainer: $maintainer

Package: evidock
Architecture: any
EOF
shlibs=""
if out=$(cd "$stage" && dpkg-shlibdeps -O debian/evidock/usr/bin/evidock debian/evidock/usr/bin/evidock-verify 2>"$stage/shlibdeps.err"); then
  shlibs=$(printf '%s\n' "$out" | sed -n 's/^shlibs:Depends=//p')
fi
if [ -z "$shlibs" ]; then
  say "dpkg-shlibdeps failed ($(tr '\n' ' ' < "$stage/shlibdeps.err")); mapping ldd's libraries to packages with dpkg -S"
  pkgs=()
  for b in "$pkg/usr/bin/evidock" "$pkg/usr/bin/evidock-verify"; do
    needed=$(objdump -p "$b" | awk '$1 == "NEEDED" {print $2}')
    for lib in $needed; do
      # "libx.so.N => /path (addr)", or the loader's "/lib64/ld-linux-x86-64.so.2 (addr)"
      # (awk reads to the end: an early exit would cut ldd off with SIGPIPE under pipefail)
      path=$(ldd "$b" | awk -v l="$lib" '
        p == "" && $1 == l && $3 ~ /^\// {p = $3}
        p == "" && $1 ~ /^\// && substr($1, length($1) - length(l)) == "/" l {p = $1}
        END {print p}')
      [ -n "$path" ] || die "ldd does not resolve $lib of $b"
      owner=""
      for p in "$path" "$(readlink -f "$path")" "/usr$path" "${path#/usr}"; do
        owner=$(dpkg -S "$p" 2>/dev/null | awk -F: 'NR == 1 {print $1}') && [ -n "$owner" ] && break
      done
      [ -n "$owner" ] || die "no Debian package holds $path ($lib of $b)"
      pkgs+=("$owner")
    done
  done
  shlibs=$(printf '%s\n' "${pkgs[@]}" | sort -u | paste -sd, | sed 's/,/, /g')
fi
depends="$shlibs, adduser, ca-certificates, fonts-dejavu-core"

installed_size=$(du -sk --exclude=DEBIAN "$pkg" | cut -f1)
cat > "$pkg/DEBIAN/control" <<EOF
Package: evidock
Version: $deb_version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $installed_size
Depends: $depends
Recommends: udev
Section: misc
Priority: optional
Description: body-worn camera evidence station: dock, custody log, disclosure
 evidock takes evidence off law-enforcement body-worn cameras at a dock station
 and keeps it provably intact until it reaches a court. Offload starts when a
 camera is docked (USB, read-only mounts); every file is copied and hashed once,
 re-read from disk, and recorded as a signed event in an append-only custody
 log sealed by signed checkpoints and RFC 3161 time-stamps. Evidence is uploaded
 to an object store with read-back (S3 Object Lock), transcoded to playable
 copies, linked to cases, and exported as disclosure packages that a court
 checks offline with the included evidock-verify.
 .
 The package runs the dock as the systemd service evidock.service, as the
 unprivileged system user evidock with only CAP_SYS_ADMIN (read-only mounts).
EOF
chmod 0644 "$pkg/DEBIAN/control"

rm -f "$deb"
dpkg-deb --root-owner-group -Z"$compress" --build "$pkg" "$deb" >&2
say "built $deb ($PROFILE binaries from $bin_dir; Depends: $depends)"
echo "$deb"
