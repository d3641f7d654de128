#!/usr/bin/env bash
# `make deb-test`: the Debian package, installed on this machine and used as an admin would.
#
# Builds the package of the debug build (DEB_PROFILE=debug scripts/deb.sh: target/debug as
# `make unit` left it), installs it with dpkg -i (its Depends first, only those missing), and
# checks: the system user evidock, /var/lib/evidock 0750 evidock:evidock, the conffile, both
# binaries, the udev rules, `systemd-analyze verify` of the unit. Then, as user evidock with
# umask 0077 (what the unit gives the dock) it runs the unit's own ExecStart: refused with exit 2
# before `station init`, then acquiring a simulated camera docked in the mount root until the
# session is released; evidence in the spool 0440 or stricter, no directory open to others;
# SIGTERM stops the dock cleanly. Then dpkg -r keeps the evidence and the user, and dpkg --purge
# still keeps the evidence. Whatever happens, the trap purges the package and deletes the user,
# /var/lib/evidock and /etc/evidock again — so this runs only where no real station lives
# (it refuses a non-empty /var/lib/evidock that an earlier run of this test did not make). The systemd sandbox itself (capabilities, seccomp, device policy) needs a running
# systemd and is not exercised here (docs/install.md says how it was checked).
#
# Needs root. One line per check; exits non-zero at the first failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
CARGO=${CARGO:-cargo}

DATA=/var/lib/evidock
ETC=/etc/evidock
CONF=$ETC/evidock.toml
UNIT=/lib/systemd/system/evidock.service
RULES=/lib/udev/rules.d/70-evidock.rules
# Written before the package is installed, removed after the clean-up: what a rerun may delete.
MARK=/var/tmp/evidock-deb-test.installed
# Logs and clips of this run (kept only while it runs; a rerun clears what a killed run left).
WORK_DIR=/var/tmp/evidock-deb-test.work

ok() { echo "ok    $*"; }
skip() { echo "skip  $*"; }
fail() {
  echo "FAIL  $*" >&2
  exit 1
}
check() {
  local what=$1
  shift
  if "$@"; then ok "$what"; else fail "$what"; fi
}

[ "$(id -u)" = 0 ] || fail "tests/deb/run.sh installs a package: run it as root"
for tool in dpkg dpkg-deb setpriv systemd-analyze ffmpeg python3 timeout; do
  command -v "$tool" >/dev/null || fail "$tool not found (scripts/deps.sh test installs what the tests need)"
done

# --- the package -------------------------------------------------------------------------------
t_build=$SECONDS
deb=$(DEB_PROFILE=debug CARGO="$CARGO" scripts/deb.sh)
t_build=$((SECONDS - t_build))
check "package built: ${deb#"$ROOT"/} (${t_build} s)" test -f "$deb"
# The shipped configuration names every key of docs/config.md (commented out where it is not
# the default), so that an admin finds each one where it is used.
missing=$(python3 - packaging/debian/evidock.toml docs/config.md <<'EOF_PY'
import re, sys, tomllib
text = open(sys.argv[1], encoding="utf-8").read()
every = tomllib.loads(re.sub(r"(?m)^#(\[|[a-z_]+ = )", r"\1", text))
keys = set()
def walk(prefix, v):
    if isinstance(v, dict) and prefix != "cases.columns":
        for k, x in v.items():
            walk(f"{prefix}.{k}" if prefix else k, x)
    elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
        for x in v:
            walk(prefix, x)
    else:
        keys.add(prefix)
walk("", every)
documented = set()
for line in open(sys.argv[2], encoding="utf-8"):
    if line.startswith("| `"):
        documented.update(line.split("|")[1].split("`")[1::2])
print(" ".join(sorted(documented - keys)))
EOF_PY
) || fail "packaging/debian/evidock.toml with every key uncommented is TOML"
[ -z "$missing" ] || fail "packaging/debian/evidock.toml names every key of docs/config.md (missing: $missing)"
ok "packaging/debian/evidock.toml names every key of docs/config.md"
T0=$SECONDS

# --- a clean machine, also after an earlier run that failed -------------------------------------
if [ ! -e "$MARK" ] && [ -d "$DATA" ] && [ -n "$(ls -A "$DATA")" ]; then
  fail "$DATA holds files this test did not make (a station?): refusing to install over it and delete it afterwards"
fi
dock_pid=""
WORK=""
remove_all() {
  if dpkg-query -W evidock >/dev/null 2>&1; then
    dpkg --purge evidock >/dev/null 2>&1 || true
  fi
  if getent passwd evidock >/dev/null; then userdel evidock 2>/dev/null || true; fi
  if getent group evidock >/dev/null; then groupdel evidock 2>/dev/null || true; fi
  rm -rf "$DATA" "$ETC"
}
cleanup() {
  local rc=$?
  set +e
  if [ -n "$dock_pid" ] && kill -0 "$dock_pid" 2>/dev/null; then
    kill -TERM "$dock_pid" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$dock_pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$dock_pid" 2>/dev/null
    wait "$dock_pid" 2>/dev/null
  fi
  if [ $rc -ne 0 ] && [ -n "$WORK" ] && [ -s "$WORK/dock.log" ]; then
    echo "--- the dock's log (last 40 lines):" >&2
    tail -n 40 "$WORK/dock.log" >&2
  fi
  remove_all
  rm -f "$MARK"
  [ -z "$WORK" ] || rm -rf "$WORK"
  if [ $rc -eq 0 ]; then
    echo "deb-test: all passed in $((SECONDS - T0)) s (plus ${t_build} s to build the package)"
  else
    echo "deb-test: FAILED (exit $rc) after $((SECONDS - T0)) s; the package, user evidock, $DATA and $ETC were removed" >&2
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
if dpkg-query -W evidock >/dev/null 2>&1 || [ -e "$DATA" ] || [ -e "$ETC" ] || getent passwd evidock >/dev/null; then
  echo "note  an earlier install or run left evidock here: purging it first"
fi
remove_all
: > "$MARK"
WORK=$WORK_DIR
rm -rf "$WORK"
mkdir -m 0711 "$WORK" # user evidock reads the clips made here, nothing else

# --- its Depends, then dpkg -i ------------------------------------------------------------------
need=()
IFS=',' read -ra deps <<<"$(dpkg-deb -f "$deb" Depends)"
for dep in "${deps[@]}"; do
  found=""
  IFS='|' read -ra alts <<<"$dep"
  for alt in "${alts[@]}"; do
    name=$(echo "$alt" | awk '{print $1}')
    if dpkg-query -W -f='${Status}' "$name" 2>/dev/null | grep -q "install ok installed"; then found=$name; break; fi
  done
  [ -n "$found" ] || need+=("$(echo "${alts[0]}" | awk '{print $1}')")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "note  installing the package's missing Depends: ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
ok "Depends installed (${#deps[@]} packages${need[*]:+; installed now: ${need[*]}})"

t=$SECONDS
dpkg -i "$deb" >"$WORK/dpkg-i.log" 2>&1 || { cat "$WORK/dpkg-i.log" >&2; fail "dpkg -i $(basename "$deb")"; }
ok "dpkg -i $(basename "$deb") ($((SECONDS - t)) s)"
check "postinst says how to make the station" grep -q "station init" "$WORK/dpkg-i.log"

# --- what the package installed -----------------------------------------------------------------
pw=$(getent passwd evidock) || fail "user evidock exists"
IFS=: read -r _ _ uid gid _ home shell <<<"$pw"
[ "$(getent group evidock | cut -d: -f3)" = "$gid" ] || fail "user evidock's primary group is evidock"
[ "$uid" -ge 100 ] && [ "$uid" -le 999 ] || fail "user evidock is a system user (uid $uid not in 100–999)"
[ "$home" = "$DATA" ] || fail "user evidock's home is $DATA (it is $home)"
case "$shell" in */nologin | /bin/false) ;; *) fail "user evidock has no login shell (it has $shell)" ;; esac
ok "system user evidock (uid $uid, group evidock, home $home, shell $shell)"
check "$DATA is 0750 evidock:evidock" test "$(stat -c '%a %U %G' "$DATA")" = "750 evidock evidock"
check "$CONF exists" test -f "$CONF"
check "dpkg lists $CONF as a conffile" bash -c "dpkg-query -W -f='\${Conffiles}\n' evidock | awk '{print \$1}' | grep -qx '$CONF'"
check "$CONF is readable by group evidock only ($(stat -c '%a %U:%G' "$CONF"))" test "$(stat -c '%a %U %G' "$CONF")" = "640 root evidock"
version=$(dpkg-query -W -f='${Version}' evidock)
check "/usr/bin/evidock --version: $(/usr/bin/evidock --version)" test "$(/usr/bin/evidock --version)" = "evidock ${version/\~/-}"
check "/usr/bin/evidock-verify --version: $(/usr/bin/evidock-verify --version)" test "$(/usr/bin/evidock-verify --version)" = "evidock-verify ${version/\~/-}"
check "/usr/bin/evidock and evidock-verify are 0755 root:root" test "$(stat -c '%a %U %G' /usr/bin/evidock /usr/bin/evidock-verify | sort -u)" = "755 root root"
check "udev rules installed ($RULES)" test -f "$RULES"
check "udev rules give group evidock the ZFY vendor interface (ff/5a/01) and its disks" \
  test "$(grep -c '^SUBSYSTEM==.*ENV{ID_USB_INTERFACES}=="\*:ff5a01:\*".*GROUP="evidock"' "$RULES")" = 2
if command -v udevadm >/dev/null && [ -d /sys/devices/virtual/mem/null ]; then
  udevadm test --action=add /sys/devices/virtual/mem/null >"$WORK/udev.log" 2>&1 || true
  grep -q "^Reading rules file: .*/70-evidock.rules" "$WORK/udev.log" || fail "udevadm test reads $RULES"
  complaints=$(grep "70-evidock.rules" "$WORK/udev.log" | grep -v "^Reading rules file" || true)
  [ -z "$complaints" ] || { echo "$complaints" >&2; fail "udevadm test reads $RULES without complaint"; }
  ok "udevadm test reads $RULES without complaint"
else
  skip "udevadm test of $RULES (udev is not installed here)"
fi
check "the guides are in /usr/share/doc/evidock" test -f /usr/share/doc/evidock/install.md -a -f /usr/share/doc/evidock/copyright

check "unit installed ($UNIT)" test -f "$UNIT"
if ! systemd-analyze verify "$UNIT" >"$WORK/verify.log" 2>&1; then
  cat "$WORK/verify.log" >&2
  fail "systemd-analyze verify $UNIT"
fi
if grep -E "evidock\.service|Unknown|ignoring|Failed|Invalid" "$WORK/verify.log" >&2; then
  fail "systemd-analyze verify $UNIT: no warning about the unit"
fi
ok "systemd-analyze verify $UNIT: no error, no warning"

# --- the unit's ExecStart, run as the unit runs it (user evidock, umask 0077, its Environment=) --
exec_lines=$(sed -n 's/^ExecStart=//p' "$UNIT")
[ "$(printf '%s\n' "$exec_lines" | grep -c .)" = 1 ] || fail "the unit has one ExecStart="
exec_line=$exec_lines
while [[ $exec_line == [-@:+!]* ]]; do exec_line=${exec_line:1}; done # systemd's prefixes
case "$exec_line" in *[\"\'\$%\\]*) fail "ExecStart uses quoting or specifiers this test does not parse: $exec_line" ;; esac
read -ra exec_cmd <<<"$exec_line"
env_args=()
while IFS= read -r e; do
  case "$e" in *[\"\'\$%\\\ ]*) fail "Environment= uses quoting or specifiers this test does not parse: $e" ;; esac
  env_args+=("$e")
done < <(sed -n 's/^Environment=//p' "$UNIT")
ok "ExecStart: ${exec_cmd[*]} (environment: ${env_args[*]:-none})"
evidock_bin=${exec_cmd[0]}

# Like the unit: as evidock:evidock with its groups, a fresh environment, umask 0077, from /.
as_evidock() {
  setpriv --reuid=evidock --regid=evidock --init-groups --reset-env -- \
    /bin/sh -c 'cd / && umask 0077 && exec "$@"' sh "$@"
}
evidock_cli() { as_evidock "$evidock_bin" --config "$CONF" --data-dir "$DATA" "$@"; }

# No station yet: the dock must refuse at once (exit 2, naming the data directory), so that
# RestartPreventExitStatus=2 leaves the unit failed with the reason in the journal.
rc=0
timeout 60 setpriv --reuid=evidock --regid=evidock --init-groups --reset-env -- \
  /bin/sh -c 'cd / && umask 0077 && exec "$@"' sh env "${env_args[@]}" "${exec_cmd[@]}" \
  >"$WORK/nostation.out" 2>"$WORK/nostation.err" || rc=$?
if [ $rc -ne 2 ] || ! grep -q "$DATA" "$WORK/nostation.err"; then
  cat "$WORK/nostation.err" >&2
  [ $rc -ne 124 ] || echo "(it was still running after 60 s: it started without a station)" >&2
  fail "ExecStart without a station exits 2 naming $DATA (it exited $rc)"
fi
ok "ExecStart without a station exits 2: $(grep -m1 "$DATA" "$WORK/nostation.err" | cut -c1-150)"

if ! evidock_cli station init >"$WORK/init.out" 2>"$WORK/init.err"; then
  cat "$WORK/init.out" "$WORK/init.err" >&2
  fail "evidock station init as user evidock"
fi
ok "evidock --config $CONF --data-dir $DATA station init (as evidock): $(head -n1 "$WORK/init.out")"
check "$DATA/station.key is 0600 evidock:evidock" test "$(stat -c '%a %U %G' "$DATA/station.key")" = "600 evidock evidock"
# Root on the installed station would leave files there the service cannot use: refused, exit 2,
# and nothing made.
set +e
"$evidock_bin" --config "$CONF" --data-dir "$DATA" status >"$WORK/root.out" 2>"$WORK/root.err"
rc=$?
set -e
check "evidock as root on the station of user evidock exits 2 ($rc) and says so" \
  bash -c "[ $rc = 2 ] && grep -q 'belongs to another user' '$WORK/root.err'"
check "and left no file of root in $DATA" bash -c "[ -z \"\$(find '$DATA' -user root)\" ]"

# The mount root the installed configuration gives (default: <data dir>/dock).
mount_root=$(python3 -c '
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    print(tomllib.load(f).get("dock", {}).get("mount_root", sys.argv[2] + "/dock"))
' "$CONF" "$DATA")

setpriv --reuid=evidock --regid=evidock --init-groups --reset-env -- \
  /bin/sh -c 'cd / && umask 0077 && exec "$@"' sh env "${env_args[@]}" "${exec_cmd[@]}" \
  >"$WORK/dock.out" 2>"$WORK/dock.log" &
dock_pid=$!
ready='^evidock dock: station .* watching '
for _ in $(seq 1 150); do
  grep -q "$ready" "$WORK/dock.log" && break
  kill -0 "$dock_pid" 2>/dev/null || break
  sleep 0.2
done
kill -0 "$dock_pid" 2>/dev/null || fail "the dock (ExecStart) keeps running"
grep -q "$ready" "$WORK/dock.log" || fail "the dock says what it watches within 30 s"
[ "$(ps -o user= -p "$dock_pid")" = evidock ] || fail "the dock runs as user evidock"
ok "the dock runs as evidock (pid $dock_pid, user $(ps -o user= -p "$dock_pid")): $(grep -m1 "$ready" "$WORK/dock.log" | cut -c1-120)"

# A simulated camera with two short clips, docked by moving its card into the mount root.
for i in 1 2; do
  ffmpeg -loglevel error -f lavfi -i "testsrc2=size=320x240:rate=25:duration=2" \
    -f lavfi -i "sine=frequency=$((400 * i)):duration=2" \
    -c:v libx264 -preset ultrafast -pix_fmt yuv420p -c:a aac -shortest "$WORK/clip$i.mp4"
  chmod 0644 "$WORK/clip$i.mp4"
done
serial="ZFY$(date +%M%S)"
camera=$DATA/.deb-test-camera
evidock_cli simulate camera "$camera" --serial "$serial" --add "$WORK/clip1.mp4" --add "$WORK/clip2.mp4" 2>"$WORK/sim.err" \
  || { cat "$WORK/sim.err" >&2; fail "evidock simulate camera"; }
as_evidock mv "$camera/card" "$mount_root/$serial" || fail "move the card into $mount_root as evidock"
ok "simulated camera $serial (2 clips) docked at $mount_root/$serial"

released=""
t=$SECONDS
while [ $((SECONDS - t)) -lt 120 ]; do
  if evidock_cli sessions --json 2>/dev/null | python3 -c '
import json, sys
sys.exit(0 if any(s.get("device") == sys.argv[1] and s.get("state") == "released" for s in json.load(sys.stdin)) else 1)
' "$serial"; then
    released=yes
    break
  fi
  kill -0 "$dock_pid" 2>/dev/null || fail "the dock keeps running while it acquires"
  sleep 0.5
done
[ -n "$released" ] || { evidock_cli sessions >&2 || true; fail "evidock sessions shows $serial released within 120 s"; }
ok "evidock sessions --json: $serial released ($((SECONDS - t)) s)"

n=$(find "$DATA/spool/sha256" -type f | wc -l)
[ "$n" -ge 2 ] || fail "the spool holds the camera's files (found $n)"
loose=$(find "$DATA/spool/sha256" -type f -perm /0337 -printf '%m %p\n')
[ -z "$loose" ] || { echo "$loose" >&2; fail "evidence in the spool is 0440 or stricter"; }
open_files=$(find "$DATA/spool" -type f -perm /o=rwx -printf '%m %p\n')
[ -z "$open_files" ] || { echo "$open_files" >&2; fail "no file in the spool is open to others"; }
ok "$n evidence files in $DATA/spool, each 0440 or stricter ($(find "$DATA/spool/sha256" -type f -printf '%m\n' | sort -u | paste -sd' '))"
open_dirs=$(find "$DATA" -type d -perm /o=rwx -printf '%m %p\n')
[ -z "$open_dirs" ] || { echo "$open_dirs" >&2; fail "no directory under $DATA is open to others"; }
ok "no directory under $DATA is open to others ($(find "$DATA" -type d | wc -l) directories)"
[ "$(stat -c '%U' "$DATA/spool")" = evidock ] || fail "the spool belongs to evidock"

# SIGTERM, as systemctl stop sends it (KillSignal=SIGTERM): copies finished, log sealed, exit.
# A dock stopped by a signal exits 0, or 143 (128 + SIGTERM) once evidock gives signal exit codes
# — the unit's SuccessExitStatus=143 counts that as a clean stop too.
kill -TERM "$dock_pid"
t=$SECONDS
while kill -0 "$dock_pid" 2>/dev/null && [ $((SECONDS - t)) -lt 120 ]; do sleep 0.2; done
kill -0 "$dock_pid" 2>/dev/null && fail "the dock stops within 120 s of SIGTERM (TimeoutStopSec=120)"
rc=0
wait "$dock_pid" || rc=$?
dock_pid=""
[ $rc -eq 0 ] || [ $rc -eq 143 ] || fail "the dock exits 0 or 143 on SIGTERM (it exited $rc)"
ok "SIGTERM: the dock stopped in $((SECONDS - t)) s, exit $rc"
if evidock_cli log verify >"$WORK/verify-log.out" 2>&1; then
  ok "evidock log verify: the custody log verifies after the stop"
else
  cat "$WORK/verify-log.out" >&2
  fail "evidock log verify after the stop"
fi

# --- dpkg -r: the program goes, the evidence and its owner stay ---------------------------------
spool_before=$(find "$DATA/spool" -type f | wc -l)
dpkg -r evidock >"$WORK/dpkg-r.log" 2>&1 || { cat "$WORK/dpkg-r.log" >&2; fail "dpkg -r evidock"; }
ok "dpkg -r evidock"
check "/usr/bin/evidock is gone" test ! -e /usr/bin/evidock
check "the unit and the udev rules are gone" test ! -e "$UNIT" -a ! -e "$RULES"
check "$DATA/station.key is still there" test -f "$DATA/station.key"
check "the spool is still there ($spool_before files)" test "$(find "$DATA/spool" -type f | wc -l)" = "$spool_before"
check "user evidock is still there" bash -c 'getent passwd evidock >/dev/null'
check "$DATA still belongs to evidock, 0750" test "$(stat -c '%a %U %G' "$DATA")" = "750 evidock evidock"
check "$CONF is kept by dpkg -r (a conffile)" test -f "$CONF"

# --- dpkg --purge: the configuration goes, never the evidence -----------------------------------
dpkg --purge evidock >"$WORK/dpkg-purge.log" 2>&1 || { cat "$WORK/dpkg-purge.log" >&2; fail "dpkg --purge evidock"; }
ok "dpkg --purge evidock"
check "purge says the evidence is kept: $(grep -m1 'evidence is kept' "$WORK/dpkg-purge.log" | cut -c1-100)" grep -q "evidence is kept" "$WORK/dpkg-purge.log"
check "$CONF is gone after purge" test ! -e "$CONF"
check "$DATA/station.key and the spool are still there after purge" \
  test -f "$DATA/station.key" -a "$(find "$DATA/spool" -type f | wc -l)" = "$spool_before"
# The trap now deletes the user, /var/lib/evidock and /etc/evidock: this machine as it was.
