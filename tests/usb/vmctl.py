"""Drive the USB test guest under QEMU (stdlib only).

- `Vm.start(...)`: QEMU (TCG) with the kernel + initramfs, the card images as virtio disks,
  an xHCI controller for hot-plugged sticks, a QMP socket, and two virtio consoles on unix
  sockets: hvc0 is the guest's shell, hvc1 carries the logs of `evidock dock` and of the camera
  firmware. The kernel's own console (ttyS0) goes to kernel.log.
- `Serial`: a reader thread stamps every line with the host's monotonic clock as it arrives, so
  latencies are measured on one clock.
- `Vm.sh(cmd)`: run a shell command in the guest; returns (exit status, output lines).
- `Vm.plug_stick / unplug_stick`: QMP hot-plug of a QEMU usb-storage stick on xhci.0.
"""

import json
import os
import re
import socket
import subprocess
import threading
import time


def _connect(path, timeout):
    deadline = time.monotonic() + timeout
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return s
        except OSError:
            s.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


class Serial:
    """Lines from a serial port, each with the host monotonic time it arrived."""

    def __init__(self, path, log_path, timeout=30):
        self.sock = _connect(path, timeout)
        self.lines = []  # [(t, text)]
        self.cv = threading.Condition()
        self.closed = False
        self.log = open(log_path, "w", encoding="utf-8")
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        buf = b""
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                with self.cv:
                    self.closed = True
                    self.cv.notify_all()
                return
            buf += data
            *complete, buf = buf.split(b"\n")
            now = time.monotonic()
            with self.cv:
                for raw in complete:
                    text = raw.decode("utf-8", "replace").rstrip("\r")
                    self.lines.append((now, text))
                    self.log.write(f"{now:.3f} {text}\n")
                self.log.flush()
                self.cv.notify_all()

    def mark(self):
        with self.cv:
            return len(self.lines)

    def wait(self, pattern, timeout, start=0):
        """The first (index, time, line) at or after `start` matching `pattern`, or None."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        i = start
        with self.cv:
            while True:
                while i < len(self.lines):
                    if rx.search(self.lines[i][1]):
                        return i, self.lines[i][0], self.lines[i][1]
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0 or self.closed:
                    return None
                self.cv.wait(left)

    def since(self, start, pattern=None):
        rx = re.compile(pattern) if pattern else None
        with self.cv:
            return [(t, l) for t, l in self.lines[start:] if rx is None or rx.search(l)]

    def send(self, text):
        self.sock.sendall(text.encode())


class Vm:
    def __init__(self, proc, console, logs, qmp, t0, workdir):
        self.proc, self.console, self.logs, self.qmp, self.t0 = proc, console, logs, qmp, t0
        self.workdir = workdir
        self._n = 0

    @classmethod
    def start(cls, workdir, kernel, initrd, disks=(), append="", mem="1024", accel="tcg"):
        """Boot; `disks` are (name, image) pairs: /cards/NAME.img in the guest, read-only."""
        os.makedirs(workdir, exist_ok=True)
        socks = {n: os.path.join(workdir, n + ".sock") for n in ("qmp", "hvc0", "hvc1")}
        for p in socks.values():
            if os.path.exists(p):
                os.unlink(p)
        args = [
            "qemu-system-x86_64", "-accel", accel,
            "-machine", "q35", "-cpu", "max", "-m", str(mem), "-smp", "1",
            "-nographic", "-nodefaults", "-no-user-config", "-no-reboot",
            "-kernel", kernel, "-initrd", initrd,
            "-append", "console=ttyS0 loglevel=1 panic=-1 " + append,
            "-chardev", f"socket,id=s0,path={socks['hvc0']},server=on,wait=on",
            "-chardev", f"socket,id=s1,path={socks['hvc1']},server=on,wait=on",
            "-serial", "file:" + os.path.join(workdir, "kernel.log"),
            "-device", "virtio-serial-pci",
            "-device", "virtconsole,chardev=s0", "-device", "virtconsole,chardev=s1",
            "-qmp", f"unix:{socks['qmp']},server=on,wait=off",
            "-device", "qemu-xhci,id=xhci",
        ]
        for i, (name, image) in enumerate(disks):
            args += ["-drive", f"file={image},format=raw,if=none,id=card{i},readonly=on",
                     "-device", f"virtio-blk-pci,drive=card{i},serial={name}"]
        out = open(os.path.join(workdir, "qemu.out"), "w")
        t0 = time.monotonic()
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        # QEMU waits for both consoles to be connected before it starts the guest
        console = Serial(socks["hvc0"], os.path.join(workdir, "console.log"))
        logs = Serial(socks["hvc1"], os.path.join(workdir, "guest-logs.log"))
        qmp = Qmp(socks["qmp"], os.path.join(workdir, "qmp.log"))
        return cls(proc, console, logs, qmp, t0, workdir)

    def wait_ready(self, timeout=120):
        """Wait for the guest's /init, then for its shell to answer; returns the boot time."""
        deadline = time.monotonic() + timeout
        for n in range(10**6):
            if time.monotonic() > deadline:
                break
            start = self.console.mark()
            self.console.send(f"echo __PING_{n}__\n")
            hit = self.console.wait(rf"^__PING_{n}__$", 0.25, start)
            if hit:
                return hit[1] - self.t0
        raise TimeoutError("the guest did not boot (see kernel.log)")

    def sh(self, command, timeout=60):
        """Run `command` in the guest shell: (exit status, output lines)."""
        self._n += 1
        tag = f"__DONE_{self._n}__"
        start = self.console.mark()
        self.console.send(f"{command}\necho {tag} $?\n")
        hit = self.console.wait(rf"^{tag} (\d+)$", timeout, start)
        if hit is None:
            raise TimeoutError(f"guest command timed out after {timeout}s: {command}")
        i, _, line = hit
        return int(line.split()[-1]), [l for _, l in self.console.since(start)[: i - start]]

    def out(self, command, timeout=60):
        """Output of a command that must succeed."""
        rc, lines = self.sh(command, timeout)
        if rc != 0:
            raise RuntimeError(f"guest command failed ({rc}): {command}\n" + "\n".join(lines))
        return "\n".join(lines)

    def json(self, command, timeout=60):
        return json.loads(self.out(command, timeout))

    def plug_stick(self, node, image, serial):
        """Hot-plug a QEMU usb-storage stick (46f4:0001) on the xHCI bus; returns the time."""
        self.qmp.cmd("blockdev-add", **{
            "node-name": node, "driver": "raw", "read-only": True,
            "file": {"driver": "file", "filename": image, "read-only": True}})
        t = time.monotonic()
        self.qmp.cmd("device_add", driver="usb-storage", id=node + "-dev", bus="xhci.0",
                     drive=node, serial=serial, removable=True)
        return t

    def unplug_stick(self, node):
        t = time.monotonic()
        self.qmp.cmd("device_del", id=node + "-dev")
        # usb-storage emits DEVICE_DELETED for its scsi-disk child first, then for itself
        self.qmp.wait_event("DEVICE_DELETED", 30, device=node + "-dev")
        self.qmp.cmd("blockdev-del", **{"node-name": node})
        return t

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.console.send("poweroff -f\n")
                self.proc.wait(timeout=15)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


class Qmp:
    def __init__(self, path, log_path, timeout=30):
        self.sock = _connect(path, timeout)
        self.f = self.sock.makefile("rwb", buffering=0)
        self.events = []
        self.log = open(log_path, "w", encoding="utf-8")
        greeting = self._read()
        if "QMP" not in greeting:
            raise RuntimeError(f"not a QMP greeting: {greeting}")
        self.cmd("qmp_capabilities")

    def _read(self):
        line = self.f.readline()
        if not line:
            raise EOFError("QMP closed")
        self.log.write(f"{time.monotonic():.3f} < {line.decode().strip()}\n")
        self.log.flush()
        return json.loads(line)

    def cmd(self, execute, **arguments):
        msg = {"execute": execute, **({"arguments": arguments} if arguments else {})}
        self.log.write(f"{time.monotonic():.3f} > {json.dumps(msg)}\n")
        self.f.write(json.dumps(msg).encode() + b"\n")
        while True:
            r = self._read()
            if "event" in r:
                self.events.append(r)
            elif "error" in r:
                raise RuntimeError(f"QMP {execute}: {r['error']}")
            else:
                return r.get("return")

    def wait_event(self, name, timeout, **data):
        def match(e):
            return e["event"] == name and all(e.get("data", {}).get(k) == v for k, v in data.items())
        for e in self.events:
            if match(e):
                self.events.remove(e)
                return e
        self.sock.settimeout(timeout)
        try:
            while True:
                e = self._read()
                if match(e):
                    return e
                self.events.append(e)
        finally:
            self.sock.settimeout(None)
