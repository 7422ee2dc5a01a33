from nettop.model.frame import Frame
from nettop.model.tcp import TcpConnection, TcpSnapshot
from nettop.timeline import Timeline, frame_rows


def frames(n, start=1000.0, interval=1.0, rows=0):
    conn = TcpConnection(1, "x", 4, "1.1.1.1", 1, "2.2.2.2", 2, 1, 1)
    return [Frame(start + i * interval, interval, {"tcp": TcpSnapshot("tracepoint", 0, (conn,) * rows)}) for i in range(n)]


def test_follows_newest_until_pinned_then_holds():
    t = Timeline(frames(3))
    assert t.following and t.current().time == 1002
    t.pin()
    t.append(frames(1, start=1003)[0])
    assert t.current().time == 1002 and not t.at_end
    t.follow()
    assert t.current().time == 1003


def test_step_and_seek_clamp_at_the_ends():
    t = Timeline(frames(120))
    assert not t.step(+1)  # already newest
    assert t.step(-5) and t.current().time == 1114
    assert t.seek_seconds(-60) and t.current().time == 1054
    assert t.seek_seconds(-600) and t.current().time == 1000
    assert not t.step(-1)
    t.to_end()
    assert t.at_end and t.current().time == 1119


def test_bounds_evict_oldest_and_keep_a_pinned_cursor_on_its_frame():
    t = Timeline(frames(5), max_frames=5)
    t.step(-2)  # pinned on t=1002
    t.append(frames(1, start=1005)[0])
    assert len(t) == 5 and t.evicted == 1 and t.current().time == 1002


def test_row_budget_bounds_memory():
    t = Timeline(frames(10, rows=99), max_rows=350)
    assert frame_rows(t.current()) == 100
    assert len(t) == 3 and t.evicted == 7


def test_empty_timeline_is_harmless():
    t = Timeline()
    assert t.current() is None and t.index is None and not t.step(1) and not t.seek_seconds(5) and t.span() is None
