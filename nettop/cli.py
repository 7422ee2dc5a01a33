"""Command line: the live dashboard (default), `record`, `doctor`.

Every failure a user can cause or fix ends in one line on stderr and a non-zero exit:
1 for a problem with the machine, 2 for bad usage (argparse's convention).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from contextlib import contextmanager
from typing import Iterator, Sequence

from nettop import __version__, kernel
from nettop.errors import NettopError, ProbeUnavailable
from nettop.probes.base import Probe, ProbeState
from nettop.probes.registry import ProbeOptions, build_probes
from nettop.recording import open_for_writing, write_frame
from nettop.sampler import LiveSource


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds: {text!r}")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def common_options(defaults: bool) -> argparse.ArgumentParser:
    """The options nettop and its probe-running commands share. A command's copy has no
    defaults, so an option given before the command (`nettop -i 5 record ...`) is kept, not
    overwritten by the command's default."""
    common = argparse.ArgumentParser(add_help=False)

    def default(value):
        return value if defaults else argparse.SUPPRESS

    common.add_argument(
        "-i", "--interval", type=positive_float, default=default(1.0), help="seconds per interval (default 1)"
    )
    common.add_argument(
        "--max-sockets", type=positive_int, default=default(16384), help="kernel map bound for active sockets per interval"
    )
    common.add_argument(
        "--source",
        choices=("tp_btf", "raw_tracepoint", "tracepoint", "kprobe"),
        default=default(None),
        help="force every probe onto one event source (to test fallbacks); probes without it are unavailable",
    )
    common.add_argument(
        "--probes",
        metavar="NAME,...",
        default=default(None),
        help="attach only these probes (names as `doctor` shows them): less overhead on a busy server, quicker start",
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    common = common_options(defaults=False)
    parser = argparse.ArgumentParser(
        prog="nettop",
        description="A top-style live network dashboard for Linux, built on BPF.",
        parents=[common_options(defaults=True)],
    )
    parser.add_argument("--version", action="version", version=f"nettop {__version__}")
    parser.add_argument("--record", metavar="FILE", help="also record every interval to FILE (JSON lines; .gz compresses)")
    parser.add_argument(
        "--history", type=positive_float, default=600.0, help="seconds of live history kept for rewinding (default 600)"
    )
    parser.add_argument("--ebpf", action="store_true", help="print the BPF programs and exit")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    record = commands.add_parser("record", parents=[common], help="record intervals as JSON lines, no UI")
    record.add_argument("--duration", type=positive_float, required=True, help="seconds to record")
    record.add_argument("--output", "-o", required=True, help="file to write, or - for stdout")

    commands.add_parser("doctor", parents=[common], help="say which panes can run here, and why not")

    replay = commands.add_parser("replay", help="open a recording in the dashboard (no root needed)")
    replay.add_argument("file", help="a recording from `nettop record` or `nettop --record` (.jsonl or .jsonl.gz)")
    replay.add_argument("--speed", type=float, choices=(0.5, 1, 2, 4, 8), default=1.0, help="playback speed")
    demo = commands.add_parser("demo", help="replay the recording shipped with nettop (for training)")
    demo.add_argument("--speed", type=float, choices=(0.5, 1, 2, 4, 8), default=1.0, help="playback speed")
    return parser


def probe_options(args: argparse.Namespace) -> ProbeOptions:
    return ProbeOptions(max_sockets=args.max_sockets, force_source=args.source)


def require_tracing() -> None:
    problem = kernel.privilege_problem()
    if problem:
        raise NettopError(problem)


@contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """SIGINT and SIGTERM set an event instead of raising mid-cleanup."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def machine_problem() -> str | None:
    return kernel.bcc_problem() or kernel.headers_problem() or kernel.tracefs_problem()


def chosen_probes(probes: list[Probe], names: str | None) -> list[Probe]:
    if not names:
        return probes
    wanted = set(names.split(","))
    unknown = wanted - {p.name for p in probes}
    if unknown:
        known = ", ".join(p.name for p in probes)
        raise NettopError(f"no probe named {', '.join(sorted(unknown))} (there are: {known})")
    return [p for p in probes if p.name in wanted]


def cmd_record(args: argparse.Namespace) -> int:
    require_tracing()
    problem = machine_problem()
    if problem:
        raise NettopError(problem)
    from nettop.heap import CollectorPacing

    source = LiveSource(chosen_probes(build_probes(probe_options(args)), args.probes))
    output = sys.stdout if args.output == "-" else open_output(args.output)
    heap = CollectorPacing()  # the probes' caches of 10,000 sockets would be re-scanned in full collections
    with stop_on_signals() as stop:
        try:
            source.start()
            source.wait_attached()
            statuses = source.probe_statuses()
            for probe, status in statuses.items():
                if status.state is ProbeState.UNAVAILABLE:
                    print(f"nettop: {probe.name} unavailable: {status.reason}", file=sys.stderr)
            if not any(s.state is ProbeState.LIVE for s in statuses.values()):
                raise NettopError("no probe could attach; run `nettop doctor`")
            live = sorted({pane for p, s in statuses.items() if s.state is ProbeState.LIVE for pane in p.panes})
            print(f"nettop: recording {', '.join(live)} for {args.duration:g}s", file=sys.stderr, flush=True)
            deadline = time.monotonic() + args.duration
            while True:
                stopping = stop.wait(max(0.0, min(args.interval, deadline - time.monotonic())))
                write_frame(output, source.poll())  # after a stop too: what came before it is recorded
                heap.frames_kept()
                if stopping or time.monotonic() >= deadline:
                    break
        finally:
            heap.release()
            source.close()
            if output is not sys.stdout:
                output.close()
    return 0


def open_output(path: str):
    try:
        return open_for_writing(path)
    except OSError as exc:
        raise NettopError(f"cannot write {path}: {exc.strerror}") from None


def doctor_lines(probes: Sequence[Probe], attach: bool) -> tuple[list[str], dict[str, bool]]:
    """One line per probe, naming the panes it feeds: its source, or why it cannot run."""
    lines = []
    runnable: dict[str, bool] = {}
    for probe in probes:
        try:
            source = probe.select()
            if attach:
                probe.start()
                probe.close()
            hooks = f" ({', '.join(str(h) for h in source.hooks)})" if source.hooks else ""
            note = f"; {probe.note}" if probe.note else ""
            verdict, ok = f"ok, {source.name}{hooks}{note}", True
        except ProbeUnavailable as exc:
            verdict, ok = f"unavailable: {exc}", False
        for pane in probe.panes:
            runnable[pane] = runnable.get(pane, False) or ok
        lines.append(f"  {probe.name:<16} {'+'.join(probe.panes):<12} {verdict}")
    return lines, runnable


def cmd_doctor(args: argparse.Namespace) -> int:
    require_tracing()
    checks = [
        ("BCC", kernel.bcc_problem()),
        ("kernel headers", kernel.headers_problem()),
        ("tracefs", kernel.tracefs_problem()),
        ("kernel BTF", None if kernel.btf_available() else "no /sys/kernel/btf/vmlinux: offsets from headers"),
        ("kprobes", None if kernel.kprobes_supported() else "not in this kernel (tracepoints used instead)"),
    ]
    print(f"nettop {__version__} on Linux {kernel.platform.release()}")
    for name, problem in checks:
        print(f"  {name:<15} {'ok' if problem is None else problem}")
    print("probes (panes they feed):")
    lines, runnable = doctor_lines(build_probes(probe_options(args)), attach=machine_problem() is None)
    print("\n".join(lines))
    from nettop.probes.qdisc_latency import doctor_lines as qdisc_lines

    print("qdiscs (tc names):")
    print("\n".join(qdisc_lines()))
    return 0 if runnable.get("tcp") else 1


def cmd_ebpf(args: argparse.Namespace) -> int:
    for probe in build_probes(probe_options(args)):
        try:
            probe.select()
            print(f"/* ---- {probe.name}: {probe.source.name} ---- */")
            print(probe.program_text())
        except ProbeUnavailable as exc:
            print(f"/* ---- {probe.name}: unavailable: {exc} ---- */")
    return 0


def cmd_live(args: argparse.Namespace) -> int:
    require_tracing()
    problem = machine_problem()
    if problem:
        raise NettopError(problem)
    from nettop.app import NettopApp
    from nettop.heap import CollectorPacing
    from nettop.timeline import Timeline

    record_to = open_output(args.record) if args.record else None
    source = LiveSource(chosen_probes(build_probes(probe_options(args)), args.probes))
    timeline = Timeline(max_frames=max(1, int(args.history / args.interval)))
    try:
        NettopApp(source, interval=args.interval, record_to=record_to, timeline=timeline, heap=CollectorPacing()).run()
    finally:
        source.close()
        if record_to is not None:
            record_to.close()
    return 0


def cmd_replay(path: str, speed: float) -> int:
    from nettop.app import NettopApp
    from nettop.heap import CollectorPacing
    from nettop.replay import open_replay
    from nettop.timeline import Timeline

    source, frames, warning = open_replay(path)
    if warning:
        print(f"nettop: warning: {warning}", file=sys.stderr)
    app = NettopApp(source, timeline=Timeline(frames, max_frames=len(frames), max_rows=10**12), replay=True,
                    heap=CollectorPacing())
    app.speed = speed
    app.run()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.ebpf:
            return cmd_ebpf(args)
        if args.command == "record":
            return cmd_record(args)
        if args.command == "doctor":
            return cmd_doctor(args)
        if args.command == "replay":
            return cmd_replay(args.file, args.speed)
        if args.command == "demo":
            from nettop.replay import demo_path

            return cmd_replay(demo_path(), args.speed)
        return cmd_live(args)
    except NettopError as exc:
        print(f"nettop: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
