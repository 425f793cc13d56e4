"""The read planner: the fewest requests that cover the configured registers, within limits."""

from __future__ import annotations

from agent.config.modbus import RegisterSpec
from agent.sources.modbus_plan import ReadRequest, compile_plan, single_reads
from fixtures.modbus import config_from_toml, sim_ups


def reg(address: int, count: int = 1, table: str = "holding",
        name: str | None = None) -> RegisterSpec:
    return RegisterSpec(name=name or f"r{address}", table=table, address=address,
                        label=f"{table} register {address}",
                        type={1: "uint16", 2: "float32", 4: "float64"}.get(count, "string"),
                        count=count)


def shape(plan) -> list[tuple[str, int, int]]:
    return [(r.table, r.address, r.count) for r in plan.requests]


def test_adjacent_registers_become_one_read():
    plan = compile_plan([reg(3), reg(0), reg(1, 2)])
    assert shape(plan) == [("holding", 0, 4)]
    assert [s.name for s in plan.requests[0].registers] == ["r0", "r1", "r3"]


def test_gaps_up_to_max_gap_are_read_through_and_larger_ones_split():
    regs = [reg(0), reg(9), reg(30)]       # holes of 8 and 20 registers
    assert shape(compile_plan(regs, max_gap=8)) == [("holding", 0, 10), ("holding", 30, 1)]
    assert shape(compile_plan(regs, max_gap=7)) == [("holding", 0, 1), ("holding", 9, 1),
                                                    ("holding", 30, 1)]
    assert shape(compile_plan(regs, max_gap=20)) == [("holding", 0, 31)]


def test_max_gap_zero_merges_only_touching_registers():
    assert shape(compile_plan([reg(0), reg(1), reg(3)], max_gap=0)) == \
        [("holding", 0, 2), ("holding", 3, 1)]


def test_a_read_never_exceeds_max_registers_per_read():
    regs = [reg(a, 2) for a in range(0, 20, 2)]          # ten float32s, 20 registers
    plan = compile_plan(regs, max_registers_per_read=6)
    assert shape(plan) == [("holding", 0, 6), ("holding", 6, 6), ("holding", 12, 6),
                           ("holding", 18, 2)]
    assert all(r.count <= 6 for r in plan.requests)


def test_the_125_register_protocol_limit_with_a_long_map():
    regs = [reg(a) for a in range(0, 300)]
    plan = compile_plan(regs)
    assert shape(plan) == [("holding", 0, 125), ("holding", 125, 125), ("holding", 250, 50)]


def test_tables_are_never_mixed():
    plan = compile_plan([reg(0, table="input"), reg(1, table="holding"), reg(2, table="input")])
    assert shape(plan) == [("holding", 1, 1), ("input", 0, 3)]


def test_overlapping_registers_share_a_read():
    word = reg(8, name="status")
    bit = RegisterSpec(name="status.on_battery", table="holding", address=8, label="x",
                       type="bit", count=1, bit=0)
    plan = compile_plan([word, bit, reg(9)])
    assert shape(plan) == [("holding", 8, 2)]
    assert len(plan.requests[0].registers) == 3


def test_bit_tables_count_in_bits_with_limits_sixteen_times_larger():
    coils = [reg(a, table="coil") for a in (0, 100, 128, 300)]
    # max_gap 8 registers = 128 bits: 0..128 merge, 300 is 171 bits away.
    assert shape(compile_plan(coils)) == [("coil", 0, 129), ("coil", 300, 1)]
    many = [reg(a, table="discrete") for a in range(0, 2500)]
    assert shape(compile_plan(many)) == [("discrete", 0, 2000), ("discrete", 2000, 500)]


def test_each_register_gets_its_own_slice_of_the_answer():
    req = ReadRequest("holding", 10, 6, (reg(10), reg(12, 2), reg(15)))
    data = [100, 101, 102, 103, 104, 105]
    assert [list(req.slice_for(s, data)) for s in req.registers] == [[100], [102, 103], [105]]


def test_single_reads_split_a_read_into_one_per_register():
    assert [(r.address, r.count) for r in single_reads([reg(0), reg(4, 2)])] == [(0, 1), (4, 2)]


def test_the_simulators_devices_need_four_reads_each():
    ups, meter = config_from_toml(sim_ups.devices_toml(5020)).devices
    plan = lambda d: compile_plan(d.settings.registers,                      # noqa: E731
                                  max_registers_per_read=d.settings.max_registers_per_read,
                                  max_gap=d.settings.max_gap)
    assert shape(plan(ups)) == [("holding", 100, 8), ("input", 0, 12), ("coil", 0, 1),
                                ("discrete", 0, 1)]
    assert shape(plan(meter)) == [("input", 0, 14), ("input", 30, 2), ("input", 70, 2),
                                  ("input", 342, 2)]
