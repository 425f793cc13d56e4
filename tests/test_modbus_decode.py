"""Decoding registers into values: every type, the four word/byte orders, and garbage."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given, strategies as st

from agent.config.modbus import ORDERS, RegisterSpec
from agent.readings import Sample
from agent.sources.modbus_decode import Garbage, decode_raw, encode, to_samples

# float32 123.456 is 0x42F6E979: bytes A=42 B=F6 C=E9 D=79.
FLOAT32_WORDS = {
    "ABCD": [0x42F6, 0xE979],
    "CDAB": [0xE979, 0x42F6],
    "BADC": [0xF642, 0x79E9],
    "DCBA": [0x79E9, 0xF642],
}
# A 64-bit value with bytes 01 02 03 04 05 06 07 08, most significant first.
U64 = 0x0102030405060708
U64_WORDS = {
    "ABCD": [0x0102, 0x0304, 0x0506, 0x0708],
    "CDAB": [0x0708, 0x0506, 0x0304, 0x0102],
    "BADC": [0x0201, 0x0403, 0x0605, 0x0807],
    "DCBA": [0x0807, 0x0605, 0x0403, 0x0201],
}


def spec(type_="int16", *, order="ABCD", **kw) -> RegisterSpec:
    word, byte = ORDERS[order]
    count = {"int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "int64": 4, "uint64": 4,
             "float32": 2, "float64": 4, "bit": 1}.get(type_, kw.pop("count", 1))
    return RegisterSpec(name=kw.pop("name", "x"), table=kw.pop("table", "holding"), address=0,
                        label="holding register 0", type=type_, count=count, word_order=word,
                        byte_order=byte, **kw)


@pytest.mark.parametrize("order", ORDERS)
def test_float32_in_each_of_the_four_orders(order):
    word, byte = ORDERS[order]
    assert decode_raw("float32", FLOAT32_WORDS[order], word_order=word, byte_order=byte) == \
        123.456


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("type_, expected", [
    ("uint64", U64), ("int64", U64),
    ("float64", struct.unpack(">d", U64.to_bytes(8, "big"))[0]),
])
def test_64_bit_types_in_each_of_the_four_orders(order, type_, expected):
    word, byte = ORDERS[order]
    assert decode_raw(type_, U64_WORDS[order], word_order=word, byte_order=byte) == expected


@pytest.mark.parametrize("type_, words, expected", [
    ("int16", [0xFFFE], -2),
    ("uint16", [0xFFFE], 65534),
    ("int32", [0xFFFF, 0xFFFD], -3),
    ("uint32", [0x0001, 0x5F91], 90001),
    ("int64", [0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF], -1),
    ("uint64", [0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF], 2 ** 64 - 1),
    ("float64", [0x405F, 0xC000, 0x0000, 0x0000], 127.0),
])
def test_numbers_big_endian(type_, words, expected):
    assert decode_raw(type_, words) == expected


def test_16_bit_values_only_care_about_the_byte_order():
    assert decode_raw("uint16", [0x3412], word_order="little", byte_order="little") == 0x1234
    assert decode_raw("uint16", [0x1234], word_order="little", byte_order="big") == 0x1234


def test_uint32_word_swapped_as_many_ups_counters_are():
    assert decode_raw("uint32", [0x5F91, 0x0001], word_order="little") == 90001


def test_bits_of_a_register_and_coils():
    assert decode_raw("bit", [0b1000_0000_0000_0001], bit=0) is True
    assert decode_raw("bit", [0b1000_0000_0000_0001], bit=1) is False
    assert decode_raw("bit", [0b1000_0000_0000_0001], bit=15) is True
    assert decode_raw("bit", [True]) is True        # a coil or discrete input


def test_strings_drop_padding_and_honour_the_byte_order():
    words = [0x5349, 0x4D2D, 0x5550, 0x5300, 0x0000]           # "SIM-UPS" + NULs
    assert decode_raw("string", words) == "SIM-UPS"
    swapped = [0x4953, 0x2D4D, 0x5055, 0x0053, 0x0000]
    assert decode_raw("string", swapped, byte_order="little") == "SIM-UPS"
    assert decode_raw("string", [0x4142, 0x2020]) == "AB"      # space padded
    assert decode_raw("string", [0x4142, 0x0043]) == "AB"      # junk after the terminating NUL


@pytest.mark.parametrize("words, reason", [
    ([0xFFFE, 0x4142], "not text (bytes ff fe 41 42)"),
    ([0x4107, 0x4142], "not text (bytes 41 07 41 42)"),
])
def test_strings_that_are_not_text_are_garbage(words, reason):
    with pytest.raises(Garbage) as info:
        decode_raw("string", words)
    assert info.value.reason == reason


@pytest.mark.parametrize("type_, words, reason", [
    ("float32", [0x7FC0, 0x0000], "NaN (the device marks the value as not available)"),
    ("float32", [0xFFFF, 0xFFFF], "NaN (the device marks the value as not available)"),
    ("float32", [0x7F80, 0x0000], "infinite (the device marks the value as out of range)"),
    ("float64", [0x7FF8, 0, 0, 0], "NaN (the device marks the value as not available)"),
])
def test_nan_and_infinity_are_garbage(type_, words, reason):
    with pytest.raises(Garbage) as info:
        decode_raw(type_, words)
    assert info.value.reason == reason


def test_float32_shows_the_digits_the_device_meant():
    assert decode_raw("float32", encode("float32", 0.95)) == 0.95
    assert decode_raw("float32", encode("float32", 1234.5)) == 1234.5


def test_scale_and_offset():
    assert to_samples(spec("uint16", scale=0.1, unit="V"), [1270]) == [Sample("x", 127.0, "V")]
    assert to_samples(spec("uint16", scale=0.01), [2760]) == [Sample("x", 27.6, "")]
    # Whole scale and offset keep an integer an integer (a count stays a count).
    got = to_samples(spec("int16", scale=10, offset=-40), [5])
    assert got == [Sample("x", 10, "")] and isinstance(got[0].value, int)
    assert to_samples(spec("int16"), [0xFF38]) == [Sample("x", -200, "")]
    assert to_samples(spec("float32", scale=1000, unit="W"), encode("float32", 1.5)) == \
        [Sample("x", 1500.0, "W")]


def test_enum_gives_the_text_and_says_so_when_the_code_is_unknown():
    s = spec("uint16", enum=((0, "online"), (1, "on battery")))
    assert to_samples(s, [1]) == [Sample("x", "on battery", "")]
    assert to_samples(s, [7]) == [Sample("x", "unknown (7)", "")]


def test_flags_give_the_word_and_one_boolean_per_named_bit():
    s = spec("uint16", name="status", flags=((0, "on_battery"), (4, "charging"),
                                             (15, "fault")))
    assert to_samples(s, [0b1000_0000_0001_0001]) == [
        Sample("status", 0x8011, ""),
        Sample("status.on_battery", True, ""),
        Sample("status.charging", True, ""),
        Sample("status.fault", True, ""),
    ]
    # A signed alarm word still has its top bit.
    signed = spec("int16", name="status", flags=((15, "fault"),))
    assert to_samples(signed, [0x8000])[1] == Sample("status.fault", True, "")


def test_garbage_propagates_from_to_samples():
    with pytest.raises(Garbage):
        to_samples(spec("float32"), [0x7FC0, 0])


_INT_RANGES = {"int16": (-2 ** 15, 2 ** 15 - 1), "uint16": (0, 2 ** 16 - 1),
               "int32": (-2 ** 31, 2 ** 31 - 1), "uint32": (0, 2 ** 32 - 1),
               "int64": (-2 ** 63, 2 ** 63 - 1), "uint64": (0, 2 ** 64 - 1)}


@st.composite
def typed_values(draw):
    type_ = draw(st.sampled_from(sorted(_INT_RANGES) + ["float32", "float64"]))
    if type_ in _INT_RANGES:
        lo, hi = _INT_RANGES[type_]
        return type_, draw(st.integers(lo, hi))
    if type_ == "float32":
        value = draw(st.floats(width=32, allow_nan=False, allow_infinity=False))
        return type_, value
    return type_, draw(st.floats(allow_nan=False, allow_infinity=False))


@given(typed_values(), st.sampled_from(sorted(ORDERS)))
def test_every_type_round_trips_in_every_order(typed, order):
    type_, value = typed
    word, byte = ORDERS[order]
    words = encode(type_, value, word_order=word, byte_order=byte)
    assert all(0 <= w <= 0xFFFF for w in words)
    got = decode_raw(type_, words, word_order=word, byte_order=byte)
    if type_ == "float32":
        # Shown with float32's 7 significant digits.
        assert math.isclose(got, value, rel_tol=1e-6, abs_tol=1e-37)
    else:
        assert got == value


@given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20)
       .map(str.rstrip), st.sampled_from(["big", "little"]))
def test_strings_round_trip(text, byte_order):
    words = encode("string", text, byte_order=byte_order, length=10)
    assert len(words) == 10
    assert decode_raw("string", words, byte_order=byte_order) == text
