#!/bin/sh
# Build the station with its crash points (store/src/crash.rs) into target/crash/, apart from the
# normal build: cargo unifies features across a workspace build, so the feature must never be
# enabled where target/debug is built. The dependencies are the same as target/debug's (same
# features, same profile), so the new target directory is first seeded with them (workspace
# crates left out): only the workspace's own crates are compiled. The libraries are hard links,
# not copies (a second copy of every dependency is gigabytes of a CI disk): rustc writes an
# rlib or rmeta under a new name and renames it into place, so a rebuild in either directory
# leaves the other's link as it was. Build-script directories are copied: cargo and build
# scripts rewrite files there in place.
set -eu
cd "$(dirname "$0")/.."
CARGO=${CARGO:-cargo}
src=target/debug
dst=target/crash/debug
mkdir -p "$dst/deps" "$dst/build" "$dst/.fingerprint"
# Two builds at once (two tests of one run, or a test and `make`) would copy the same seed and
# trip over each other's files: one at a time.
exec 9>target/crash/.seed.lock
flock 9
if [ -d "$src/deps" ]; then
  for d in build .fingerprint; do
    for e in "$src/$d"/*; do
      [ -e "$e" ] || continue
      case $(basename "$e") in evidock*) continue ;; esac
      [ -e "$dst/$d/$(basename "$e")" ] || cp -a "$e" "$dst/$d/"
    done
  done
  find "$src/deps" -maxdepth 1 -type f \( -name 'lib*.rlib' -o -name 'lib*.rmeta' -o -name 'lib*.so' \) \
    ! -name 'libevidock*' -exec cp -a -l -n {} "$dst/deps/" \;
  find "$src/deps" -maxdepth 1 -type f -name '*.d' ! -name 'libevidock*' ! -name 'evidock*' \
    -exec cp -a -n {} "$dst/deps/" \;
fi
exec "$CARGO" build --quiet --locked --workspace --bins --features evidock-ingest/crash-points --target-dir target/crash
