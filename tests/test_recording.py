"""Recordings: round trip, and clear one-line errors for every kind of bad file."""

from __future__ import annotations

import gzip
import io
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from nettop.model.frame import Frame
from nettop.model.tcp import TcpConnection, TcpSnapshot
from nettop.recording import FORMAT_VERSION, RecordingError, load_recording, write_frame

REPO = Path(__file__).resolve().parent.parent


def sample_frames(n=3):
    return [
        Frame(1_800_000_000.0 + i, 1.0, {"tcp": TcpSnapshot("tracepoint", i, (
            TcpConnection(10 + i, "srv", 6, "fd00::1", 80, "fd00::2", 4000 + i, 100 * i, 7),))})
        for i in range(n)
    ]


def write(path: Path, frames) -> str:
    buffer = io.StringIO()
    for frame in frames:
        write_frame(buffer, frame)
    if path.suffix == ".gz":
        with gzip.open(path, "wt") as f:
            f.write(buffer.getvalue())
    else:
        path.write_text(buffer.getvalue())
    return buffer.getvalue()


@pytest.mark.parametrize("name", ["r.jsonl", "r.jsonl.gz"])
def test_round_trip(tmp_path, name):
    frames = sample_frames()
    write(tmp_path / name, frames)
    loaded = load_recording(str(tmp_path / name))
    assert loaded.frames == frames and loaded.warning is None


def test_truncated_last_line_replays_complete_intervals_with_a_warning(tmp_path):
    text = write(tmp_path / "r.jsonl", sample_frames())
    (tmp_path / "r.jsonl").write_text(text[: len(text) - 40])
    loaded = load_recording(str(tmp_path / "r.jsonl"))
    assert len(loaded.frames) == 2
    assert "line 3 is cut short" in loaded.warning


def test_truncated_gzip_replays_what_was_complete(tmp_path):
    write(tmp_path / "r.jsonl.gz", sample_frames(50))
    data = (tmp_path / "r.jsonl.gz").read_bytes()
    (tmp_path / "r.jsonl.gz").write_bytes(data[: len(data) * 2 // 3])
    loaded = load_recording(str(tmp_path / "r.jsonl.gz"))
    assert 0 < len(loaded.frames) < 50 and loaded.warning


@pytest.mark.parametrize(
    "content,message",
    [
        ("", "no intervals recorded"),
        ("{not json}\n" + "x\n", "line 1 is not valid JSON"),
        ('{"version":1,"time":1,"interval":1,"panes":{}}\n[1,2]\n', "line 2 is not a nettop interval"),
        ('{"version":99,"time":1,"interval":1,"panes":{}}\n', "format version 99"),
        ('{"version":1,"time":1,"interval":1,"panes":{"tcp":{"source":"x"}}}\n', "line 1 is missing or has a bad field"),
    ],
)
def test_bad_files_are_named_errors(tmp_path, content, message):
    (tmp_path / "r.jsonl").write_text(content)
    with pytest.raises(RecordingError, match=message):
        load_recording(str(tmp_path / "r.jsonl"))


def test_unknown_panes_are_skipped_for_forward_compatibility(tmp_path):
    (tmp_path / "r.jsonl").write_text(f'{{"version":{FORMAT_VERSION},"time":1,"interval":1,"panes":{{"future":{{}}}}}}\n')
    assert load_recording(str(tmp_path / "r.jsonl")).frames[0].panes == {}


@pytest.mark.parametrize(
    "content,code,fragment",
    [
        ("garbage\nmore\n", 1, "line 1 is not valid JSON"),
        ('{"version":7,"time":1,"interval":1,"panes":{}}\n', 1, "format version 7"),
        ("", 1, "no intervals recorded"),
    ],
)
def test_replay_command_fails_in_one_line_without_root(content, code, fragment):
    folder = Path(tempfile.mkdtemp(prefix="nettop-replay-"))  # readable by nobody, unlike tmp_path
    os.chmod(folder, 0o755)
    path = folder / "bad.jsonl"
    path.write_text(content)
    os.chmod(path, 0o644)
    prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if os.geteuid() == 0 else []
    result = subprocess.run([*prefix, sys.executable, "-m", "nettop", "replay", str(path)],
                            capture_output=True, text=True, timeout=60, env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert result.returncode == code
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"nettop: {path}: ") and fragment in lines[0]
    shutil.rmtree(folder)
