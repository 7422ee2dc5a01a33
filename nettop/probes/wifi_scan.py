"""wifi_scan: IEEE 802.11 scans per radio: who asked, channels visited, beacons heard, duration.

The book's ieee80211scan keeps one global start time; nettop keys every scan by its radio
(wiphy), so several radios scanning at once are told apart.

Kernel hooks, best first:
  tracepoint  cfg80211:rdev_scan (a scan requested through nl80211: iw, wpa_supplicant, NM),
              mac80211:drv_sw_scan_start / drv_hw_scan (the interface; software or offloaded
              scan; also scans mac80211 starts itself), mac80211:drv_config with
              IEEE80211_CONF_CHANGE_CHANNEL (each channel a software scan tunes to),
              cfg80211:cfg80211_inform_bss_frame (a beacon or probe response reported, with
              the BSS's channel), cfg80211:cfg80211_scan_done (the end, `aborted`; it names the
              radio by its MAC, resolved through /sys/class/ieee80211/*/macaddress),
              mac80211:drv_sw_scan_complete / api_scan_completed (the end of scans that
              cfg80211 was not told about). cfg80211 3.8+, mac80211 driver tracer 2.6.35+
              (CONFIG_MAC80211_DRIVER_API_TRACER; Debian enables it).
  kprobe      the book's route, for kernels without the mac80211 driver tracer: kprobes on
              ieee80211_request_scan, ieee80211_get_channel_khz (5.8+; channels something was
              heard on, as the book prints them: visits with nothing heard are not seen) and
              cfg80211_scan_done (ieee80211_scan_completed is only called for offloaded scans).
              cfg80211 structs live in module BTF, which nettop does not read: offsets come from
              the kernel headers, so the headers must match the running kernel.
Where the kernel has no cfg80211 at all the probe is unavailable: "no 802.11 stack in this
kernel"; where cfg80211 is a module not loaded, it says that.

Requester: `pid`/`comm` are the task on the CPU at rdev_scan, which runs in the requesting
process (nl80211's sendmsg); scans mac80211 starts itself (IBSS, mesh, connect without a
BSS) start in whatever task is running, often a kworker: the column is then not a requester.

Completion order seen on Linux 6.1 with mac80211_hwsim (software scan): cfg80211_scan_done,
then a drv_config back to the operating channel, then drv_sw_scan_complete. A scan ends at
the first completion event for its radio; later channel changes are not part of it.

Overhead: nothing outside scans on the hot path but a hash lookup per channel change and per
reported BSS (gated in the kernel by a map of radios scanning, bounded by max_radios); during
a scan, one 96-byte ring-buffer record per channel and per beacon. Lost records are counted.

Measured (Debian 6.1 in qemu, mac80211_hwsim, tests/vm_only/test_wifi_scan_vm.py): scan
durations within a few ms of the kernel's own trace and of `iw event -t` (~3.9 s a scan).

Example (the WiFi pane, replaying tests/data/wifi-hwsim-6.1.jsonl):
  TIME      DEVICE  REQUESTER  DURATION  CHANNELS  BEACONS  RESULT
  13:40:04  wlan2   163 iw      3829 ms        38        1  done
  13:39:59  wlan1   161 iw      3919 ms        38        1  done
  channels of wlan1 scan at 13:39:59: 38 in 3919 ms, beacons on 2437 MHz
  2.4 GHz   14  +0.00s  2412· 2417· 2422· 2427· 2432· 2437● 2442· 2447· 2452· 2457· ...
  5 GHz     24  +1.20s  5180· 5200· 5220· 5240· 5260· 5280· 5300· 5320· 5500· 5520· ...
  6 GHz      0  none visited
"""

from __future__ import annotations

import ctypes
import os
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from nettop import kernel
from nettop.btf import Btf, running_kernel_btf
from nettop.errors import ProbeUnavailable
from nettop.model.wifi import WifiChannel, WifiScan, WifiSnapshot, band_of
from nettop.probes.addresses import kernel_text
from nettop.probes.base import EventSource, Probe, kprobes, load_bpf, tracepoints
from nettop.probes.layout import Field
from nettop.probes.retransmits import monotonic_to_wall

NO_STACK = "no 802.11 stack in this kernel"
DEFAULT_RING_PAGES = 16  # 64 KiB: ~680 records, a dense 2.4+5 GHz scan's worth per interval
DEFAULT_MAX_RADIOS = 64
MAX_CHANNELS = 512  # per scan; a 2.4/5/6 GHz scan visits ~80
MAX_OPEN_SCANS = 64

TRACEPOINT = EventSource(
    "tracepoint",
    tracepoints(
        "cfg80211:rdev_scan",
        "cfg80211:cfg80211_scan_done",
        "cfg80211:cfg80211_inform_bss_frame",
        "mac80211:drv_sw_scan_start",
        "mac80211:drv_hw_scan",
        "mac80211:drv_config",
        "mac80211:drv_sw_scan_complete",
        "mac80211:api_scan_completed",
    ),
)
KPROBE = EventSource("kprobe", kprobes("ieee80211_request_scan", "ieee80211_get_channel_khz", "cfg80211_scan_done"))

# event kinds (EV_* in the C text)
REQUEST, SW_START, HW_START, CHANNEL, BEACON, DONE_MAC, SW_DONE, HW_DONE, KEY_DONE = range(1, 10)
_EVENT = struct.Struct("<QIIII16s32s16s6s2x")  # struct event below: 96 bytes

KPROBE_FIELDS = (
    Field("OFF_REQ_WIPHY", "cfg80211_scan_request", "wiphy"),
    Field("OFF_REQ_WDEV", "cfg80211_scan_request", "wdev"),
    Field("OFF_WDEV_NETDEV", "wireless_dev", "netdev"),
    Field("OFF_NETDEV_NAME", "net_device", "name"),
    Field("OFF_INFO_ABORTED", "cfg80211_scan_info", "aborted"),
)

_HEAD_C = r"""
#include <uapi/linux/ptrace.h>
%(includes)s
#define EV_REQUEST %(REQUEST)d
#define EV_SW_START %(SW_START)d
#define EV_HW_START %(HW_START)d
#define EV_CHANNEL %(CHANNEL)d
#define EV_BEACON %(BEACON)d
#define EV_DONE_MAC %(DONE_MAC)d
#define EV_SW_DONE %(SW_DONE)d
#define EV_HW_DONE %(HW_DONE)d
#define EV_KEY_DONE %(KEY_DONE)d
#define CONF_CHANGE_CHANNEL 0x40  /* IEEE80211_CONF_CHANGE_CHANNEL */
%(offsets)s

struct radio {
    char name[32];  /* wiphy name (tracepoints) or the wiphy pointer (kprobes) */
};

struct event {
    u64 ts;
    u32 kind;
    u32 freq;      /* MHz */
    u32 pid;
    u32 aux;       /* aborted, or the nl80211 band of a beacon */
    char comm[16];
    char radio[32];
    char vif[16];
    u8 mac[6];     /* the radio's MAC (cfg80211_scan_done names the radio no other way) */
    u8 pad[2];
};

BPF_HASH(scanning, struct radio, u64, %(max_radios)d);
BPF_PERCPU_ARRAY(counts, u64, 1);
BPF_RINGBUF_OUTPUT(events, %(ring_pages)d);

static __always_inline void emit(struct event *e)
{
    if (events.ringbuf_output(e, sizeof(*e), 0)) {
        int zero = 0;
        u64 *lost = counts.lookup(&zero);
        if (lost)
            (*lost)++;
    }
}

static __always_inline void stamp(struct event *e, u32 kind)
{
    e->ts = bpf_ktime_get_ns();
    e->kind = kind;
    e->pid = bpf_get_current_pid_tgid() >> 32;
    bpf_get_current_comm(&e->comm, sizeof(e->comm));
}
"""

_TRACEPOINT_C = r"""
/* The name is copied up to its NUL into a zeroed key: the kernel strscpy()s it into a reused
   trace buffer, so the bytes after the NUL are whatever an earlier event left there, and a
   32-byte copy made the same radio a different key from one event to the next. */
static __always_inline void radio_name(char *dst, const char *name)
{
    bpf_probe_read_kernel_str(dst, 32, name);
}

static __always_inline void start(struct event *e, u32 kind, const char *name)
{
    stamp(e, kind);
    radio_name(e->radio, name);
    struct radio r = {};
    __builtin_memcpy(r.name, e->radio, sizeof(r.name));
    scanning.update(&r, &e->ts);
}

/* channel changes and reported BSSs count only while the radio scans */
static __always_inline int scanning_now(struct event *e, u32 kind, const char *name)
{
    struct radio r = {};
    radio_name(r.name, name);
    if (!scanning.lookup(&r))
        return 0;
    stamp(e, kind);
    __builtin_memcpy(e->radio, r.name, sizeof(e->radio));
    return 1;
}

static __always_inline void finish(struct event *e, u32 kind, const char *name)
{
    stamp(e, kind);
    radio_name(e->radio, name);
    struct radio r = {};
    __builtin_memcpy(r.name, e->radio, sizeof(r.name));
    scanning.delete(&r);
}

TRACEPOINT_PROBE(cfg80211, rdev_scan)
{
    struct event e = {};
    start(&e, EV_REQUEST, args->wiphy_name);
    emit(&e);
    return 0;
}

TRACEPOINT_PROBE(mac80211, drv_sw_scan_start)
{
    struct event e = {};
    start(&e, EV_SW_START, args->wiphy_name);
    TP_DATA_LOC_READ_STR(e.vif, vif_name, sizeof(e.vif));
    emit(&e);
    return 0;
}

TRACEPOINT_PROBE(mac80211, drv_hw_scan)
{
    struct event e = {};
    start(&e, EV_HW_START, args->wiphy_name);
    TP_DATA_LOC_READ_STR(e.vif, vif_name, sizeof(e.vif));
    emit(&e);
    return 0;
}

TRACEPOINT_PROBE(mac80211, drv_config)
{
    if (!(args->changed & CONF_CHANGE_CHANNEL))
        return 0;
    struct event e = {};
    if (!scanning_now(&e, EV_CHANNEL, args->wiphy_name))
        return 0;
    e.freq = args->control_freq;
    emit(&e);
    return 0;
}

TRACEPOINT_PROBE(cfg80211, cfg80211_inform_bss_frame)
{
    struct event e = {};
    if (!scanning_now(&e, EV_BEACON, args->wiphy_name))
        return 0;
    e.freq = args->center_freq;
    e.aux = args->band;
    emit(&e);
    return 0;
}

TRACEPOINT_PROBE(cfg80211, cfg80211_scan_done)
{
    struct event e = {};
    stamp(&e, EV_DONE_MAC);
    e.aux = args->aborted;
    bpf_probe_read_kernel(e.mac, sizeof(e.mac), args->wiphy_mac);
    emit(&e);
    return 0;
}

TRACEPOINT_PROBE(mac80211, drv_sw_scan_complete)
{
    struct event e = {};
    finish(&e, EV_SW_DONE, args->wiphy_name);
    TP_DATA_LOC_READ_STR(e.vif, vif_name, sizeof(e.vif));
    emit(&e);
    return 0;
}

TRACEPOINT_PROBE(mac80211, api_scan_completed)
{
    struct event e = {};
    finish(&e, EV_HW_DONE, args->wiphy_name);
    e.aux = args->aborted;
    emit(&e);
    return 0;
}
"""

_KPROBE_C = r"""
static __always_inline void radio_of(struct radio *r, void *wiphy)
{
    u64 key = (u64)wiphy;
    __builtin_memcpy(r->name, &key, sizeof(key));
}

int kprobe__ieee80211_request_scan(struct pt_regs *ctx, void *sdata, void *req)
{
    struct event e = {};
    struct radio r = {};
    void *wiphy = 0, *wdev = 0, *netdev = 0;
    bpf_probe_read_kernel(&wiphy, sizeof(wiphy), req + OFF_REQ_WIPHY);
    bpf_probe_read_kernel(&wdev, sizeof(wdev), req + OFF_REQ_WDEV);
    if (wdev)
        bpf_probe_read_kernel(&netdev, sizeof(netdev), wdev + OFF_WDEV_NETDEV);
    if (netdev)
        bpf_probe_read_kernel_str(e.vif, sizeof(e.vif), netdev + OFF_NETDEV_NAME);
    stamp(&e, EV_REQUEST);
    radio_of(&r, wiphy);
    __builtin_memcpy(e.radio, r.name, sizeof(e.radio));
    scanning.update(&r, &e.ts);
    emit(&e);
    return 0;
}

int kprobe__ieee80211_get_channel_khz(struct pt_regs *ctx, void *wiphy, u32 freq_khz)
{
    struct radio r = {};
    radio_of(&r, wiphy);
    if (!scanning.lookup(&r))
        return 0;
    struct event e = {};
    stamp(&e, EV_BEACON);
    __builtin_memcpy(e.radio, r.name, sizeof(e.radio));
    e.freq = freq_khz / 1000;
    emit(&e);
    return 0;
}

int kprobe__cfg80211_scan_done(struct pt_regs *ctx, void *request, void *info)
{
    struct event e = {};
    struct radio r = {};
    void *wiphy = 0;
    u8 aborted = 0;
    bpf_probe_read_kernel(&wiphy, sizeof(wiphy), request + OFF_REQ_WIPHY);
    if (info)
        bpf_probe_read_kernel(&aborted, sizeof(aborted), info + OFF_INFO_ABORTED);
    stamp(&e, EV_KEY_DONE);
    e.aux = aborted;
    radio_of(&r, wiphy);
    __builtin_memcpy(e.radio, r.name, sizeof(e.radio));
    scanning.delete(&r);
    emit(&e);
    return 0;
}
"""


def kprobe_offsets(btf: Btf | None) -> str:
    """BTF numbers for structs in vmlinux BTF; the headers' offsetof() for cfg80211's own
    structs, which live in module BTF."""
    lines = []
    for f in KPROBE_FIELDS:
        if btf is not None and btf.has_struct(f.struct):
            lines.append(f"#define {f.macro} {btf.offsetof(f.struct, f.path)}")
        else:
            lines.append(f"#define {f.macro} offsetof(struct {f.struct}, {f.path})")
    return "\n".join(lines)


def bpf_text(
    source: str, ring_pages: int = DEFAULT_RING_PAGES, max_radios: int = DEFAULT_MAX_RADIOS, btf: Btf | None = None
) -> str:
    """The complete C program for one event source (shown by `nettop --ebpf`).

    The tracepoint structs name nl80211 enum types (band, interface type): their header
    must be included for BCC to compile them."""
    if source == "kprobe":
        includes = "#include <linux/netdevice.h>\n#include <net/cfg80211.h>"
        offsets = kprobe_offsets(btf if btf is not None else running_kernel_btf())
        body = _KPROBE_C
    else:
        includes, offsets, body = "#include <uapi/linux/nl80211.h>", "", _TRACEPOINT_C
    kinds = {
        "REQUEST": REQUEST, "SW_START": SW_START, "HW_START": HW_START, "CHANNEL": CHANNEL, "BEACON": BEACON,
        "DONE_MAC": DONE_MAC, "SW_DONE": SW_DONE, "HW_DONE": HW_DONE, "KEY_DONE": KEY_DONE,
    }
    head = _HEAD_C % {
        "includes": includes, "offsets": offsets, "max_radios": max_radios, "ring_pages": ring_pages, **kinds,
    }
    return head + body


# -- decoding ----------------------------------------------------------------------------


def decode_event(raw: bytes, pointer_keys: bool = False) -> dict[str, Any]:
    ts, kind, freq, pid, aux, comm, radio, vif, mac = _EVENT.unpack_from(raw)
    wiphy = f"wiphy@{int.from_bytes(radio[:8], 'little'):x}" if pointer_keys else kernel_text(radio)
    return {
        "ts": ts, "kind": kind, "freq": freq, "pid": pid, "aux": aux, "comm": kernel_text(comm),
        "wiphy": wiphy, "vif": kernel_text(vif), "mac": mac.hex(":"),
    }


# -- radios by MAC and their interfaces (sysfs) ------------------------------------------


def radio_macs(root: Path = Path("/sys/class/ieee80211")) -> dict[str, str]:
    """MAC -> wiphy name: cfg80211_scan_done names a radio only by its permanent address."""
    macs = {}
    try:
        phys = list(root.iterdir())
    except OSError:
        return macs
    for phy in phys:
        try:
            macs[(phy / "macaddress").read_text().strip().lower()] = phy.name
        except OSError:
            continue
    return macs


def radio_interfaces(root: Path = Path("/sys/class/net")) -> dict[str, list[str]]:
    """wiphy name -> its network interfaces (each has a phy80211 link to its radio)."""
    found: dict[str, list[str]] = {}
    try:
        devices = sorted(root.iterdir())
    except OSError:
        return found
    for dev in devices:
        link = dev / "phy80211"
        if link.exists():
            found.setdefault(os.path.basename(os.path.realpath(link)), []).append(dev.name)
    return found


class Radios:
    """The sysfs names, read again when an unknown radio shows up (hotplug, module load)."""

    def __init__(
        self,
        macs: Callable[[], dict[str, str]] = radio_macs,
        interfaces: Callable[[], dict[str, list[str]]] = radio_interfaces,
    ) -> None:
        self._read_macs = macs
        self._read_interfaces = interfaces
        self._macs: dict[str, str] = {}
        self._interfaces: dict[str, list[str]] = {}

    def wiphy_of(self, mac: str) -> str | None:
        if mac not in self._macs:
            self._macs = self._read_macs()
        return self._macs.get(mac)

    def device_of(self, wiphy: str) -> str:
        """The radio's only interface, else the radio's own name."""
        if wiphy not in self._interfaces:
            self._interfaces = self._read_interfaces()
        names = self._interfaces.get(wiphy, [])
        return names[0] if len(names) == 1 else wiphy


# -- assembling scans from events --------------------------------------------------------


@dataclass
class _Open:
    wiphy: str
    start_ns: int
    pid: int | None
    comm: str
    device: str = ""
    kind: str = ""
    visits: list[tuple[int, int]] = field(default_factory=list)  # (freq, ns)
    beacons: dict[int, int] = field(default_factory=dict)  # freq -> count
    first_heard: dict[int, int] = field(default_factory=dict)  # freq -> ns


class ScanAssembler:
    """Events in time order -> scans, one open scan per radio at a time (as in cfg80211)."""

    def __init__(self, radios: Radios | None = None, max_channels: int = MAX_CHANNELS, max_open: int = MAX_OPEN_SCANS):
        self.radios = radios if radios is not None else Radios()
        self.max_channels = max_channels
        self.max_open = max_open
        self.open: dict[str, _Open] = {}
        self.done: list[WifiScan] = []
        self.dropped = 0

    def feed(self, events: Iterable[Mapping[str, Any]], to_wall: Callable[[int], float]) -> None:
        for event in sorted(events, key=lambda e: e["ts"]):
            self._feed(event, to_wall)

    def _begin(self, event: Mapping[str, Any], kind: str = "") -> _Open:
        wiphy = event["wiphy"]
        if wiphy in self.open:
            self.dropped += 1  # a request the driver refused never completes: replaced here
            del self.open[wiphy]
        elif len(self.open) >= self.max_open:
            self.dropped += 1
            self.open.pop(next(iter(self.open)))
        scan = _Open(wiphy, event["ts"], event["pid"] or None, event["comm"] or "-", event.get("vif", ""), kind)
        self.open[wiphy] = scan
        return scan

    def _feed(self, event: Mapping[str, Any], to_wall: Callable[[int], float]) -> None:
        kind = event["kind"]
        wiphy = event["wiphy"]
        scan = self.open.get(wiphy)
        if kind == REQUEST:
            self._begin(event)
        elif kind in (SW_START, HW_START):
            flavour = "sw" if kind == SW_START else "hw"
            if scan is None or scan.kind:  # mac80211 started this scan itself
                scan = self._begin(event, flavour)
            scan.kind = flavour
            scan.device = event["vif"] or scan.device
        elif scan is None:
            if kind == DONE_MAC:
                resolved = self.radios.wiphy_of(event["mac"])
                if resolved in self.open:
                    self._close(self.open[resolved], event, bool(event["aux"]), to_wall)
            return
        elif kind == CHANNEL:
            if len(scan.visits) < self.max_channels:
                scan.visits.append((event["freq"], event["ts"]))
            else:
                self.dropped += 1
        elif kind == BEACON:
            freq = event["freq"]
            scan.beacons[freq] = scan.beacons.get(freq, 0) + 1
            scan.first_heard.setdefault(freq, event["ts"])
        elif kind in (SW_DONE, HW_DONE, KEY_DONE):
            self._close(scan, event, kind != SW_DONE and bool(event["aux"]), to_wall)

    def _close(self, scan: _Open, event: Mapping[str, Any], aborted: bool, to_wall: Callable[[int], float]) -> None:
        del self.open[scan.wiphy]
        self.done.append(self._scan(scan, event["ts"], event["ts"], aborted, to_wall))

    def _scan(
        self, scan: _Open, end_ns: int | None, upto_ns: int, aborted: bool, to_wall: Callable[[int], float]
    ) -> WifiScan:
        """`end_ns` None: still under way, `upto_ns` is now."""
        def at_ms(ns: int) -> float:
            return max(0.0, (ns - scan.start_ns) / 1e6)

        if scan.visits:
            channels = tuple(
                WifiChannel(band_of(freq), freq, freq in scan.beacons, at_ms(ns), scan.beacons.get(freq, 0))
                for freq, ns in scan.visits
            )
        else:  # offloaded scans (and the kprobe source) show only where something was heard
            channels = tuple(
                WifiChannel(band_of(freq), freq, True, at_ms(scan.first_heard[freq]), count)
                for freq, count in sorted(scan.beacons.items(), key=lambda item: scan.first_heard[item[0]])
            )
        return WifiScan(
            device=scan.device or self.radios.device_of(scan.wiphy),
            wiphy=scan.wiphy,
            start=to_wall(scan.start_ns),
            end=None if end_ns is None else to_wall(end_ns),
            duration_ms=at_ms(upto_ns),
            aborted=aborted,
            pid=scan.pid,
            comm=scan.comm,
            kind=scan.kind,
            channels=channels,
        )

    def take(self, now_ns: int, to_wall: Callable[[int], float]) -> tuple[tuple[WifiScan, ...], tuple[WifiScan, ...]]:
        """Scans completed since the last take, and those under way (duration so far)."""
        done, self.done = tuple(self.done), []
        return done, tuple(self._scan(scan, None, now_ns, False, to_wall) for scan in self.open.values())


# -- availability -----------------------------------------------------------------------


def stack_problem(
    events_dir: Path | None = None,
    module_dir: Path = Path("/sys/module/cfg80211"),
    modules_root: Path = Path("/lib/modules"),
) -> str | None:
    """Why this kernel cannot scan at all, or None: the probe's reason when no source fits."""
    root = kernel.tracefs()
    events_dir = events_dir if events_dir is not None else (root / "events" if root else None)
    if module_dir.exists() or (events_dir is not None and (events_dir / "cfg80211").is_dir()):
        return None
    release = os.uname().release
    on_disk = list((modules_root / release / "kernel" / "net" / "wireless").glob("cfg80211.ko*"))
    if on_disk:
        return "802.11 stack not loaded (cfg80211 is a module: modprobe cfg80211, or load a WiFi driver)"
    return NO_STACK


class WifiScanProbe(Probe):
    name = "wifi_scan"
    panes = ("wifi",)
    sources = (TRACEPOINT, KPROBE)

    def __init__(
        self,
        forced_source: str | None = None,
        ring_pages: int = DEFAULT_RING_PAGES,
        max_radios: int = DEFAULT_MAX_RADIOS,
        radios: Radios | None = None,
    ) -> None:
        super().__init__(forced_source)
        self.ring_pages = ring_pages
        self.max_radios = max_radios
        self.assembler = ScanAssembler(radios)
        self._pending: list[dict[str, Any]] = []

    def select(self) -> EventSource:
        try:
            chosen = super().select()
        except ProbeUnavailable as exc:
            problem = stack_problem()
            raise ProbeUnavailable(problem or str(exc)) from exc
        if chosen.name == "kprobe":
            self.note = "channels: only those something was heard on (no mac80211 driver tracer)"
        return chosen

    def program_text(self) -> str:
        if self.source is None:
            self.select()
        return bpf_text(self.source.name, self.ring_pages, self.max_radios)

    def start(self) -> None:
        self._bpf = load_bpf(self.program_text())
        self._bpf["events"].open_ring_buffer(self._on_event)

    def _on_event(self, _ctx, data, size) -> None:
        self._pending.append(decode_event(ctypes.string_at(data, size), self.source.name == "kprobe"))

    def poll(self, interval: float) -> Mapping[str, Any]:
        assert self._bpf is not None
        self._bpf.ring_buffer_consume()
        events, self._pending = self._pending, []
        now_ns = time.monotonic_ns()
        to_wall = monotonic_to_wall(now_ns, time.time())
        self.assembler.feed(events, to_wall)
        done, under_way = self.assembler.take(now_ns, to_wall)
        lost = self.counter_delta("counts")
        dropped, self.assembler.dropped = self.assembler.dropped, 0
        return {"wifi": WifiSnapshot(self.source.name, lost, done, under_way, dropped)}
