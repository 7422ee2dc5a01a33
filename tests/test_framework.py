"""The probe framework without BPF: source selection, background attach, degraded panes."""

from __future__ import annotations

import pytest

from nettop.errors import ProbeUnavailable
from nettop.model.frame import Frame
from nettop.probes.base import EventSource, Hook, Probe, ProbeState, choose_source
from nettop.probes.owners import Owner, OwnerColumns, SocketOwners
from nettop.sampler import LiveSource

EXISTS = Hook("tracepoint", "sched:sched_switch")
MISSING = Hook("tracepoint", "sock:no_such_event")
needs_tracefs = pytest.mark.skipif(not EXISTS.exists(), reason="tracefs not mounted")


@needs_tracefs
def test_first_source_with_all_hooks_wins():
    good = EventSource("tracepoint", (EXISTS,))
    bad = EventSource("kprobe", (Hook("kprobe", "no_such_function_xyz"),))
    assert choose_source((bad, good)) is good


@needs_tracefs
def test_unavailable_reason_names_each_missing_hook():
    with pytest.raises(ProbeUnavailable) as exc:
        choose_source((EventSource("tracepoint", (EXISTS, MISSING)), EventSource("kprobe", (Hook("kprobe", "nope_fn"),))))
    assert "tracepoint: no tracepoint:sock:no_such_event" in str(exc.value)
    assert "kprobe: no kprobe:nope_fn" in str(exc.value)


def test_forcing_an_unknown_source_is_explained():
    with pytest.raises(ProbeUnavailable, match="no event source named 'ebpf'"):
        choose_source((EventSource("tracepoint", ()),), forced="ebpf")


class FakeProbe(Probe):
    def __init__(self, name, panes, fail=None, payload=None):
        super().__init__()
        self.name, self.panes, self.fail, self.payload = name, panes, fail, payload or {}
        self.sources = (EventSource("fake", ()),)
        self.closed = 0

    def start(self):
        if self.fail:
            raise ProbeUnavailable(self.fail)

    def poll(self, interval):
        return self.payload

    def close(self):
        self.closed += 1


class Part:
    def __init__(self, *items):
        self.items = items

    def merge(self, other):
        return Part(*self.items, *other.items)

    def to_record(self):
        return {"items": list(self.items)}


def test_one_unavailable_probe_leaves_the_others_live():
    good = FakeProbe("good", ("tcp",), payload={"tcp": Part(1)})
    broken = FakeProbe("broken", ("queues",), fail="no tracepoint:qdisc:qdisc_dequeue")
    ticks = iter([0.0, 0.0, 2.5])  # construction, attach finished, poll
    source = LiveSource([good, broken], clock=lambda: next(ticks), wall_clock=lambda: 42.0)
    source.start()
    source.wait_attached(timeout=5)
    statuses = source.statuses()
    assert statuses["tcp"].state is ProbeState.LIVE
    assert statuses["queues"].state is ProbeState.UNAVAILABLE
    assert "qdisc_dequeue" in statuses["queues"].describe()
    frame = source.poll()
    assert frame == Frame(time=42.0, interval=2.5, panes={"tcp": good.payload["tcp"]})
    source.close()
    source.close()
    assert good.closed == 1 and broken.closed == 0


def test_a_probe_whose_poll_fails_is_detached_and_the_others_go_on():
    class Failing(FakeProbe):
        def poll(self, interval):
            raise OSError("map gone")

        def close(self):
            super().close()
            raise OSError("close failed too")

    good = FakeProbe("good", ("tcp",), payload={"tcp": Part(1)})
    failing = Failing("failing", ("queues",), payload={"queues": Part(2)})
    source = LiveSource([good, failing])
    source.start()
    source.wait_attached(timeout=5)
    assert source.poll().panes == {"tcp": good.payload["tcp"]}
    assert failing.closed == 1  # detached at once, not at exit: its programs cost every event
    assert source.statuses()["queues"].reason == "poll failed: map gone"
    assert source.poll().panes == {"tcp": good.payload["tcp"]} and failing.closed == 1
    source.close()
    assert good.closed == 1 and failing.closed == 1


def test_two_probes_feeding_one_pane_are_merged():
    a = FakeProbe("a", ("sizes",), payload={"sizes": Part("processes")})
    b = FakeProbe("b", ("sizes",), payload={"sizes": Part("devices")})
    source = LiveSource([a, b])
    source.start()
    source.wait_attached(timeout=5)
    assert source.poll().panes["sizes"].items == ("processes", "devices")
    source.close()


def test_a_follower_polls_after_the_probes_it_follows_and_sees_their_snapshots():
    class Follower(FakeProbe):
        follows = ("tcp",)

        def follow(self, snapshots):
            self.seen = dict(snapshots)

    follower = Follower("tcp_info", ("sockets",), payload={"sockets": Part("s")})
    tcp = FakeProbe("socket_io", ("tcp",), payload={"tcp": Part("conns")})
    source = LiveSource([follower, tcp])  # listed first, polled last
    source.start()
    source.wait_attached(timeout=5)
    source.poll()
    assert follower.seen == {"tcp": tcp.payload["tcp"]}
    tcp.payload = {}
    source.poll()
    assert follower.seen == {}  # the followed pane had nothing: the follower is told so
    source.close()


def test_socket_owners_are_bounded_and_forget_the_oldest():
    owners = SocketOwners(capacity=2)
    owners.note(1, 100, "a")
    owners.note(2, 200, "b")
    owners.note(1, 100, "a")  # seen again: now the newest
    owners.note(3, 300, "c")
    assert owners.lookup(2) is None and owners.lookup(1).pid == 100 and owners.lookup(3).comm == "c"
    assert len(owners) == 2 and owners.forgotten == 1


def test_socket_owners_take_an_interval_as_columns_and_the_newest_note_answers():
    def columns(pairs):
        return OwnerColumns.of((sock, pid, "c%d" % pid) for sock, pid in pairs)

    high = 0xFFFF_8881_0000_0000
    owners = SocketOwners(capacity=8)
    owners.note_all(columns([(high + 2, 1), (high + 1, 1)]))
    owners.note_all(columns([(high + 2, 2), (high + 3, 3)]))  # the socket's new owner
    assert owners.lookup(high + 2) == Owner(2, "c2") and owners.lookup(high + 1) == Owner(1, "c1")
    assert owners.lookup(high) is None and len(owners) == 3
    owners.note_all(columns([(high + 3, 3), (high + 4, 4), (high + 5, 5)]))  # 7 entries > 4: a turnover
    owners.note_all(columns([(high + 4, 4), (high + 5, 5), (high + 6, 6), (high + 7, 7), (high + 8, 8)]))
    assert owners.forgotten == 3  # high+1..3 were not noted in the generation that followed theirs
    assert owners.lookup(high + 1) is None and owners.lookup(high + 5) == Owner(5, "c5")


def test_a_quiet_servers_many_small_intervals_are_merged_and_still_answer_as_noted():
    owners = SocketOwners(capacity=100_000)
    for interval in range(1000):  # two sockets an interval: 2,000 entries, no turnover
        owners.note_all(OwnerColumns.of([(7, interval, "busy"), (1000 + interval, 1, "c%d" % interval)]))
        if interval < 500:
            owners.note(8, interval, "early")  # then never again: its last owner is merged in
    assert owners.column_sets < 50  # not one a note (1,500)
    assert owners.lookup(7) == Owner(999, "busy") and owners.lookup(8) == Owner(499, "early")
    assert owners.lookup(1000) == Owner(1, "c0") and owners.lookup(1999) == Owner(1, "c999")
    assert owners.lookup(3) is None and len(owners) == 1002


def test_merged_owner_columns_keep_each_socket_once_with_its_first_sets_owner():
    newest = OwnerColumns.of([(5, 2, "new"), (9, 9, "n")])
    oldest = OwnerColumns.of([(5, 1, "old"), (4, 4, "o"), (5, 3, "x")])
    merged = OwnerColumns.merged([newest, oldest])
    assert merged.sockets.tolist() == [4, 5, 9]  # sorted already, as it says
    assert merged.get(5) == Owner(2, "new") and merged.get(4) == Owner(4, "o") and merged.get(6) is None


def test_a_pane_fed_by_two_probes_is_live_when_one_is_and_says_what_is_missing():
    a = FakeProbe("socket_io", ("sizes",))
    b = FakeProbe("netdev_sizes", ("sizes",), fail="no tracepoint:net:napi_gro_receive_entry")
    source = LiveSource([a, b])
    source.start()
    source.wait_attached(timeout=5)
    status = source.statuses()["sizes"]
    assert status.state is ProbeState.LIVE
    assert status.describe() == (
        "live (socket_io fake); partly unavailable: netdev_sizes: no tracepoint:net:napi_gro_receive_entry"
    )
    source.close()


def test_a_probe_note_shows_in_its_live_status():
    probe = FakeProbe("retransmits", ("retransmits",))
    probe.note = "no L events: kprobe:tcp_send_loss_probe unavailable"
    source = LiveSource([probe])
    source.start()
    source.wait_attached(timeout=5)
    assert source.statuses()["retransmits"].describe() == (
        "live (fake); partly unavailable: no L events: kprobe:tcp_send_loss_probe unavailable"
    )
    source.close()


def test_counter_delta_reports_each_intervals_increase_and_close_detaches_once():
    class FakeCounter:
        def __init__(self):
            self.per_cpu = [0, 0]

        def getvalue(self, index):
            return self.per_cpu

    class FakeBpf:
        def __init__(self):
            self.tables = {"dropped": FakeCounter()}
            self.cleanups = 0

        def __getitem__(self, name):
            return self.tables[name]

        def cleanup(self):
            self.cleanups += 1

    probe = FakeProbe("p", ("tcp",))
    bpf = probe._bpf = FakeBpf()
    bpf.tables["dropped"].per_cpu = [3, 4]
    assert probe.counter_delta("dropped") == 7
    bpf.tables["dropped"].per_cpu = [5, 4]
    assert probe.counter_delta("dropped") == 2
    assert probe.counter_delta("dropped") == 0
    Probe.close(probe)
    Probe.close(probe)
    assert bpf.cleanups == 1 and probe._bpf is None
