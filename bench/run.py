"""`make bench`: every nettop benchmark in one run; writes bench/results.json and
docs/benchmarks.md (bench/report.py).

  --quick       a smoke run of about 6 minutes (fewer, shorter runs; one round)
  (default)     the full run, about 50 minutes: 3 interleaved rounds, 30 s of alternation
                per variant and workload, a 10-minute soak
  --only A,B    only these benches (startup, overhead, alternation, scale, soak); others
                keep their figures from the previous results.json

Run as root: .venv/bin/python bench/run.py [--quick] [--only overhead]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from common import REPO, log

RESULTS = Path(__file__).resolve().parent / "results.json"
REPORT = REPO / "docs" / "benchmarks.md"


@dataclass(frozen=True)
class Profile:
    overhead_rounds: int
    overhead_seconds: float
    alternation_seconds: float  # attached time per variant and workload
    scale_connections: int
    scale_polls: int
    scale_cpu_seconds: float
    scale_loads: tuple[str, ...]
    startup_runs: int
    soak_seconds: float


FULL = Profile(3, 8, 30, 10_000, 10, 30, ("loopback", "testhosts"), 5, 600)
QUICK = Profile(1, 2, 2, 10_000, 3, 10, ("loopback",), 1, 60)
BENCHES = ("startup", "overhead", "alternation", "scale", "soak")
#: the workloads with a throughput target (bench/alternation.py measures them precisely)
ALTERNATION_WORKLOADS = ("bulk8", "writes64", "rr64")


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.machine())
    memory_kb = int(Path("/proc/meminfo").read_text().split()[1])
    distro = dict(line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines() if "=" in line)
    commit = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"],
                            capture_output=True, text=True).stdout.strip()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(memory_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "os": distro.get("PRETTY_NAME", "").strip('"'),
        "python": platform.python_version(),
        "nettop_commit": commit,
    }


def loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def run_bench(name: str, profile: Profile) -> dict:
    if name == "overhead":
        import overhead

        return overhead.measure(profile.overhead_rounds, profile.overhead_seconds)
    if name == "alternation":
        import alternation
        from workloads import WORKLOADS

        return alternation.measure(profile.alternation_seconds,
                                   tuple(w for w in WORKLOADS if w.key in ALTERNATION_WORKLOADS))
    if name == "scale":
        import scale

        return scale.measure(profile.scale_connections, profile.scale_polls, profile.scale_cpu_seconds,
                             profile.scale_loads)
    if name == "startup":
        import startup

        return startup.measure(profile.startup_runs)
    import soak

    return soak.measure(profile.soak_seconds)


def interrupted(*_) -> None:
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a ~5-minute smoke run")
    parser.add_argument("--only", help=f"comma-separated: {','.join(BENCHES)}")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench: must run as root (BPF, network namespaces, bpf_stats)", file=sys.stderr)
        return 1
    only = tuple(args.only.split(",")) if args.only else BENCHES
    unknown = set(only) - set(BENCHES)
    if unknown:
        print(f"bench: no bench {', '.join(sorted(unknown))} (there are: {', '.join(BENCHES)})", file=sys.stderr)
        return 2
    # SIGTERM unwinds like Ctrl-C, so bpf_stats_enabled, test hosts and tools are restored.
    signal.signal(signal.SIGTERM, interrupted)
    profile = QUICK if args.quick else FULL
    previous = json.loads(RESULTS.read_text()) if args.only and RESULTS.exists() else {}
    results = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "mode": "quick" if args.quick else "full",
        "profile": asdict(profile),
        "machine": machine(),
        "benches": dict(previous.get("benches", {})),
    }
    started = time.monotonic()
    for name in BENCHES:
        if name not in only:
            continue
        log(f"bench {name}")
        before = loadavg()
        bench_started = time.monotonic()
        try:
            figures = run_bench(name, profile)
        except Exception as exc:  # one bench's failure must not cost the others' figures
            log(f"bench {name} failed: {type(exc).__name__}: {exc}")
            figures = {"error": f"{type(exc).__name__}: {exc}"}
        results["benches"][name] = {
            **figures,
            "loadavg_before": before,
            "loadavg_after": loadavg(),
            "minutes": round((time.monotonic() - bench_started) / 60, 1),
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "mode": results["mode"],
            "nettop_commit": results["machine"]["nettop_commit"],  # `--only` reruns mix commits
        }
        RESULTS.write_text(json.dumps(results, indent=1) + "\n")  # a later failure keeps what was measured
    results["minutes"] = round((time.monotonic() - started) / 60, 1)
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    import report

    REPORT.write_text(report.render(results))
    log(f"wrote {RESULTS.relative_to(REPO)} and {REPORT.relative_to(REPO)} in {results['minutes']} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
