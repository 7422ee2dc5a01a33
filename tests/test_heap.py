"""The collector pacing: frames out of the collector's sight, a full collection per minute."""

from __future__ import annotations

import gc
import weakref

from nettop.heap import CollectorPacing


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Collector:
    """Records what the pacing asks of the collector."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def freeze(self) -> None:
        self.calls.append("freeze")

    def unfreeze(self) -> None:
        self.calls.append("unfreeze")

    def collect(self) -> None:
        self.calls.append("collect")


def test_kept_frames_are_frozen_and_the_heap_collected_once_per_minute():
    clock, collector = Clock(), Collector()
    pacing = CollectorPacing(full_every=60, clock=clock, collector=collector)
    pacing.frames_kept()
    assert collector.calls == ["unfreeze", "collect", "freeze"]  # start-up garbage is collected first
    clock.now += 59
    pacing.frames_kept()
    assert collector.calls[3:] == ["freeze"]  # no full collection within the minute
    clock.now += 1
    pacing.frames_kept()
    assert collector.calls[4:] == ["unfreeze", "collect", "freeze"] and pacing.full_collections == 2
    clock.now += 30
    pacing.frames_kept()
    assert collector.calls[7:] == ["freeze"]


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def test_cyclic_garbage_frozen_with_a_frame_is_freed_at_the_next_full_collection():
    """The real collector: what a freeze hides is not leaked for good."""
    clock = Clock()
    pacing = CollectorPacing(full_every=60, clock=clock)
    try:
        a, b = Node(), Node()
        a.other, b.other = b, a
        gone = weakref.ref(a)
        pacing.frames_kept()  # the first full collection; the cycle is alive, so it is frozen with the rest
        del a, b
        gc.collect()
        assert gone() is not None  # hidden from the collector: not freed yet
        clock.now += 60
        pacing.frames_kept()
        assert gone() is None
    finally:
        pacing.release()
    assert gc.get_freeze_count() == 0


async def test_live_the_first_collection_waits_for_the_first_frame_and_a_replay_collects_at_mount():
    """Collecting the start-up heap at mount held the live dashboard's first paint."""
    from tests.fakes import ScriptedSource, live

    from nettop.app import NettopApp
    from nettop.model.frame import Frame

    collector = Collector()
    app = NettopApp(ScriptedSource([], live("tcp")), autopoll=False,
                    heap=CollectorPacing(clock=Clock(), collector=collector))
    async with app.run_test() as pilot:
        await pilot.pause()
        assert collector.calls == []
        app.accept_frame(Frame(time=1.0, interval=1.0, panes={}))
        assert collector.calls == ["unfreeze", "collect", "freeze"]
    collector = Collector()
    replay = NettopApp(ScriptedSource([], live("tcp")), autopoll=False, replay=True,
                       heap=CollectorPacing(clock=Clock(), collector=collector))
    async with replay.run_test() as pilot:
        await pilot.pause()
        assert collector.calls[:3] == ["unfreeze", "collect", "freeze"]
