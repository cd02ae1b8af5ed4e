#!/usr/bin/env python3
"""tests/e2e/stages.py: one VM's boot, stage by stage, from three witnesses:
bootstorm's access log (tslog.py lines), the wire (capture.py) and the VM's serial
console (tslog.py raw).  Prints the stage table (seconds since power-on) and checks
that every required stage happened, in order, with the right bytes and addresses.

  stages.py --flow F --mac MAC --ip IP --t0 EPOCH --access LOG --serial RAW
            [--capture LOG] [--tftp-root DIR] [--http-root DIR]
            [--kernel PATH] [--initrd PATH] [--loader PATH] [--title TEXT] [--host-json FILE] [--reached]

Flows: bios (iPXE ROM -> pxelinux -> 01-<mac> -> TFTP kernel/initrd), uefi (OVMF PXE ->
shim -> GRUB -> grub.cfg -> TFTP kernel/initrd), ipxe (iPXE -> HTTP script -> HTTP
kernel/initrd), local (pxelinux -> the local-boot menu -> the disk's boot sector),
uefi-local (OVMF PXE -> shim -> GRUB -> grub.cfg whose default is "exit" -> OVMF goes on
to the next boot device, the disk).  All but the local ones end with the installer's
DHCP (same IP, option 6) and its preseed fetch.

--reached: print nothing; exit 0 when the flow's last stage has happened, 1 when not
yet, 3 when a stage has failed for good (e.g. a TFTP error on the loader).
Without it: exit 0 when every required stage passed, else 1 (reasons printed).
"""
import argparse
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tslog  # noqa: E402

# What bootstorm's per-host record (GET /api/hosts/<mac>, engine/tracker.h) must show
# for each flow, in this order; the stage it must have reached at least.
TRACKED = {
    "bios": ["discover", "offered", "acked", "loader", "config", "kernel", "initrd", "installer_dhcp", "kickstart"],
    "uefi": ["discover", "offered", "acked", "loader", "config", "kernel", "initrd", "installer_dhcp", "kickstart"],
    "ipxe": ["discover", "offered", "acked", "config", "kernel", "initrd", "installer_dhcp", "kickstart"],
    "local": [],
    "uefi-local": [],
}
RA_GAP_MAX = 8  # s from the firmware's ACK to its next request when it hears RAs (~13 s when not)
ORDER = ["none", "discover", "offered", "acked", "loader", "config", "kernel", "initrd", "installer_dhcp",
         "kickstart", "stage2", "packages", "postinstall", "installed"]


class Ev:
    def __init__(self, t, kind, text, m=None):
        self.t, self.kind, self.text, self.m = t, kind, text, m


def read_access(path, mac, ip):
    """bootstorm's log lines about this machine, parsed."""
    evs = []
    re_dhcp = re.compile(r"dhcp (\w+) (%s) .*?-> (\w+)(?: (\d+\.\d+\.\d+\.\d+))?(?: to (\S+))?(?: file (\S+))?"
                         % re.escape(mac))
    re_tftp = re.compile(r'tftp (%s):(\d+) RRQ "([^"]*)" (.*)' % re.escape(ip))
    re_http = re.compile(r'http (%s):(\d+) "(\w+) ([^"]*)" (\d+) (\d+)' % re.escape(ip))
    try:
        lines = open(path, errors="replace").read().splitlines()
    except FileNotFoundError:
        return evs
    for line in lines:
        t, _, text = line.partition(" ")
        try:
            t = float(t)
        except ValueError:
            continue
        for kind, rx in (("dhcp", re_dhcp), ("tftp", re_tftp), ("http", re_http)):
            m = rx.search(text)
            if m:
                evs.append(Ev(t, kind, text, m))
                break
    return evs


def read_capture(path, mac):
    evs = []
    try:
        lines = open(path, errors="replace").read().splitlines()
    except (FileNotFoundError, TypeError):
        return evs
    for line in lines:
        if "chaddr=%s" % mac not in line:
            continue
        t = float(line.split(" ", 1)[0])
        m = re.search(r"DHCP (\w+) ", line)
        opts = dict(re.findall(r" (\d+)=(\S+)", line.split(" opts ", 1)[1] if " opts " in line else ""))
        evs.append(Ev(t, "wire", line, {"type": m.group(1) if m else "?", "opts": opts,
                                        "out": " out " in line[:20]}))
    return evs


def read_ndp(path, mac):
    """The VM's IPv6 router solicitations and the advertisements it could hear (to all
    nodes, or to its own Ethernet address), from capture.py's NDP lines."""
    evs = []
    try:
        lines = open(path, errors="replace").read().splitlines()
    except (FileNotFoundError, TypeError):
        return evs
    rx = re.compile(r"^(\S+) (in|out) (\S+) -> (\S+) eth (\S+) -> (\S+) NDP (RS|RA) (.*)$")
    for line in lines:
        m = rx.match(line)
        if not m:
            continue
        t, _, src, dst, esrc, edst, kind, rest = m.groups()
        if kind == "RS" and esrc == mac:
            evs.append(Ev(float(t), "RS", line, {"src": src}))
        elif kind == "RA" and (edst == mac or dst == "ff02::1"):
            evs.append(Ev(float(t), "RA", line, {"unicast": edst == mac, "rest": rest}))
    return evs


def tftp_done(ev):
    return "done" in ev.m.group(4).split()


def tftp_field(ev, name):
    m = re.search(r"\b%s=(\d+)" % name, ev.m.group(4))
    return int(m.group(1)) if m else None


def size_of(root, rel):
    if not root:
        return None
    try:
        return os.path.getsize(os.path.join(root, rel.lstrip("/")))
    except OSError:
        return None


class Checker:
    def __init__(self, a):
        self.a = a
        self.rows, self.fails, self.info = [], [], []
        self.access = read_access(a.access, a.mac, a.ip)
        self.wire = read_capture(a.capture, a.mac)
        self.ndp = read_ndp(a.capture, a.mac)
        self.gaps = []
        self.tftp_start = None  # when the last tftp() row's transfer was asked for
        self.cursor = a.t0
        self.reached_last = False
        self.fatal = False
        self.state_line = ""

    def rel(self, t):
        return "%7.1f" % (t - self.a.t0) if t is not None else "      -"

    def row(self, label, t, source, detail, ok=True, required=True):
        self.rows.append((label, t, source, detail, ok))
        if not ok and required:
            self.fails.append("%s: %s" % (label, detail))
        if ok and t is not None and required:
            self.cursor = max(self.cursor, t)

    # ---- witnesses -------------------------------------------------------------------
    def serial(self, label, regex, required=True, nth=1):
        try:
            out = tslog_find(self.a.serial, regex, nth)
        except Exception:  # noqa: BLE001 - a missing console is reported like a missing line
            out = None
        if out is None or out < self.a.t0:
            if required:  # an informational line that is not there is just left out
                self.row(label, None, "serial", "no /%s/ on the console" % regex, ok=False)
            return None
        self.row(label, out, "serial", "/%s/" % regex, required=required)
        return out

    def dhcp_ack(self, label, after, want_file=None, installer=False):
        acks = [e for e in self.access if e.kind == "dhcp" and e.t >= after and e.m.group(3) == "ACK"]
        if not acks:
            self.row(label, None, "bootstorm", "no DHCP ACK for %s" % self.a.mac, ok=False)
            return None
        e = acks[0]
        got_ip = e.m.group(4)
        detail = "ACK %s" % got_ip
        ok = got_ip == self.a.ip
        if not ok:
            detail += " (want %s, the reservation)" % self.a.ip
        if want_file is not None:
            f = e.m.group(6) or ""
            detail += ", file %s" % (f or "(none)")
            if not re.search(want_file, f):
                ok = False
                detail += " (want /%s/)" % want_file
        offers = [o for o in self.access if o.kind == "dhcp" and after <= o.t <= e.t and o.m.group(3) == "OFFER"]
        if offers:
            detail += "; OFFER->ACK %.1f s" % (e.t - offers[0].t)
        # the wire: what the client sent and what bootstorm answered
        req = [w for w in self.wire if w.m["type"] == "REQUEST" and not w.m["out"] and after <= w.t <= e.t + 0.5]
        ack = [w for w in self.wire if w.m["type"] == "ACK" and w.m["out"] and after <= w.t <= e.t + 1.0]
        if req:
            vc = req[-1].m["opts"].get("60", "")
            if vc:
                detail += "; client class %s" % vc.split(":")[0]
            if installer and vc != "d-i":
                self.info.append("%s: the REQUEST's vendor class is %r, not 'd-i'" % (label, vc))
        if ack:
            o = ack[0].m["opts"]
            if installer or "6" in o:
                detail += "; dns %s" % o.get("6", "MISSING")
            if installer and "6" not in o:
                ok = False
                detail += " (the installer stops at 'Name server addresses' without option 6)"
            if "175" in o:
                detail += "; opt 175 %s" % o["175"]
        elif self.wire:
            self.info.append("%s: no ACK on the wire (capture)" % label)
        self.row(label, e.t, "bootstorm", detail, ok=ok)
        return e.t

    def tftp(self, label, path_rx, after, root_rel=None, required=True, virtual_expected=False):
        rx = re.compile(r"^/?%s$" % path_rx)
        tries = [e for e in self.access if e.kind == "tftp" and e.t >= after and rx.match(e.m.group(3))]
        done = [e for e in tries if tftp_done(e)]
        failed = [e for e in tries if not tftp_done(e)]
        if not done:
            why = "; ".join("%s %s" % (e.m.group(3), e.m.group(4)) for e in failed[:3]) or "never asked"
            self.row(label, None, "bootstorm", "TFTP %s: %s" % (path_rx, why), ok=False, required=required)
            if failed and required and not any("aborted (ERROR 8)" in e.m.group(4) for e in failed):
                self.fatal = True
            return None
        e = done[0]
        n, ms = tftp_field(e, "bytes"), tftp_field(e, "ms") or 0
        self.tftp_start = e.t - ms / 1000.0  # the log line is written when the transfer ends
        detail = "TFTP %s %s bytes, blksize %s window %s, %.1f s" % (
            e.m.group(3), n, tftp_field(e, "blksize"), tftp_field(e, "window"), ms / 1000.0)
        if ms > 500 and n:
            detail += " (%.1f MB/s)" % (n / 1e6 / (ms / 1000.0))
        rt = tftp_field(e, "retransmits")
        if rt:
            detail += ", %d retransmits" % rt
        aborted = [f for f in failed if "ERROR 8" in f.m.group(4) and f.t <= e.t]
        if aborted:
            detail += "; after %d size probe(s) aborted by the client" % len(aborted)
        ok = True
        virtual = "(virtual)" in e.m.group(4)
        if virtual:
            detail += "; rendered by bootstorm (virtual)"
        elif self.a.expect_virtual and virtual_expected:
            ok = False
            detail += "; from the disk, not rendered by bootstorm for this host"
        want = None if virtual else size_of(self.a.tftp_root, root_rel or e.m.group(3))
        if want is not None and n != want:
            ok = False
            detail += " (file has %d bytes)" % want
        self.row(label, e.t, "bootstorm", detail, ok=ok, required=required)
        return e.t

    def http(self, label, path_rx, after, root_rel=None, status="200", required=True):
        rx = re.compile(r"^%s$" % path_rx)
        reqs = [e for e in self.access if e.kind == "http" and e.t >= after and rx.match(e.m.group(4))]
        good = [e for e in reqs if e.m.group(5) == status]
        if not good:
            why = ", ".join("%s %s" % (e.m.group(4), e.m.group(5)) for e in reqs[:3]) or "never asked"
            self.row(label, None, "bootstorm", "HTTP %s: %s" % (path_rx, why), ok=False, required=required)
            if reqs and required:
                self.fatal = True
            return None
        e = good[0]
        n = int(e.m.group(6))
        detail = "HTTP %s %s %s, %d bytes" % (e.m.group(3), e.m.group(4), e.m.group(5), n)
        ok = n > 0
        want = size_of(self.a.http_root, root_rel) if root_rel else None
        if want is not None and n != want:
            ok = False
            detail += " (file has %d bytes)" % want
        self.row(label, e.t, "bootstorm", detail, ok=ok, required=required)
        return e.t

    def ipv6(self, t_ack, t_next, what):
        """The firmware's IPv6 autoconfiguration (informational rows) and the gap between
        its DHCP ACK and its next request: iPXE waits for IPv6 autoconfiguration (RS, up
        to ~13 s without an RA) before it uses its DHCP answer."""
        rs = [e for e in self.ndp if e.kind == "RS" and e.t >= self.a.t0]
        if rs:
            self.row("firmware IPv6 router solicit", rs[0].t, "wire", "RS from %s, %d sent until the next request"
                     % (rs[0].m["src"], len([e for e in rs if t_next is None or e.t <= t_next])), required=False)
            ra = [e for e in self.ndp if e.kind == "RA" and e.t >= rs[0].t]
            if ra:
                self.row("router advertisement heard", ra[0].t, "wire", "%s RA (%s), %.2f s after the first RS"
                         % ("unicast" if ra[0].m["unicast"] else "multicast", ra[0].m["rest"], ra[0].t - rs[0].t),
                         required=False)
        if self.a.expect_ra:
            # bootstorm runs with --ipv6-ra: the firmware must hear an advertisement and
            # go on at once (a few seconds of TCG slack; without one it waits ~13 s)
            heard = rs and any(e.kind == "RA" and e.t >= rs[0].t for e in self.ndp)
            if not rs:
                self.row("router advertisement heard", None, "wire",
                         "no router solicitation from the firmware on the wire (capture)", ok=False)
            elif not heard:
                self.row("router advertisement heard", None, "wire",
                         "bootstorm --ipv6-ra sent no advertisement the firmware could hear", ok=False)
            if t_ack is not None and t_next is not None and t_next - t_ack > RA_GAP_MAX:
                self.row("firmware goes on after its ACK", t_next, "bootstorm",
                         "%.1f s after the ACK despite --ipv6-ra (want < %d s)" % (t_next - t_ack, RA_GAP_MAX),
                         ok=False)
        if t_ack is not None and t_next is not None:
            self.gaps.append("firmware DHCP ACK -> %s: %.1f s%s" % (
                what, t_next - t_ack,
                " (no router advertisement: iPXE's IPv6 autoconfiguration timed out; --ipv6-ra ends it)"
                if rs and not any(e.kind == "RA" and e.t >= rs[0].t for e in self.ndp) else ""))

    # ---- flows -------------------------------------------------------------------------
    def installer_tail(self, t):
        # where the installer spends its time before it DHCPs (informational)
        self.serial("installer: link detection", r"Detecting link on", required=False)
        self.serial("installer: IPv6 autoconfig", r"Attempting IPv6 autoconfiguration", required=False)
        self.serial("installer: network via DHCP", r"Configuring the network with DHCP")
        t = self.dhcp_ack("installer DHCP ACK (same IP)", t + 0.001, installer=True) or t
        if self.http("preseed fetched", r"/(ks|preseed)/[^ ]*", t) is not None:
            self.reached_last = True

    def flow_bios(self):
        a = self.a
        self.serial("firmware: iPXE ROM runs", r"iPXE initialising devices")
        t_ack = self.dhcp_ack("firmware DHCP ACK", a.t0, want_file=re.escape(a.loader or "pxelinux.0") + "$")
        t = t_ack or a.t0
        self.serial("firmware: DHCP done", r"Configuring \(net0 [0-9a-f:]+\)[. ]*ok")
        self.tftp_start = None
        t = self.tftp("loader", re.escape(a.loader or "pxelinux.0"), t) or t
        self.ipv6(t_ack, self.tftp_start, "loader request (TFTP pxelinux.0)")
        self.serial("pxelinux runs", r"PXELINUX \d")
        t = self.tftp("per-host menu", r"pxelinux\.cfg/01-%s" % a.mac.replace(":", "-"), t,
                      virtual_expected=True) or t
        t = self.tftp("kernel", re.escape(a.kernel), t) or t
        t = self.tftp("initrd", re.escape(a.initrd), t) or t
        self.serial("kernel starts", r"Linux version|Detecting network hardware", required=False)
        self.installer_tail(t)

    def flow_uefi(self):
        a = self.a
        loader = a.loader or "debian-installer/amd64/bootnetx64.efi"
        t = self.dhcp_ack("firmware DHCP ACK", a.t0, want_file=re.escape(loader) + "$") or a.t0
        self.serial("firmware: PXE address", r"Station IP address is %s" % re.escape(a.ip))
        t = self.tftp("loader (shim)", re.escape(loader), t) or t
        d = os.path.dirname(loader)
        t = self.tftp("GRUB", re.escape(os.path.join(d, "grubx64.efi")), t) or t
        self.serial("GRUB runs", r"Welcome to GRUB|GNU GRUB")
        t = self.tftp("per-host grub.cfg", r"(.*/)?grub\.cfg(-[0-9a-fA-F:.-]+)?", t, virtual_expected=True) or t
        t = self.tftp("kernel", re.escape(a.kernel), t) or t
        t = self.tftp("initrd", re.escape(a.initrd), t) or t
        self.installer_tail(t)

    def flow_ipxe(self):
        a = self.a
        t_ack = self.dhcp_ack("firmware DHCP ACK", a.t0, want_file=r"^http://")
        t = t_ack or a.t0
        self.serial("firmware: DHCP done", r"Configuring \(net0 [0-9a-f:]+\)[. ]*ok")
        # /boot.ipxe?mac= (bootstorm's route), /ipxe/<mac>.ipxe (E2E_STATIC's files)
        t_script = self.http("iPXE script", r"/(boot\.ipxe(\?.*)?|ipxe/[^ ]*\.ipxe)", t)
        self.ipv6(t_ack, t_script, "iPXE script request (HTTP)")
        t = t_script or t
        t = self.http("kernel over HTTP", r"/%s" % re.escape(a.kernel), t, root_rel=a.kernel) or t
        t = self.http("initrd over HTTP", r"/%s" % re.escape(a.initrd), t, root_rel=a.initrd) or t
        self.installer_tail(t)

    def flow_local(self):
        a = self.a
        t = self.dhcp_ack("firmware DHCP ACK", a.t0, want_file=re.escape(a.loader or "pxelinux.0") + "$") or a.t0
        t = self.tftp("loader", re.escape(a.loader or "pxelinux.0"), t) or t
        t = self.tftp("per-host menu (installed)", r"pxelinux\.cfg/01-%s" % a.mac.replace(":", "-"), t,
                      virtual_expected=True) or t
        t2 = self.serial("local disk boots", r"BOOTSTORM-E2E: booted from the local disk")
        kernels = [e for e in self.access if e.kind == "tftp" and e.t >= a.t0 and a.kernel in e.m.group(3)]
        if kernels:
            self.row("no installer this time", kernels[0].t, "bootstorm",
                     "the kernel was fetched again: the menu did not default to the local disk", ok=False)
            self.fatal = True
        elif t2 is not None:
            self.row("no installer this time", None, "bootstorm", "no kernel fetched since power-on")
            self.reached_last = True

    def flow_uefi_local(self):
        a = self.a
        loader = a.loader or "debian-installer/amd64/bootnetx64.efi"
        t = self.dhcp_ack("firmware DHCP ACK", a.t0, want_file=re.escape(loader) + "$") or a.t0
        t = self.tftp("loader (shim)", re.escape(loader), t) or t
        t = self.tftp("GRUB", re.escape(os.path.join(os.path.dirname(loader), "grubx64.efi")), t) or t
        t = self.tftp("per-host grub.cfg (installed)", r"(.*/)?grub\.cfg(-[0-9a-fA-F:.-]+)?", t,
                      virtual_expected=True) or t
        # the menu's default hands control back to the firmware, which must go on to the
        # next boot device: the disk, whose \EFI\BOOT\BOOTX64.EFI (a GRUB, tests/e2e/esp.py)
        # prints the message.  OVMF shows its boot manager (UiApp) instead when the network
        # boot option returned EFI_SUCCESS (UEFI 2.x §3.1.1): GRUB 2.06's "exit" does.
        t2 = self.serial("local disk boots", r"BOOTSTORM-E2E: booted from the local disk")
        t_ui = None
        try:
            t_ui = tslog_find(self.a.serial, r'BdsDxe: (loading|starting) Boot[0-9A-F]+ "UiApp"', 1)
        except Exception:  # noqa: BLE001
            pass
        if t2 is None and t_ui is not None and t_ui >= t:
            self.row("firmware falls through to the disk", t_ui, "serial",
                     "OVMF opened its boot manager (UiApp) after GRUB's menu instead of booting the disk: "
                     "the network boot returned EFI_SUCCESS (GRUB 2.06 'exit'); the local entry must "
                     "chainload the disk's loader", ok=False)
            self.fatal = True
        if t2 is not None and t2 < t:
            self.row("local disk boots", t2, "serial", "the disk booted before GRUB's menu was fetched", ok=False)
            self.fatal = True
        kernels = [e for e in self.access if e.kind == "tftp" and e.t >= a.t0 and a.kernel in e.m.group(3)]
        if kernels:
            self.row("no installer this time", kernels[0].t, "bootstorm",
                     "the kernel was fetched again: the menu did not default to the local disk", ok=False)
            self.fatal = True
        elif t2 is not None and t2 >= t:
            self.row("no installer this time", None, "bootstorm", "no kernel fetched since power-on")
            self.reached_last = True

    def state(self):
        """bootstorm's own per-host record: its timeline must hold the flow's stages in order."""
        a = self.a
        if not a.host_json:
            return
        try:
            d = json.load(open(a.host_json))
        except (OSError, ValueError):
            d = None
        if not isinstance(d, dict) or "timeline" not in d:
            self.info.append("bootstorm has no per-host record with a timeline for %s (stage tracking, issue 6, "
                             "not in this build)" % a.mac)
            return
        tl = [(e.get("at", 0) / 1000.0, e.get("stage", "?")) for e in d["timeline"]]
        self.state_line = "bootstorm per-host state: stage %s%s; timeline %s" % (
            d.get("stage"), ", installed" if d.get("installed") else "",
            " ".join("%s %+.1f" % (st, t - a.t0) for t, st in tl))
        if d.get("error"):
            self.state_line += "; last error: %s" % d["error"]
        if a.flow in ("local", "uefi-local"):
            if d.get("stage") != "installed" or not d.get("installed"):
                self.fails.append("bootstorm's record: stage %s, installed %s (want installed)"
                                  % (d.get("stage"), d.get("installed")))
            return
        want = TRACKED[a.flow]
        at = dict((st, t) for t, st in tl)
        missing = [st for st in want if st not in at]
        if missing:
            self.fails.append("bootstorm's per-host timeline lacks %s" % ", ".join(missing))
        seen = [st for st in want if st in at]
        for x, y in zip(seen, seen[1:]):
            if at[x] > at[y] + 0.001:
                self.fails.append("bootstorm's per-host timeline has %s after %s" % (x, y))
        if d.get("stage") not in ORDER or ORDER.index(d.get("stage")) < ORDER.index(want[-1]):
            self.fails.append("bootstorm's per-host stage is %s, want %s or later" % (d.get("stage"), want[-1]))

    def run(self):
        getattr(self, "flow_" + self.a.flow.replace("-", "_"))()
        self.state()

    def table(self):
        out = []
        if self.a.title:
            out.append("  %s" % self.a.title)
        out.append("  %-32s %7s  %-9s  %s" % ("stage", "t (s)", "source", "detail"))
        out.append("  %-32s %7s  %-9s  %s" % ("power on", "0.0", "qemu", ""))
        for label, t, source, detail, ok in sorted(self.rows, key=lambda r: (r[1] is None, r[1] or 0)):
            out.append("  %-32s %s  %-9s  %s%s" % (label, self.rel(t), source, "" if ok else "MISSING/BAD: ", detail))
        for g in self.gaps:
            out.append("  gap: %s" % g)
        if self.state_line:
            out.append("  %s" % self.state_line)
        for i in self.info:
            out.append("  note: %s" % i)
        return "\n".join(out)


def tslog_find(path, regex, nth):
    import io
    import contextlib
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = tslog.find(path, regex, nth)
    return float(buf.getvalue()) if rc == 0 else None


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--flow", required=True, choices=["bios", "uefi", "ipxe", "local", "uefi-local"])
    p.add_argument("--mac", required=True)
    p.add_argument("--ip", required=True)
    p.add_argument("--t0", required=True, type=float)
    p.add_argument("--access", required=True)
    p.add_argument("--serial", required=True)
    p.add_argument("--capture")
    p.add_argument("--tftp-root")
    p.add_argument("--http-root")
    p.add_argument("--kernel", default="debian-installer/amd64/linux")
    p.add_argument("--initrd", default="debian-installer/amd64/initrd.gz")
    p.add_argument("--loader")
    p.add_argument("--title")
    p.add_argument("--host-json", help="GET /api/hosts/<mac> as bootstorm answered it after the run")
    p.add_argument("--reached", action="store_true")
    p.add_argument("--expect-ra", action="store_true",
                   help="bootstorm sends IPv6 router advertisements (--ipv6-ra): the firmware must hear one "
                        "and not wait for IPv6 autoconfiguration")
    p.add_argument("--expect-virtual", action="store_true",
                   help="the per-host menus must be bootstorm's rendering (the log marks them virtual)")
    a = p.parse_args()
    a.mac = a.mac.lower()
    c = Checker(a)
    if a.reached:
        a.host_json = None
    c.run()
    if a.reached:
        return 0 if c.reached_last else 3 if c.fatal else 1
    print(c.table())
    for f in c.fails:
        print("    FAIL: %s" % f)
    return 0 if not c.fails and c.reached_last else 1


if __name__ == "__main__":
    sys.exit(main())
