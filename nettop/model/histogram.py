"""Log2 histograms as the book's tools print them: bucket k holds 2^(k-1) <= v < 2^k."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Sequence


def log2_bounds(slot: int) -> tuple[int, int]:
    """Value range [low, high) of a log2 slot; slot 0 holds zero only."""
    if slot == 0:
        return (0, 1)
    return (1 << (slot - 1), 1 << slot)


def log2_slot(value: int) -> int:
    """The slot a value falls in (the Python twin of the BPF side's bpf_log2l)."""
    return 0 if value <= 0 else value.bit_length()


@dataclass(frozen=True, slots=True)
class Histogram:
    """Non-empty buckets only, ascending: ((low, high, count), ...)."""

    buckets: tuple[tuple[int, int, int], ...] = ()

    @classmethod
    def from_slots(cls, counts: Sequence[int]) -> Histogram:
        return cls(tuple((*log2_bounds(i), c) for i, c in enumerate(counts) if c))

    @classmethod
    def from_record(cls, buckets: Iterable[Sequence[int]]) -> Histogram:
        return cls(tuple((int(lo), int(hi), int(n)) for lo, hi, n in buckets))

    def to_record(self) -> list[list[int]]:
        return [list(b) for b in self.buckets]

    @property
    def count(self) -> int:
        return sum(n for _, _, n in self.buckets)

    def merge(self, other: Histogram) -> Histogram:
        totals: dict[tuple[int, int], int] = {}
        for lo, hi, n in (*self.buckets, *other.buckets):
            totals[(lo, hi)] = totals.get((lo, hi), 0) + n
        return Histogram(tuple((lo, hi, n) for (lo, hi), n in sorted(totals.items())))

    def percentile(self, fraction: float) -> float | None:
        """Value at a fraction (0..1) of the count, interpolated linearly inside its bucket."""
        total = self.count
        if total == 0:
            return None
        rank = fraction * total
        seen = 0
        for lo, hi, n in self.buckets:
            if seen + n >= rank:
                return lo + (hi - lo) * max(0.0, rank - seen) / n
            seen += n
        return float(self.buckets[-1][1])

    def max_bound(self) -> int | None:
        return self.buckets[-1][1] if self.buckets else None


def merge_all(histograms: Iterable[Histogram]) -> Histogram:
    result = Histogram()
    for h in histograms:
        result = result.merge(h)
    return result


def record_of(h: Histogram) -> dict[str, Any]:
    return {"buckets": h.to_record()}
