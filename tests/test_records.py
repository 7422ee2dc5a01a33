import pytest

from nettop.model.records import flat_record, from_flat_record
from nettop.model.retransmits import RetransmitFlow


def test_round_trip_coerces_types_and_keeps_unknown_owners():
    flow = RetransmitFlow(None, "-", 6, "fd00::1", 443, "fd00::2", 5000, "SYN_SENT", 3, 7, 1_800_000_000.1234567)
    record = flat_record(flow)
    assert record["pid"] is None and record["last_seen"] == 1_800_000_000.123457
    assert from_flat_record(RetransmitFlow, {**record, "lport": "443"}).lport == 443


def test_missing_fields_take_defaults_or_fail():
    record = flat_record(RetransmitFlow(7, "x", 4, "a", 1, "b", 2, "ESTABLISHED", 1, 1))
    del record["last_seen"]
    assert from_flat_record(RetransmitFlow, record).last_seen == 0.0
    del record["segments"]
    with pytest.raises(KeyError, match="segments"):
        from_flat_record(RetransmitFlow, record)
