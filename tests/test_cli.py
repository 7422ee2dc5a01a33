"""What a user sees when something is wrong: one line, the right exit code, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kernel_paths import kernel_socket_source

from nettop import kernel

REPO = Path(__file__).resolve().parent.parent
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def nettop(*args, prefix=(), python=sys.executable, extra_python_args=(), pythonpath=(str(REPO),)):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(pythonpath))
    return subprocess.run([*prefix, python, *extra_python_args, "-m", "nettop", *args],
                          capture_output=True, text=True, timeout=60, env=env)


def assert_one_line_error(result, code, *fragments):
    assert result.returncode == code, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop to nobody")
@pytest.mark.parametrize("args", [(), ("doctor",), ("record", "--duration", "1", "--output", "/tmp/x")])
def test_without_root_every_command_says_so(args):
    result = nettop(*args, prefix=NOBODY)
    assert_one_line_error(result, 1, "needs root (or CAP_BPF and CAP_PERFMON)")


@pytest.mark.parametrize(
    "args,fragment",
    [
        (("--interval", "-3"), "must be a positive number"),
        (("--interval", "soon"), "not a number"),
        (("record",), "required: --duration"),
        (("record", "--duration", "0", "-o", "x"), "must be a positive number"),
        (("--max-sockets", "0"), "must be positive"),
        (("--source", "fentry"), "invalid choice"),
        (("frobnicate",), "invalid choice"),
    ],
)
def test_bad_flags_are_usage_errors(args, fragment):
    result = nettop(*args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert fragment in result.stderr and "usage:" in result.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="the BCC check comes after the root check")
def test_missing_bcc_is_one_line():
    # A venv made without --system-site-packages: its own packages, but not the distribution's bcc.
    venv_packages = next(Path(sys.prefix).glob("lib/python3*/site-packages"))
    result = nettop("record", "--duration", "1", "--output", "/dev/null",
                    python="/usr/bin/python3", extra_python_args=("-S",), pythonpath=(str(REPO), str(venv_packages)))
    assert_one_line_error(result, 1, "BCC is not installed", "python3-bpfcc")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to get past the root check")
def test_unwritable_output_is_one_line(tmp_path):
    result = nettop("record", "--duration", "1", "--output", str(tmp_path / "missing" / "x.jsonl"))
    assert_one_line_error(result, 1, "cannot write", "No such file or directory")


def test_missing_headers_are_explained(tmp_path):
    problem = kernel.headers_problem(modules_root=tmp_path, kheaders=tmp_path / "none")
    assert "no kernel headers for" in problem and "linux-headers-" in problem
    (tmp_path / os.uname().release / "build" / "include").mkdir(parents=True)
    assert kernel.headers_problem(modules_root=tmp_path, kheaders=tmp_path / "none") is None


@pytest.mark.root
def test_doctor_reports_every_pane_and_exits_zero():
    result = nettop("doctor")
    assert result.returncode == 0, result.stderr
    source = kernel_socket_source()
    assert f"socket_io        tcp+sizes    ok, {source} ({source}:" in result.stdout
    assert "kprobes         not in this kernel" in result.stdout or "kprobes         ok" in result.stdout


@pytest.mark.root
def test_ebpf_flag_prints_the_programs():
    result = nettop("--ebpf")
    assert result.returncode == 0
    source = kernel_socket_source()
    assert f"/* ---- socket_io: {source} ---- */" in result.stdout
    handler = {"raw_tracepoint": "RAW_TRACEPOINT_PROBE(sock_send_length)", "kprobe": "int on_send_return("}[source]
    assert handler in result.stdout


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to get past the root check")
def test_unknown_probe_names_are_listed():
    result = nettop("record", "--duration", "1", "--output", "/dev/null", "--probes", "socket_io,nope")
    assert_one_line_error(result, 1, "no probe named nope", "socket_io, netdev")


@pytest.mark.parametrize(
    "argv",
    [
        ["-i", "5", "--source", "kprobe", "--probes", "netdev", "record", "--duration", "1", "-o", "-"],
        ["record", "-i", "5", "--source", "kprobe", "--probes", "netdev", "--duration", "1", "-o", "-"],
    ],
)
def test_shared_options_count_before_or_after_the_command(argv):
    """argparse lets a subcommand's defaults overwrite what was given before it: `nettop -i 5
    record` recorded at 1 s until the command's copy of the options had no defaults."""
    from nettop.cli import build_parser

    args = build_parser().parse_args(argv)
    assert (args.interval, args.source, args.probes, args.max_sockets) == (5.0, "kprobe", "netdev", 16384)
    defaults = build_parser().parse_args(["record", "--duration", "1", "-o", "-"])
    assert (defaults.interval, defaults.source, defaults.probes) == (1.0, None, None)
