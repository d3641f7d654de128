#!/usr/bin/env python3
"""USB end-to-end test of `evidock dock` (docs/usb-testing.md).

One QEMU guest (TCG) runs the real `evidock dock` with libusb hot-plug. An emulated ZFY camera
(dummy_hcd + configfs gadget: VID/PID 2fe3:0c01, a read-only mass-storage LUN and the vendor
interface of docs/formats/camera-protocol.md served by zfy-gadget) is plugged and unplugged by
binding its UDC; a plain QEMU usb-storage stick (46f4:0001) is hot-plugged on xHCI over QMP.
Every assertion is a named check; the last line is `N passed, N failed`.

usage: e2e.py [--work DIR] [--measure N]
  --work     where build-guest.sh left the guest (default: target/usb-e2e)
  --measure  plug/unplug cycles of the latency measurement (default 10)
  --no-udev  a station without systemd-udev: the guest kernel does not poll removable disks for
             media and nothing probes a disk on a media change (by default /init stands in for
             what udev does on a Debian station)
"""

import argparse
import datetime
import os
import re
import shlex
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from vmctl import Vm  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))
EV = "evidock --data-dir /data --config /etc/evidock.toml"
VID, PID = "2fe3", "0c01"
YEAR_MS = 365.25 * 86400 * 1000
CST = datetime.timezone(datetime.timedelta(hours=8))  # the guest station's utc_offset

results = []
timings = {}


def check(name, ok, detail=""):
    results.append((name, bool(ok)))
    print(f"{'PASS' if ok else 'FAIL'}: {name}" + (f" — {detail}" if detail else ""), flush=True)
    return bool(ok)


def timing(name, seconds):
    timings.setdefault(name, []).append(seconds)


def load_manifest(cards):
    m = {}
    with open(os.path.join(cards, "manifest.tsv"), encoding="utf-8") as f:
        for line in f:
            card, part, path, size, sha = line.rstrip("\n").split("\t")
            m.setdefault(card, []).append({"part": int(part), "path": path,
                                           "size": int(size), "sha256": sha})
    return m


def camera(serial, card, password="000000", *extra):
    """zfy-gadget arguments for a camera with its card."""
    return ["--image", f"/cards/{card}.img", "--serial", serial,
            "--officer", "3502" + serial[-2:], "--user-name", "张三",
            "--unit-number", "350500000001", "--unit-name", "应急管理局",
            "--password", password, "--clock", "20000101080000", "--drift-ppm", "200",
            "--battery", "70", *extra]


class Guest:
    def __init__(self, vm):
        self.vm = vm

    def gadget(self, args):
        self.vm.out("gadget.sh start " + " ".join(shlex.quote(a) for a in args), 30)

    def plug(self):
        t = time.monotonic()
        self.vm.out("gadget.sh plug")
        return t

    def unplug(self):
        t = time.monotonic()
        self.vm.out("gadget.sh unplug")
        return t

    def sessions(self):
        return self.vm.json(f"{EV} sessions --json")

    def evidence(self):
        return self.vm.json(f"{EV} evidence list --json")

    def events(self):
        return self.vm.json(f"{EV} log show --json")

    def log(self, pattern, start, timeout):
        """The first dock/gadget log line (host time, text) matching `pattern` after `start`."""
        hit = self.vm.logs.wait(pattern, timeout, start)
        return (hit[1], hit[2]) if hit else (None, None)

    def mounts(self):
        return [l for l in self.vm.out("cat /proc/mounts").splitlines() if "/media/evidock" in l]


def of_device(rows, serial):
    return [r for r in rows if r.get("device") == serial]


def acquired_events(events, serial):
    return [e for e in events if e.get("kind") == "acquired"
            and e.get("payload", {}).get("device") == serial]


def short(text, n=160):
    return text if len(text) <= n else text[:n] + "…"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default=os.path.join(ROOT, "target", "usb-e2e"))
    ap.add_argument("--measure", type=int, default=10)
    ap.add_argument("--no-udev", action="store_true",
                    help="a station without udev: no media polling, no probe on media change")
    args = ap.parse_args()
    work = os.path.abspath(args.work)
    cards = os.path.join(work, "cards")
    manifest = load_manifest(cards)
    t_start = time.monotonic()
    run_dir = os.path.join(work, "run")
    disk_names = ["cam", "mbr", "two", "small"]
    vm = Vm.start(run_dir, os.path.join(work, "vmlinux"), os.path.join(work, "initramfs.cpio.gz"),
                  disks=[(n, os.path.join(cards, n + ".img")) for n in disk_names],
                  append=f"evidock_test.udev={0 if args.no_udev else 1}")
    g = Guest(vm)
    try:
        boot = vm.wait_ready()
        timing("boot to shell", boot)
        print(f"guest up in {boot:.1f} s; logs in {run_dir}", flush=True)
        scenarios(g, vm, manifest, cards, args.measure)
    except Exception as e:  # a harness failure is a failed check, and the summary still prints
        check("harness ran to the end", False, f"{type(e).__name__}: {e}")
    finally:
        try:
            with open(os.path.join(run_dir, "dmesg.log"), "w") as f:
                f.write(vm.out("dmesg", 20))
        except Exception:
            pass
        vm.stop()
    for name, values in timings.items():
        med = statistics.median(values)
        print(f"TIMING {name}: median {med:.2f} s over {len(values)} "
              f"(min {min(values):.2f}, max {max(values):.2f})")
    print(f"TIMING whole run: {time.monotonic() - t_start:.1f} s")
    passed = sum(ok for _, ok in results)
    print(f"{passed} passed, {len(results) - passed} failed")
    return 0 if passed == len(results) and results else 1


OUTCOME = (r"safe to undock|camera stopped with an error|session interrupted|camera not read|"
           r"camera refused")


def scenarios(g, vm, manifest, cards, measure_cycles):
    """Each scenario is independent: one that breaks the harness is a failed check, and the
    camera is unplugged before the next one starts."""
    vm.out(f"gadget.sh setup 0x{VID} 0x{PID} ZFY0001")
    steps = [
        ("emulated camera alone", lambda: emulated_camera(g, vm)),
        ("station start", lambda: start_station(g, vm)),
        ("plain USB stick", lambda: plain_stick(g, vm, manifest, cards)),
        ("ZFY0001 with a pull mid-copy", lambda: pull_mid_copy(g, vm, manifest)),
        ("wrong password", lambda: wrong_password(g, vm)),
        ("not on the allow-list", lambda: not_allow_listed(g, vm)),
        ("mute camera", lambda: mute_camera(g, vm)),
        ("stalling camera", lambda: stalling_camera(g, vm)),
        ("partition layouts", lambda: partition_layouts(g, vm, manifest)),
        ("pulled before mount", lambda: pulled_before_mount(g, vm)),
        ("latency", lambda: latency(g, vm, manifest, measure_cycles)),
        ("without udev", lambda: without_udev(g, vm, manifest)),
    ]
    for name, step in steps:
        try:
            step()
        except Exception as e:
            check(f"{name}: harness ran through", False, f"{type(e).__name__}: {e}")
            if name == "station start":
                return
            try:
                g.unplug()
            except Exception:
                pass
    vm.sh("kill $(cat /run/dock.pid)")


def emulated_camera(g, vm):
    """The camera alone (no station yet): zfy-probe speaks the protocol to it."""
    g.gadget(camera("ZFY0001", "cam"))
    g.plug()
    _, bad = vm.sh("zfy-probe --wait 10 --password 123456 info", 30)
    _, good = vm.sh("zfy-probe --wait 10 info time battery", 30)
    g.unplug()
    text = "\n".join(bad + good)
    check("emulated camera: wrong password answered with status 1, identity/clock/battery "
          "with status 0",
          "code=0x01 status=1" in text
          and "serial=ZFY0001 officer=350201 user=张三" in text
          and re.search(r"clock=20000101080\d{3}", text) and "battery=70" in text,
          short(" | ".join(l for l in bad + good
                           if l.startswith("PROBE ") and not l.startswith("PROBE device ")
                           or "panicked" in l), 400))


def start_station(g, vm):
    mark = vm.logs.mark()
    vm.out(f"EVIDOCK_LOG=info sh -c 'echo $$ > /run/dock.pid; exec {EV} dock --init' </dev/null 2>&1 "
           "| tee -a /run/dock.log >/dev/hvc1 &")
    _, line = g.log(r"evidock dock: station", mark, 60)
    if not check("evidock dock starts with USB detection", line is not None
                 and not vm.logs.since(mark, "USB detection unavailable"),
                 short(line or "no start line")):
        raise RuntimeError("the station did not start")
    time.sleep(1)


def plain_stick(g, vm, manifest, cards):
    """A QEMU usb-storage stick: no profile names 46f4:0001, so it must not be read."""
    events_before = len(g.events())
    mark = vm.logs.mark()
    t = vm.plug_stick("stick", os.path.join(cards, "stick.img"), "STICK0001")
    t_ign, line = g.log(r"usb device ignored.*46f4", mark, 30)
    check("plain USB stick 46f4:0001 seen and ignored (logged once)",
          line is not None and len(vm.logs.since(mark, r"usb device ignored.*46f4")) == 1,
          short(line or "no 'ignored' line"))
    if t_ign:
        timing("stick plug -> seen (ignored)", t_ign - t)
    # give the guest time to bind usb-storage, and the station time to (wrongly) react
    vm.out("i=0; while [ $i -lt 50 ] && ! ls /sys/block | grep -q sd; do usleep 100000; "
           "i=$((i+1)); done; sleep 2")
    stick_disk = vm.out("for b in /sys/block/sd*; do [ -e $b ] && ! readlink -f $b | "
                        "grep -q dummy_hcd && echo ${b##*/}; done; true").strip()
    mounted = g.mounts()
    vm.unplug_stick("stick")
    time.sleep(1)
    ev_after = g.events()
    stick_sha = {f["sha256"] for f in manifest["stick"]}
    sessions = g.sessions()
    check("plain USB stick not read (its disk appeared; no mount, no session, no custody event)",
          stick_disk and not mounted and not sessions and len(ev_after) == events_before
          and not any(e.get("payload", {}).get("digests", {}).get("sha256") in stick_sha
                      for e in ev_after),
          f"guest disk {stick_disk or '?'}; mounts={mounted} sessions={len(sessions)} "
          f"events {events_before}->{len(ev_after)}")


def pull_mid_copy(g, vm, manifest):
    """ZFY0001: dock, pull the cable mid-copy, re-dock, resume."""
    g.gadget(camera("ZFY0001", "cam"))
    mark = vm.logs.mark()
    t_plug = g.plug()
    t_arr, line = g.log(r"usb device arrived", mark, 30)
    check("camera arrival seen (VID/PID, slot)",
          line is not None and VID in line and re.search(r"slot=usb-\d", line), short(line or ""))
    if t_arr:
        timing("80 MiB card: plug -> arrival", t_arr - t_plug)
    t_dock, line = g.log(r"camera docked", mark, 60)
    if t_dock:
        timing("80 MiB card: plug -> camera docked", t_dock - t_plug)
    t_mnt, line = g.log(r"card mounted read-only|" + OUTCOME, mark, 60)
    if t_mnt and "card mounted read-only" in line:
        timing("80 MiB card: plug -> card mounted (copy starts)", t_mnt - t_plug)
    # pull the cable once 20 MiB came off the card: inside the 48 MiB clip (the files before it
    # total 3 MiB), whichever order the station copies in; give up after 60 s
    _, out = vm.sh("end=$(($(date +%s) + 60)); r=0; while [ $(date +%s) -lt $end ]; do "
                   "d=$(gadget.sh disk); [ -n \"$d\" ] && r=$(awk '{print $3}' /sys/block/$d/stat) "
                   "&& [ $r -gt 40960 ] && break; usleep 20000; done; echo read=$r; "
                   "gadget.sh unplug", 120)
    found = re.search(r"read=(\d+)", "\n".join(out))
    sectors = int(found.group(1)) if found else 0
    g.log(r"usb device left", mark, 30)
    _, line = g.log(OUTCOME, mark, 60)
    mid = of_device(g.sessions(), "ZFY0001")
    check("cable pulled mid-copy: session interrupted",
          sectors > 40960 and line is not None and "session interrupted" in line
          and any(s["state"] == "interrupted" for s in mid),
          f"{sectors * 512 // 1048576} MiB read when pulled; " + short(line or "no outcome line")
          + f"; states={[s['state'] for s in mid]}")
    partial = len(acquired_events(g.events(), "ZFY0001"))

    mark = vm.logs.mark()
    t_plug = g.plug()
    t_rel, line = g.log(OUTCOME, mark, 180)
    ok = line is not None and "safe to undock" in line
    if ok:
        timing("80 MiB card: re-plug -> released (resumed copy)", t_rel - t_plug)
    check("re-plugged camera acquired to the end (released)", ok, short(line or "timeout"))
    sessions = of_device(g.sessions(), "ZFY0001")
    events = g.events()
    evidence = of_device(g.evidence(), "ZFY0001")
    want = {f["sha256"]: f["path"] for f in manifest["cam"]}
    got = [e["sha256"] for e in evidence]
    check("every file of ZFY0001's card acquired once with the right SHA-256",
          sorted(got) == sorted(want),
          f"{len(got)} evidence items, {len(set(got) & set(want))}/{len(want)} digests match; "
          f"missing: {[want[s] for s in want if s not in got]}")
    acq = acquired_events(events, "ZFY0001")
    shas = [e["payload"].get("digests", {}).get("sha256") for e in acq]
    resumed = [e["payload"] for e in acq if (e["payload"].get("resumed_at") or 0) > 0]
    check("interrupted copy resumed: an acquired event with resumed_at > 0, each file "
          "acquired exactly once",
          resumed and len(shas) == len(set(shas)) == len(want),
          f"{partial} acquired before the pull; resumed: "
          + ", ".join(f"{r.get('path')} at {r.get('resumed_at')}" for r in resumed)
          + f"; acquired events {len(shas)} for {len(want)} files")
    check("sessions of ZFY0001: interrupted, then released",
          any(s["state"] == "interrupted" for s in mid) and len(sessions) >= 1
          and sessions[-1]["state"] == "released"
          and sum(s["state"] == "released" for s in sessions) == 1,
          f"states before re-plug {[s['state'] for s in mid]}, after "
          f"{[s['state'] for s in sessions]}")
    docked = [e["payload"] for e in events if e.get("kind") == "docked"
              and e.get("payload", {}).get("identity", {}).get("serial") == "ZFY0001"]
    ident = docked[0].get("identity", {}) if docked else {}
    check("camera identified: serial ZFY0001, 警号 350201, user 张三",
          ident.get("serial") == "ZFY0001" and ident.get("officer") == "350201"
          and ident.get("user_name") == "张三", str(ident))
    offset = docked[0].get("clock_offset_ms") if docked else None
    # evidock records station minus camera: the camera set to 2000-01-01 is ~26.9 years behind
    check("clock offset recorded at docking: camera at 2000-01-01, about 26 years behind",
          offset is not None and 25 * YEAR_MS < offset < 28 * YEAR_MS
          and str(docked[0].get("camera_clock", "")).startswith("2000-01-01"),
          f"clock_offset_ms={offset} ({(offset or 0) / YEAR_MS:.2f} y), "
          f"camera_clock={docked[0].get('camera_clock') if docked else None}")
    synced = [e for e in events if e.get("kind") == "clock-synced"
              and e.get("payload", {}).get("device") == "ZFY0001"]
    gl = vm.out("cat /run/gadget.out")
    syncs = re.findall(r"SyncDevTime\(0x03\) status=0 clock=(\d{14})", gl)
    reads = re.findall(r"GetDevTime\(0x02\) status=0 clock=(\d{14})", gl)
    now_cst = datetime.datetime.now(CST).replace(tzinfo=None)

    def age(stamp):
        return abs((now_cst - datetime.datetime.strptime(stamp, "%Y%m%d%H%M%S")).total_seconds())
    check("camera clock synced to station time (SyncDevTime), and reads back synced on re-dock",
          synced and syncs and age(syncs[0]) < 600 and len(reads) >= 2
          and reads[0].startswith("2000") and age(reads[-1]) < 600,
          f"clock-synced events {len(synced)}; SyncDevTime {syncs}; GetDevTime {reads}")

    mark = vm.logs.mark()
    t_unplug = g.unplug()
    t_left, _ = g.log(r"usb device left", mark, 30)
    if t_left:
        timing("80 MiB card: unplug -> departure", t_left - t_unplug)
    time.sleep(1)
    undocked = [e for e in g.events() if e.get("kind") == "undocked"
                and e.get("payload", {}).get("device") == "ZFY0001"]
    check("departure seen: usb device left, undocked event (released=true)",
          t_left is not None and any(e["payload"].get("released") for e in undocked),
          f"{len(undocked)} undocked events")
    check("no card left mounted after departure", not g.mounts(), str(g.mounts()))


def bad_camera(g, vm, serial, card, *extra, password="000000"):
    """Plug a misbehaving camera; (outcome line, new evidence items, the firmware's log)."""
    ev0 = len(g.evidence())
    g.gadget(camera(serial, card, password, *extra))
    mark = vm.logs.mark()
    g.plug()
    _, line = g.log(OUTCOME, mark, 60)
    time.sleep(0.5)
    ev1 = len(g.evidence())
    g.unplug()
    g.log(r"usb device left", mark, 30)
    return line, ev1 - ev0, vm.out("cat /run/gadget.out")


def not_allow_listed(g, vm):
    """A camera of the right VID/PID whose USB serial is not on the allow-list: refused from its
    descriptors alone, before any command (every command carries the admin password)."""
    line, new, gl = bad_camera(g, vm, "ZFY0099", "small")
    check("USB serial not on the allow-list: refused, nothing read, the password never sent "
          "(the camera saw no command)",
          line is not None and "allow-list" in line and new == 0 and "ZFY_CMD" not in gl,
          f"{short(line or 'no outcome line', 300)}; {new} new item(s); camera log: "
          f"{short(gl, 300)}")


def wrong_password(g, vm):
    line, new, gl = bad_camera(g, vm, "ZFY0001", "small", password="123456")
    refused = [s for s in g.sessions() if s["state"] == "refused"]
    check("wrong password: camera refused, nothing read",
          line is not None and "password" in line and new == 0 and refused
          and "status=1" in gl and "SetMSDC(0x05) status=0" not in gl,
          f"{short(line or 'no outcome line', 300)}; {len(refused)} refused session(s), {new} "
          "new evidence")


def unread_sessions(g, before):
    """Failed sessions with a recorded reason, newer than `before` (a camera that fails before
    it names itself is recorded as `unidentified`)."""
    return [s for s in g.sessions()[before:] if s["state"] == "failed" and s.get("error")]


def mute_camera(g, vm):
    n = len(g.sessions())
    line, new, gl = bad_camera(g, vm, "ZFY0001", "small", "--mute")
    rows = unread_sessions(g, n)
    check("vendor interface that never answers: failed with a timeout reason, recorded in the "
          "journal, nothing read",
          line is not None and new == 0 and re.search(r"answer|time", line or "")
          and "SetMSDC" not in gl and len(rows) == 1,
          f"{short(line or 'no outcome line', 300)}; unread sessions: "
          f"{[r.get('error') for r in rows]}")


def stalling_camera(g, vm):
    n = len(g.sessions())
    line, new, gl = bad_camera(g, vm, "ZFY0001", "small", "--stall-after", "1")
    rows = unread_sessions(g, n)
    check("vendor interface that stalls (after GetZFYInfo): failed with a reason recorded in "
          "the journal, nothing read",
          line is not None and "safe to undock" not in line and new == 0
          and "SetMSDC(0x05) status=0" not in gl and len(rows) == 1,
          f"{short(line or 'no outcome line', 300)}; unread sessions: "
          f"{[r.get('error') for r in rows]}")


def partition_layouts(g, vm, manifest):
    """The MBR card (this also shows the dock works after the bad cameras), then two partitions."""
    for serial, card, label in (("ZFY0002", "mbr", "MBR partition table, one FAT32 partition"),
                                ("ZFY0003", "two", "two FAT32 partitions")):
        g.gadget(camera(serial, card))
        mark = vm.logs.mark()
        g.plug()
        _, line = g.log(OUTCOME, mark, 90)
        rows = of_device(g.sessions(), serial)
        got = {e["sha256"] for e in of_device(g.evidence(), serial)}
        want = {f["sha256"]: f for f in manifest[card]}
        g.unplug()
        g.log(r"usb device left", mark, 30)
        if card == "mbr":
            check(f"card with {label}: acquired, digests match",
                  line is not None and "safe to undock" in line and got == set(want),
                  f"{len(got)}/{len(want)} files; {short(line or 'no outcome line')}")
        else:
            parts = sorted({want[s]["part"] for s in got if s in want})
            state = rows[-1]["state"] if rows else None
            reason = rows[-1].get("error") if rows else None
            check(f"card with {label}: not silently lost (released with its files, or a reason)",
                  line is not None and (
                      (state == "released" and got and got <= set(want))
                      or (state in ("failed", "interrupted", "refused") and reason)),
                  f"state={state}, files from partition(s) {parts} of 1,2 "
                  f"({len(got)}/{len(want)}), reason={reason!r}; {short(line or '')}")


def pulled_before_mount(g, vm):
    """The firmware pulls its own cable right after answering SetMSDC."""
    g.gadget(camera("ZFY0004", "small", "000000", "--unplug-after-msdc"))
    ev0 = len(g.evidence())
    mark = vm.logs.mark()
    g.plug()
    _, line = g.log(OUTCOME, mark, 60)
    time.sleep(1)
    rows = of_device(g.sessions(), "ZFY0004")
    check("camera unplugged between identify and mount: interrupted/failed with a reason, "
          "nothing read, nothing left mounted",
          line is not None and "safe to undock" not in line and len(g.evidence()) == ev0
          and not g.mounts() and all(r["state"] != "copying" for r in rows),
          f"{short(line or 'no outcome line')}; sessions "
          f"{[(r['state'], r.get('error')) for r in rows]}")


def latency(g, vm, manifest, cycles):
    """plug -> arrival -> docked -> mounted -> released; unplug -> departure, on a small card."""
    g.gadget(camera("ZFY0005", "small"))
    want = {f["sha256"] for f in manifest["small"]}
    ok_cycles, outcomes = 0, []
    for _ in range(cycles):
        mark = vm.logs.mark()
        t_plug = g.plug()
        t_arr, _ = g.log(r"usb device arrived", mark, 30)
        t_dock, _ = g.log(r"camera docked", mark, 30)
        t_mnt, _ = g.log(r"card mounted read-only", mark, 30)
        t_rel, line = g.log(OUTCOME, mark, 60)
        t_unplug = g.unplug()
        t_left, _ = g.log(r"usb device left", mark, 30)
        if None not in (t_arr, t_dock, t_mnt, t_rel, t_left) and "safe to undock" in line:
            ok_cycles += 1
            timing("plug -> arrival", t_arr - t_plug)
            timing("plug -> camera docked", t_dock - t_plug)
            timing("plug -> card mounted (copy starts)", t_mnt - t_plug)
            timing("plug -> released (small card)", t_rel - t_plug)
            timing("unplug -> departure", t_left - t_unplug)
        else:
            outcomes.append(short(line or "no outcome line"))
    got = {e["sha256"] for e in of_device(g.evidence(), "ZFY0005")}
    check(f"dock keeps working after the bad cameras: {cycles} plug/unplug cycles released",
          ok_cycles == cycles and got == want,
          f"{ok_cycles}/{cycles} cycles released; digests match: {got == want}"
          + (f"; others: {outcomes}" if outcomes else ""))


def without_udev(g, vm, manifest):
    """A station without udev: nothing polls the reader for media or opens the disk when the
    camera inserts its card (SetMSDC). evidock must see the card on its own."""
    vm.out("kill $(pidof uevent) 2>/dev/null; echo 0 > "
           "/sys/module/block/parameters/events_dfl_poll_msecs; echo off")
    g.gadget(camera("ZFY0004", "small"))
    mark = vm.logs.mark()
    g.plug()
    _, line = g.log(OUTCOME, mark, 60)
    probes = vm.logs.since(mark, r"UDEV_PROBE")
    got = {e["sha256"] for e in of_device(g.evidence(), "ZFY0004")}
    want = {f["sha256"] for f in manifest["small"]}
    g.unplug()
    g.log(r"usb device left", mark, 30)
    check("station without udev: the card inserted by SetMSDC is seen and acquired",
          line is not None and "safe to undock" in line and got == want and not probes,
          f"{short(line or 'no outcome line', 300)}; udev stand-in lines: {len(probes)}")


if __name__ == "__main__":
    sys.exit(main())
