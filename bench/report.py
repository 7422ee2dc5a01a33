"""docs/benchmarks.md from bench/results.json: the targets with met/missed, then every
figure as median [min–max] over the interleaved runs, or as median [95% confidence
interval] over the slices of fast alternation. Throughput targets are judged by the
alternation where it ran; a results file without it judges the interleaved rounds (and
says "not shown" where a pinned workload's ratio is above what nettop's own BPF time allows).

Run: .venv/bin/python bench/report.py  (re-renders the page from the last results.json)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from nettop.probes.socket_io import DEFAULT_MAX_SOCKETS

HERE = Path(__file__).resolve().parent


def get(data: dict, *path, default=None):
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return default
        data = data[key]
    return data


def fig(f: dict | None, digits: int = 2, unit: str = "") -> str:
    """`median [min–max]`, or `–` when there were no runs."""
    if not f or not f.get("n"):
        return "–"
    if f["n"] == 1 or f["min"] == f["max"]:
        return f"{f['median']:.{digits}f}{unit}"
    return f"{f['median']:.{digits}f}{unit} [{f['min']:.{digits}f}–{f['max']:.{digits}f}]"


def num(value: float | None, digits: int = 1, unit: str = "") -> str:
    return "–" if value is None else f"{value:.{digits}f}{unit}"


# -- targets ------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    name: str
    wanted: str
    measure: Callable[[dict], tuple[float | None, str]]  # value tested, and how it reads
    met: Callable[[float], bool]
    ceiling: Callable[[dict], tuple[float, str] | None] | None = None  # the most the value can be, and why


def pinned_ceiling(workload: str, operation: str) -> Callable[[dict], tuple[float, str] | None]:
    """Both ends of a pinned workload share one CPU and keep it busy, so each operation takes
    at least its bare time plus nettop's BPF time for it: a ratio above bare / (bare + BPF)
    is the rounds' noise, not nettop's cost. The BPF time is measured with the kernel's
    statistics on, which count part of their own cost, so the ceiling is a little low:
    CEILING_SLACK allows for that."""

    def ceiling(b: dict):
        if alternated(b, workload):
            return None  # judged by the alternation, which needs no ceiling
        rate = get(b, "overhead", "rate", "bare", workload, "median")  # thousands per second
        bpf_ns = get(b, "overhead", "bpf", workload, "ns_per_operation", "median")
        if not (rate and bpf_ns):
            return None
        bare_ns = 1e6 / rate
        why = f"its BPF programs' {bpf_ns:,.0f} ns on a {bare_ns / 1000:.1f} µs {operation}"
        return bare_ns / (bare_ns + bpf_ns), why

    return ceiling


#: observers run in the same rounds (and variants in the same slices) whose ratios put nettop's in context
SAME_RUN = (("minimal", "the issue's minimal program"), ("nettop-sockets", "nettop without per-packet hooks"))
#: programs that return at once on nettop's hooks: together, the floor under any program there
FLOORS = ("empty-device-hooks", "empty-socket-hooks")


def alternated(b: dict, workload: str) -> dict | None:
    """The alternation's ratios for a workload, if nettop's were measured."""
    ratios = get(b, "alternation", "workloads", workload, "ratio")
    return ratios if get(ratios, "nettop", "n") else None


def with_ci(summary: dict) -> str:
    return f"{summary['median']:.3f} [{summary['ci_low']:.3f}–{summary['ci_high']:.3f}]"


def floor_of(ratios: dict) -> float | None:
    """What empty programs on nettop's device and socket hooks keep together: the most any
    programs on those hooks can keep."""
    if not all(get(ratios, key, "n") for key in FLOORS):
        return None
    floor = 1.0
    for key in FLOORS:
        floor *= ratios[key]["median"]
    return floor


def ratio_of(workload: str) -> Callable[[dict], tuple[float | None, str]]:
    def measure(b: dict):
        rounds = get(b, "overhead", "ratio", "nettop", workload)
        ratios = alternated(b, workload)
        if ratios:
            beside = [f"{title} {ratios[key]['median']:.3f}" for key, title in SAME_RUN if get(ratios, key, "n")]
            floor = floor_of(ratios)
            if floor is not None:
                beside.append(f"empty programs on its hooks {floor:.3f}")
            text = f"{with_ci(ratios['nettop'])} by fast alternation (same slices: {'; '.join(beside)})"
            if rounds and rounds.get("n"):
                text += f"; `nettop record` in interleaved rounds {fig(rounds, 3)}"
            return ratios["nettop"]["median"], text
        if not (rounds and rounds.get("n")):
            return None, "–"
        beside = [f"{title} {get(b, 'overhead', 'ratio', key, workload, 'median'):.3f}"
                  for key, title in SAME_RUN if get(b, "overhead", "ratio", key, workload, "n")]
        return rounds["median"], fig(rounds, 3) + (f" (same run: {'; '.join(beside)})" if beside else "")

    return measure


def bulk_cpu(b: dict):
    figs = [get(b, "overhead", "cpu_percent", "nettop", w) for w in ("bulk1", "bulk8")]
    figs = [f for f in figs if f and f.get("n")]
    if not figs:
        return None, "–"
    worst = max(figs, key=lambda f: f["median"])
    return worst["median"], f"{fig(worst, 2, '%')} (worse of 1 and 8 streams)"


def per_load(path: tuple[str, ...], unit: str, digits: int = 1):
    def measure(b: dict):
        loads = {k: get(v, *path) for k, v in get(b, "scale", default={}).items() if isinstance(v, dict)}
        loads = {k: v for k, v in loads.items() if v is not None}
        if not loads:
            return None, "–"
        text = ", ".join(f"{k} {num(v, digits, unit)}" for k, v in loads.items())
        return max(loads.values()), text

    return measure


def capture_factor(workloads: tuple[str, ...]):
    """Cheapest packet-capture tool's CPU over nettop's, per workload; the smallest factor."""

    def measure(b: dict):
        cpu = get(b, "overhead", "cpu_percent", default={})
        kinds = get(b, "overhead", "observers", default={})
        factors = {}
        for workload in workloads:
            nettop = get(cpu, "nettop", workload)
            capture = {o: cpu[o][workload]["median"] for o, k in kinds.items()
                       if k["kind"] == "capture" and get(cpu, o, workload, "n")}
            if capture and nettop and nettop.get("n"):
                cheapest = min(capture, key=capture.get)
                factors[workload] = (capture[cheapest] / max(nettop["median"], 0.01), cheapest)
        if not factors:
            return None, "–"
        worst = min(factors, key=lambda w: factors[w][0])
        return factors[worst][0], ", ".join(f"{w}: {f:.1f}× ({tool})" for w, (f, tool) in factors.items())

    return measure


def startup_fig(key: str, unit: str, digits: int = 2):
    def measure(b: dict):
        f = get(b, "startup", key)
        return (f["median"], fig(f, digits, unit)) if f and f.get("n") else (None, "–")

    return measure


def soak_value(key: str, unit: str):
    def measure(b: dict):
        v = get(b, "soak", key)
        return (v, num(v, 1, unit)) if v is not None else (None, "–")

    return measure


def soak_exceptions(b: dict):
    soak = b.get("soak")
    if soak is None:
        return None, "–"
    count = len(soak["exceptions"]) + len(soak["panes_stopped"])
    return count, f"{len(soak['exceptions'])} exceptions, panes stopped: {', '.join(soak['panes_stopped']) or 'none'}"


TARGETS = (
    Target("8-stream loopback throughput ratio, all panes", "≥ 0.97", ratio_of("bulk8"), lambda v: v >= 0.97),
    Target("64-byte writes ratio", "≥ 0.90", ratio_of("writes64"), lambda v: v >= 0.90),
    Target("64-byte request/response ratio", "≥ 0.93", ratio_of("rr64"), lambda v: v >= 0.93,
           pinned_ceiling("rr64", "round trip")),
    Target("nettop CPU at bulk loopback", "≤ 2% of a core", bulk_cpu, lambda v: v <= 2),
    Target("nettop CPU, 10,000 connections, 1 s interval", "≤ 5% of a core",
           per_load(("dashboard", "cpu_percent"), "%"), lambda v: v <= 5),
    Target("poll + UI update p99, 10,000 connections", "≤ 100 ms",
           per_load(("poll_plus_update_ms", "p99"), " ms", 0), lambda v: v <= 100),
    Target("CPU vs the cheapest packet-capture tool, bulk loopback", "≥ 10× less",
           capture_factor(("bulk1", "bulk8")), lambda v: v >= 10),
    Target("CPU vs the cheapest packet-capture tool, small messages", "≥ 10× less",
           capture_factor(("writes64", "rr64")), lambda v: v >= 10),
    Target("time to first frame", "≤ 1 s", startup_fig("first_frame_s", " s"), lambda v: v <= 1),
    Target("all panes live", "≤ 10 s", startup_fig("all_live_s", " s"), lambda v: v <= 10),
    Target("RSS with every pane (after start)", "≤ 300 MB", startup_fig("rss_mb", " MB", 0), lambda v: v <= 300),
    Target("RSS with every pane, 10,000 connections", "≤ 300 MB",
           per_load(("dashboard", "rss_mb_end"), " MB", 0), lambda v: v <= 300),
    Target("soak RSS growth", "≤ 10%", soak_value("rss_growth_percent", "%"), lambda v: v <= 10),
    Target("soak exceptions", "0", soak_exceptions, lambda v: v == 0),
)


CEILING_SLACK = 0.03  # a ratio this far above its ceiling is still taken as measured


def targets_table(benches: dict) -> list[str]:
    benches = {k: v for k, v in benches.items() if "error" not in v}
    lines = ["| target | wanted | measured | |", "|---|---|---|---|"]
    for target in TARGETS:
        value, text = target.measure(benches)
        verdict = "not measured" if value is None else ("met" if target.met(value) else "**missed**")
        ceiling = target.ceiling(benches) if target.ceiling and value is not None else None
        if ceiling and value > ceiling[0] + CEILING_SLACK:
            text += f"; above the {ceiling[0]:.3f} at most that nettop's own cost allows ({ceiling[1]})"
            verdict = "**not shown**: the run's noise exceeds nettop's cost"
        lines.append(f"| {target.name} | {target.wanted} | {text} | {verdict} |")
    return lines


# -- sections -----------------------------------------------------------------


def overhead_section(o: dict) -> list[str]:
    workloads, observers = o["workloads"], o["observers"]
    out = [
        "## 1. Overhead on traffic, and 2. side by side with the alternatives",
        "",
        f"{o['rounds']} rounds of {o['seconds']:g} s per workload; in each round every workload runs bare and under "
        "every observer (the order rotates from round to round), and each ratio is taken against the bare run of "
        "the same round. CPU is utime+stime of the observer's process over the workload only, in % of one core.",
        "",
        "Bare rates: " + "; ".join(f"{w['title']} {fig(get(o, 'rate', 'bare', k))} {w['unit']}"
                                   for k, w in workloads.items()) + ".",
        "",
        "Throughput ratio (with / bare, same round):",
        "",
        "| observer | " + " | ".join(w["title"] for w in workloads.values()) + " |",
        "|---|" + "---|" * len(workloads),
    ]
    for key, observer in observers.items():
        if key != "bare":
            out.append(f"| {observer['title']} | " + " | ".join(fig(get(o, "ratio", key, w), 3) for w in workloads) + " |")
    out += ["", "Observer CPU, % of one core:", "",
            "| observer | kind | " + " | ".join(w["title"] for w in workloads.values()) + " |",
            "|---|---|" + "---|" * len(workloads)]
    for key, observer in observers.items():
        if key != "bare":
            out.append(f"| {observer['title']} | {observer['kind']} | "
                       + " | ".join(fig(get(o, "cpu_percent", key, w), 2) for w in workloads) + " |")
    if o.get("bpf"):
        out.append("| nettop + its BPF programs' run time (charged to the workload) | nettop | " + " | ".join(
            num(get(o, "cpu_percent", "nettop", w, "median", default=0) + get(o, "bpf", w, "core_percent", "median",
                                                                          default=0), 2)
            for w in workloads) + " |")
        out += ["", "The packet-capture tools' own in-kernel cost (copying packets to their sockets, in the "
                "workload's context) is not in their CPU figures either; it shows in their throughput ratios."]
        out += ["", "nettop's BPF programs (kernel BPF run-time statistics, enabled for a separate nettop segment "
                "of each round only; this run time is charged to the workload, not to nettop's process):", "",
                "| workload | BPF CPU, % of a core | BPF ns per write / round trip | rate meanwhile |",
                "|---|---|---|---|"]
        for key, b in o["bpf"].items():
            out.append(f"| {workloads[key]['title']} | {fig(b['core_percent'])} | {fig(b['ns_per_operation'], 0)} | "
                       f"{fig(b['rate_with_stats'])} {workloads[key]['unit']} |")
        names = sorted({n for b in o["bpf"].values() for n in b["programs"]})
        keys = list(o["bpf"])
        out += ["", "Per program, ns per event (events per second):", "",
                "| program | " + " | ".join(workloads[k]["title"] for k in keys) + " |", "|---|" + "---|" * len(keys)]
        for name in names:
            cells = []
            for k in keys:
                p = get(o, "bpf", k, "programs", name)
                if not p or not get(p, "ns_per_event", "n"):
                    cells.append("–")
                else:
                    cells.append(f"{fig(p['ns_per_event'], 0)} ({p['events_per_s']['median']:,.0f}/s)")
            out.append(f"| `{name}` | " + " | ".join(cells) + " |")
    if o.get("problems"):
        out += ["", "Errors seen on observers' output: " + "; ".join(
            f"{k}: {' | '.join(v[:3])}" for k, v in o["problems"].items())]
    return out + [""]


def per_slice_rate(counter: str, per_s: float) -> str:
    """A bare slice's rate of a lo counter, in the unit a reader expects."""
    if counter == "tx_bytes":
        return f"{per_s * 8 / 1e9:.2f} Gbit/s"
    return f"{per_s / 1e3:.1f}k packets/s"


def alternation_section(a: dict) -> list[str]:
    workloads = a["workloads"]
    out = ["## 1b. Fast alternation: what nettop's BPF programs cost the traffic", "",
           f"One client runs throughout each workload while the programs, loaded once, are attached and detached "
           f"in {a['slice_s']:g} s slices ({a['seconds_per_variant']:g} s attached per variant and workload, the "
           "variants in turn); each attached slice's rate (lo's own counters) is divided by the mean of the bare "
           "slices on either side of it. Figures are the median ratio [its 95% confidence interval] over the "
           "slices: the rate here jumps by a third within seconds with nothing attached, which spoils the few "
           "slices a jump falls in and which the median leaves out. nettop is every probe, attached and polled "
           f"as `record` does ({', '.join(a['nettop_probes'])}); only its BPF programs are toggled, so its "
           "process's CPU (above) is not in these ratios.", "",
           "| variant | " + " | ".join(w["title"] for w in workloads.values()) + " |",
           "|---|" + "---|" * len(workloads)]
    for key, title in a["variants"].items():
        cells = [f"{with_ci(r)} (n {r['n']})" if (r := get(w, "ratio", key)) and r.get("n") else "–"
                 for w in workloads.values()]
        out.append(f"| {title} | " + " | ".join(cells) + " |")
    out.append("| bare rate, median slice | " + " | ".join(
        per_slice_rate(w["counter"], w["bare_per_s"]["median"]) if get(w, "bare_per_s", "n") else "–"
        for w in workloads.values()) + " |")
    return out + [""]


def ms_row(title: str, f: dict | None) -> str:
    if not f:
        return f"| {title} | – | – | – |"
    return f"| {title} | {f['p50']:.1f} | {f['p99']:.1f} | {f['n']} |"


def dropped_note(load: dict) -> str:
    """Sends and receives of sockets that found the socket map full (older results lack it)."""
    dropped = load.get("tcp_dropped")
    if not dropped or not dropped.get("max"):
        return ""
    return (f" (both ends are local: more sockets than the socket map's default {DEFAULT_MAX_SOCKETS:,} entries, "
            f"so {fig(dropped, 0)} sends/receives per interval were not counted, and shown as `dropped`)")


def scale_section(s: dict) -> list[str]:
    out = ["## 3. Scale", "",
           f"{s['connections']:,} concurrent TCP connections, each end writing 64 bytes a second. Poll: a real "
           "LiveSource in the bench process (the load runs in others). UI: the same frames fed to the app headless "
           "(`accept_frame` + one `pilot.pause()`), once with the TCP pane visible and once with the hosts view; "
           "`show()` alone for each; the first frame primes the app untimed; an update on the wall clock until its last screen "
           "update is painted (rendered to terminal text, as the terminal driver does; it includes the wait for Textual's next "
           "screen refresh), as CPU time over the whole pause, and until `pilot.pause()` returned (its idle detection sleeps in "
           "20 ms steps; the update figure of runs before commit 9f722f3). Both the poll and the UI pace the collector as nettop does "
           "(nettop/heap.py). Dashboard: the live app in tmux at `-i 1` with its TCP tab open, CPU over the stated seconds.", ""]
    for key, load in s.items():
        if not isinstance(load, dict):
            continue
        if "error" in load:
            out += [f"### {load['title']}", "", f"Failed: `{load['error']}`", ""]
            continue
        d = load["dashboard"]
        out += [f"### {load['title']}", "",
                f"TCP rows per frame: {fig(load['tcp_rows'], 0)}{dropped_note(load)}. "
                f"Dashboard: CPU {d['cpu_percent']:.1f}% of a core "
                f"over {d['seconds']:g} s; RSS {d['rss_mb_start']:.0f} → {d['rss_mb_end']:.0f} MB.", "",
                "| per interval | p50 ms | p99 ms | samples |", "|---|---|---|---|",
                ms_row("poll (drain + snapshot, every probe)", load["poll_ms"]),
                ms_row("UI update, TCP pane visible", load.get("update_tcp_visible_ms")),
                ms_row("… its CPU time (whole pause)", load.get("update_tcp_visible_cpu_ms")),
                ms_row("… until the pause returned", load.get("update_tcp_visible_settled_ms")),
                ms_row("UI update, hosts view visible", load.get("update_hosts_visible_ms")),
                ms_row("… its CPU time (whole pause)", load.get("update_hosts_visible_cpu_ms")),
                ms_row("… until the pause returned", load.get("update_hosts_visible_settled_ms")),
                ms_row("TCP pane show()", load.get("show_tcp_ms")),
                ms_row("hosts view show()", load.get("show_hosts_ms")),
                ms_row("poll + UI update (worse view)", load.get("poll_plus_update_ms")),
                ms_row("full collection, once a minute (nettop/heap.py)", load.get("full_collection_ms")), ""]
    return out


def startup_section(s: dict) -> list[str]:
    out = ["## 4. Startup", "",
           f"The live dashboard in a 160×40 tmux terminal, {s['runs']} runs; a pane is live when its status line "
           "says so (BCC compiles each probe's program with clang in the background).", "",
           "| | seconds or MB |", "|---|---|",
           f"| first frame | {fig(s['first_frame_s'])} s |",
           *[f"| {key} live | {fig(f)} s |" for key, f in s["pane_live_s"].items() if f.get("n")],
           f"| every pane live or unavailable | {fig(s['all_live_s'])} s |",
           f"| RSS then | {fig(s['rss_mb'], 0)} MB |"]
    if s.get("unavailable"):
        out.append(f"\nUnavailable on this machine (not counted): {', '.join(s['unavailable'])}.")
    return out + [""]


def soak_section(s: dict) -> list[str]:
    losses = "; ".join(f"{pane}: " + ", ".join(f"{k} {v}" for k, v in fields.items())
                       for pane, fields in s["losses"].items()) or "none reported"
    return ["## 5. Churn soak", "",
            f"{s['seconds'] / 60:g} minutes of short-lived loopback connections "
            f"({s['connections_per_s']:,.0f} per second, one churn process per CPU) plus one bulk iperf3 flow, with "
            "`nettop record` running every pane.", "",
            "| | |", "|---|---|",
            f"| nettop CPU | {s['nettop_cpu_percent']:.1f}% of a core |",
            f"| RSS start → end (max) | {s['rss_mb_start']:.0f} → {s['rss_mb_end']:.0f} MB ({s['rss_mb_max']:.0f}), "
            f"{s['rss_growth_percent']:+.1f}% |",
            f"| frames recorded | {s['frames']} |",
            f"| dropped / lost (summed over frames) | {losses} |",
            f"| panes that stopped | {', '.join(s['panes_stopped']) or 'none'} |",
            f"| exceptions on stderr | {len(s['exceptions'])} |", ""]


def render(results: dict) -> str:
    m = results["machine"]
    b = results["benches"]
    out = [
        "# Benchmarks",
        "",
        "What nettop costs, measured side by side with the tools users would pick instead. Regenerate with "
        "`make bench` (root; about 50 minutes) or `make bench BENCH_ARGS=--quick` (a ~6-minute smoke run); the "
        "figures are also in [bench/results.json](../bench/results.json). Each figure is the median "
        "[min–max] over repeated, interleaved runs, except those of fast alternation (section 1b): the median "
        "[95% confidence interval] over hundreds of 0.1 s slices, which is what the throughput targets are "
        "judged by.",
        "",
        f"- date: {results['date']} ({results['mode']} run, "
        f"{sum(v.get('minutes', 0) for v in b.values()):.1f} min over its benches)" + (
            "; per bench: " + "; ".join(f"{name} {v.get('date', '?')} ({v.get('minutes', '?')} min)" for name, v in b.items())
            if len({v.get("date") for v in b.values()}) > 1 else ""),
        f"- machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB; {m['os']}; Python {m['python']}",
        f"- kernel: {m['kernel']}",
        f"- nettop: {m['nettop_commit']}" + (
            " (per bench: " + "; ".join(f"{name} {v.get('nettop_commit', '?')}" for name, v in b.items()) + ")"
            if len({v.get("nettop_commit", m["nettop_commit"]) for v in b.values()}) > 1 else ""),
        "- load average before/after each bench (other work on the machine): " + "; ".join(
            f"{name} {v['loadavg_before'][0]:.1f}/{v['loadavg_after'][0]:.1f}" for name, v in b.items()),
        "",
        "## Targets",
        "",
        *targets_table(b),
        "",
        "Where a target is missed, *Where the time goes* (the notes at the end) says why, with what was measured.",
        "",
    ]
    sections = (("overhead", overhead_section), ("alternation", alternation_section), ("scale", scale_section),
                ("startup", startup_section), ("soak", soak_section))
    for name, section in sections:
        if name not in b:
            continue
        if "error" in b[name]:
            out += [f"## {name}", "", f"Failed: `{b[name]['error']}`", ""]
        else:
            out += section(b[name])
    notes = HERE / "NOTES.md"
    if notes.exists():
        out += [notes.read_text().strip(), ""]
    return "\n".join(out)


def main() -> None:
    from run import REPORT, RESULTS

    REPORT.write_text(render(json.loads(RESULTS.read_text())))


if __name__ == "__main__":
    main()
