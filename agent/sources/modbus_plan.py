"""Compiles a device's register list into the fewest Modbus reads (once, at start-up).

Like Telegraf's modbus plugin: registers of one table are sorted by address and merged into one
read while the merged read stays within ``max_registers_per_read`` and the unread hole between two
registers is at most ``max_gap``. Reading a few unused registers is much cheaper than another
round trip, especially on a 9600-baud serial line. Coils and discrete inputs are counted in bits:
the limits become 16 times larger, capped at 2000 bits per read by the protocol.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from agent.config.modbus import BIT_TABLES, MAX_BITS_PER_READ, TABLES, RegisterSpec


@dataclass(frozen=True)
class ReadRequest:
    """One read on the wire: ``count`` registers (or bits) of ``table`` from ``address``."""

    table: str
    address: int
    count: int
    registers: tuple[RegisterSpec, ...]

    @property
    def end(self) -> int:
        return self.address + self.count

    def slice_for(self, spec: RegisterSpec, data: Sequence[int | bool]) -> Sequence[int | bool]:
        """The part of this read's answer that belongs to ``spec``."""
        start = spec.address - self.address
        return data[start:start + spec.count]

    def label(self) -> str:
        """The addresses this read covers, as the technician wrote them, for messages."""
        first, last = self.registers[0], max(self.registers, key=lambda s: s.end)
        if len(self.registers) == 1:
            return first.label
        return f"{first.label} to {last.label}"


@dataclass(frozen=True)
class ReadPlan:
    """The reads one poll performs, in order."""

    requests: tuple[ReadRequest, ...]

    def __len__(self) -> int:
        return len(self.requests)


def compile_plan(registers: Iterable[RegisterSpec], *, max_registers_per_read: int = 125,
                 max_gap: int = 8) -> ReadPlan:
    """Merge ``registers`` into reads; registers may overlap (e.g. a word and its bits)."""
    requests: list[ReadRequest] = []
    by_table: dict[str, list[RegisterSpec]] = {}
    for spec in registers:
        by_table.setdefault(spec.table, []).append(spec)
    for table in TABLES:
        specs = sorted(by_table.get(table, ()), key=lambda s: (s.address, s.end))
        if not specs:
            continue
        if table in BIT_TABLES:
            limit = min(MAX_BITS_PER_READ, max_registers_per_read * 16)
            gap = max_gap * 16
        else:
            limit, gap = max_registers_per_read, max_gap
        group: list[RegisterSpec] = [specs[0]]
        start, end = specs[0].address, specs[0].end
        for spec in specs[1:]:
            new_end = max(end, spec.end)
            if spec.address - end <= gap and new_end - start <= limit:
                group.append(spec)
                end = new_end
                continue
            requests.append(ReadRequest(table, start, end - start, tuple(group)))
            group, start, end = [spec], spec.address, spec.end
        requests.append(ReadRequest(table, start, end - start, tuple(group)))
    return ReadPlan(tuple(requests))


def single_reads(registers: Iterable[RegisterSpec]) -> list[ReadRequest]:
    """One read per register: what a read the device rejected is split into."""
    return [ReadRequest(s.table, s.address, s.count, (s,)) for s in registers]
