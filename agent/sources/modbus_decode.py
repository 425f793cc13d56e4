"""Turns raw Modbus registers into values: pure functions, no I/O, unit-tested on their own.

Registers are 16-bit words. A value wider than one word is spread over several, and devices
disagree on the order, so each register spec says two things:

* word order: "big" puts the most significant word first (ABCD), "little" last (CDAB);
* byte order: "big" sends each word's high byte first (ABCD), "little" swaps them (BADC).

For a 32-bit value with bytes A (most significant) to D that gives the four usual names ABCD,
CDAB, BADC, DCBA; 64-bit values follow the same two rules over four words. Strings are byte
sequences: only the byte order applies, and trailing NULs/spaces are dropped.

Anything that cannot be a real reading (NaN, infinity, a string that is not text) raises
``Garbage`` with a plain-words reason, so the source can skip that one metric and say why.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence

from agent.config.modbus import INTEGER_TYPES, RegisterSpec
from agent.i18n import Text, text
from agent.readings import Sample, Value

_STRUCT = {"int16": "h", "uint16": "H", "int32": "i", "uint32": "I", "int64": "q",
           "uint64": "Q", "float32": "f", "float64": "d"}
_WIDTH = {"int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "int64": 4, "uint64": 4,
          "float32": 2, "float64": 4}


class Garbage(ValueError):
    """The registers hold no usable value; ``code`` says why (a catalogue id with arguments),
    ``reason`` in English."""

    def __init__(self, reason: Text) -> None:
        self.code = reason
        self.reason = str(reason)
        super().__init__(self.reason)


def words_to_bytes(words: Sequence[int], *, word_order: str = "big",
                   byte_order: str = "big") -> bytes:
    """The value's bytes, most significant first, from registers in the device's order."""
    ordered = list(words)[::-1] if word_order == "little" else list(words)
    out = bytearray()
    for w in ordered:
        hi, lo = (w >> 8) & 0xFF, w & 0xFF
        out += bytes((lo, hi)) if byte_order == "little" else bytes((hi, lo))
    return bytes(out)


def bytes_to_words(data: bytes, *, word_order: str = "big", byte_order: str = "big") -> list[int]:
    """Inverse of ``words_to_bytes``: registers, in the device's order, holding ``data``."""
    if len(data) % 2:
        data += b"\x00"
    words = []
    for i in range(0, len(data), 2):
        hi, lo = data[i], data[i + 1]
        words.append((lo << 8 | hi) if byte_order == "little" else (hi << 8 | lo))
    return words[::-1] if word_order == "little" else words


def decode_raw(type_: str, words: Sequence[int], *, word_order: str = "big",
               byte_order: str = "big", bit: int | None = None) -> int | float | str | bool:
    """Decode ``words`` as ``type_`` (before scale, enum or flags). Raises ``Garbage``."""
    if type_ == "bit":
        if bit is None:              # a coil or discrete input: the "word" is the bit itself
            return bool(words[0])
        return bool((words[0] >> bit) & 1)
    if type_ == "string":
        raw = words_to_bytes(words, byte_order=byte_order)
        # Devices pad with NULs or spaces; some terminate with NUL and leave junk after it.
        raw = raw.split(b"\x00", 1)[0].rstrip(b" ")
        try:
            decoded = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise Garbage(text("src.modbus.garbage.not_text", data=raw.hex(" "))) from None
        if not decoded.isprintable():
            raise Garbage(text("src.modbus.garbage.not_text", data=raw.hex(" ")))
        return decoded
    fmt = _STRUCT.get(type_)
    if fmt is None:
        raise ValueError(f"unknown register type {type_!r}")
    if len(words) != _WIDTH[type_]:
        raise Garbage(text("src.modbus.garbage.width", type=type_, need=_WIDTH[type_],
                           got=len(words)))
    value: int | float = struct.unpack(">" + fmt, words_to_bytes(words, word_order=word_order,
                                                    byte_order=byte_order))[0]
    if type_ in ("float32", "float64"):
        if math.isnan(value):
            raise Garbage(text("src.modbus.garbage.nan"))
        if math.isinf(value):
            raise Garbage(text("src.modbus.garbage.inf"))
        if type_ == "float32":
            # A float32 carries ~7 significant digits; printing more only shows binary noise
            # (0.95 would read 0.949999988079071).
            value = float(f"{value:.7g}")
    return value


def encode(type_: str, value: int | float | str | bool, *, word_order: str = "big",
           byte_order: str = "big", length: int | None = None) -> list[int]:
    """Registers holding ``value`` as a device would send them (for tests and the simulator)."""
    if type_ == "bit":
        return [1 if value else 0]
    if type_ == "string":
        data = str(value).encode("utf-8")
        size = 2 * (length if length is not None else (len(data) + 1) // 2)
        data = data[:size].ljust(size, b"\x00")
        return bytes_to_words(data, byte_order=byte_order)
    fmt = _STRUCT[type_]
    return bytes_to_words(struct.pack(">" + fmt, value), word_order=word_order,
                          byte_order=byte_order)


def scaled(spec: RegisterSpec, raw: int | float) -> int | float:
    """Apply the spec's ``scale`` and ``offset``; integers stay integers when both are whole."""
    if spec.scale == 1 and spec.offset == 0:
        return raw
    value = raw * spec.scale + spec.offset
    if isinstance(raw, int) and float(spec.scale).is_integer() and \
            float(spec.offset).is_integer():
        return int(round(value))
    # 1270 * 0.1 is 127.00000000000001 in binary floating point; 12 digits is far beyond any
    # meter's precision and hides that noise.
    return float(f"{value:.12g}")


def to_samples(spec: RegisterSpec, data: Sequence[int | bool]) -> list[Sample]:
    """The samples one register spec yields from its own words (or bit). Raises ``Garbage``."""
    raw = decode_raw(spec.type, data, word_order=spec.word_order, byte_order=spec.byte_order,
                     bit=spec.bit)
    if spec.enum:
        word = dict(spec.enum).get(int(raw))
        return [Sample(spec.name, word if word is not None else f"unknown ({raw})", "")]
    if spec.flags:
        bits = _WIDTH[spec.type] * 16
        bits_word = int(raw) & ((1 << bits) - 1)
        out = [Sample(spec.name, int(raw), spec.unit)]
        out += [Sample(f"{spec.name}.{flag}", bool((bits_word >> n) & 1), "")
                for n, flag in spec.flags]
        return out
    value: Value = raw
    if spec.type in INTEGER_TYPES or spec.type in ("float32", "float64"):
        value = scaled(spec, raw)   # type: ignore[arg-type]
    return [Sample(spec.name, value, spec.unit)]
