"""The one seam where kernel data enters nettop: probes in, Frames out.

The UI and `record` take any FrameSource; live probes, a replayed file and the tests'
scripted fakes all fit. A LiveSource attaches its probes in background threads (BCC's
clang compile takes a while) so the first frame never waits for them.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, Mapping, Protocol

from nettop.errors import ProbeUnavailable
from nettop.model.frame import Frame
from nettop.probes.base import Probe, ProbeState, ProbeStatus, combine_statuses


class FrameSource(Protocol):
    def start(self) -> None:
        """Begin attaching; returns at once."""

    def statuses(self) -> Mapping[str, ProbeStatus]:
        """Per pane key: attaching, live (with its event source) or unavailable (with why)."""

    def poll(self) -> Frame:
        """One interval's data for every live pane; may block briefly (called from a worker)."""

    def close(self) -> None:
        """Detach everything; safe to call more than once."""


class LiveSource:
    """Runs real probes. `clock` and `wall_clock` are injectable for tests."""

    def __init__(
        self,
        probes: Iterable[Probe],
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        workers: int = 2,
    ) -> None:
        self.probes = list(probes)
        self._clock = clock
        self._wall_clock = wall_clock
        self._lock = threading.Lock()
        self._status: dict[Probe, ProbeStatus] = {p: ProbeStatus(ProbeState.WAITING) for p in self.probes}
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="nettop-attach")
        self._futures = []
        self._last_poll = clock()
        self._closed = False

    def start(self) -> None:
        for probe in self.probes:
            self._futures.append(self._executor.submit(self._attach, probe))

    def wait_attached(self, timeout: float | None = None) -> None:
        """Block until every probe is live or unavailable (for `record`)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for future in self._futures:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            future.result(timeout=remaining)
        self._last_poll = self._clock()

    def _set(self, probe: Probe, status: ProbeStatus) -> None:
        with self._lock:
            if self._status.get(probe, ProbeStatus(ProbeState.WAITING)).state is not ProbeState.CLOSED:
                self._status[probe] = status

    def _attach(self, probe: Probe) -> None:
        try:
            source = probe.select()
            self._set(probe, ProbeStatus(ProbeState.ATTACHING, source.name))
            probe.start()
        except ProbeUnavailable as exc:
            self._set(probe, ProbeStatus(ProbeState.UNAVAILABLE, reason=str(exc)))
            return
        except Exception as exc:  # a probe bug must not take the other panes down
            self._set(probe, ProbeStatus(ProbeState.UNAVAILABLE, reason=f"{type(exc).__name__}: {exc}"))
            return
        with self._lock:
            closed = self._closed
        if closed:
            probe.close()
            return
        self._set(probe, ProbeStatus(ProbeState.LIVE, probe.source.name if probe.source else None, probe.note))

    def statuses(self) -> dict[str, ProbeStatus]:
        with self._lock:
            per_pane: dict[str, list] = {}
            for probe, status in self._status.items():
                for pane in probe.panes:
                    per_pane.setdefault(pane, []).append((probe.name, status))
        return {pane: combine_statuses(named) for pane, named in per_pane.items()}

    def probe_statuses(self) -> dict[Probe, ProbeStatus]:
        with self._lock:
            return dict(self._status)

    def poll(self) -> Frame:
        now = self._clock()
        interval = max(now - self._last_poll, 1e-9)
        self._last_poll = now
        panes: dict = {}
        live = [probe for probe, status in self.probe_statuses().items() if status.state is ProbeState.LIVE]
        for probe in sorted(live, key=lambda p: bool(p.follows)):  # followers after those they follow
            try:
                if probe.follows:
                    probe.follow({key: panes[key] for key in probe.follows if key in panes})
                snapshots = probe.poll(interval)
            except Exception as exc:
                self._set(probe, ProbeStatus(ProbeState.UNAVAILABLE, reason=f"poll failed: {exc}"))
                self._detach(probe)  # its programs would go on costing every event the pane no longer shows
                continue
            for key, snapshot in snapshots.items():
                panes[key] = panes[key].merge(snapshot) if key in panes else snapshot
        return Frame(time=self._wall_clock(), interval=interval, panes=panes)

    @staticmethod
    def _detach(probe: Probe) -> None:
        try:
            probe.close()
        except Exception:
            pass  # the pane already says why it stopped; a second failure changes nothing

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            live = [p for p, s in self._status.items() if s.state is ProbeState.LIVE]
            for probe in self._status:
                self._status[probe] = ProbeStatus(ProbeState.CLOSED)
        for probe in live:
            probe.close()
        self._executor.shutdown(wait=False, cancel_futures=True)
