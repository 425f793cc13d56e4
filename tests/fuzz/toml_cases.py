"""Hostile config text: the shipped example with lines replaced, values of every TOML kind and
size, nesting, and plain random text. Shared by the config-file and config-push fuzz tests."""

from __future__ import annotations

from pathlib import Path

from hypothesis import strategies as st

EXAMPLE = (Path(__file__).resolve().parents[2] / "conf/agent.example.toml").read_text()
LINES = EXAMPLE.splitlines()


def nested(depth: int, inner: str, kind: str) -> str:
    return ("[" * depth + inner + "]" * depth) if kind == "list" else \
        ("{a = " * depth + inner + "}" * depth)


values = st.one_of(
    st.integers().map(str),
    st.integers(-2**70, 2**70).map(str),
    st.sampled_from([19, 20, 21, 4300, 4301, 6000]).map(lambda n: "9" * n),   # int() stops at 4300
    st.sampled_from([15, 16, 17, 2000]).map(lambda n: "0x" + "f" * n),
    st.floats(allow_nan=True, allow_infinity=True).map(
        lambda f: {"nan": "nan", "inf": "inf", "-inf": "-inf"}.get(str(f), repr(f))),
    st.text(max_size=40).map(lambda t: '"' + t.replace("\\", "\\\\").replace('"', '\\"')
                             .replace("\n", "\\n") + '"'),
    st.sampled_from(["true", "false", "1979-05-27T07:32:00Z", "07:32:00", "[]", "{}", '""',
                     "'''\nmulti\n'''"]),
    st.tuples(st.sampled_from([1, 2, 15, 16, 17, 400, 1200]), st.sampled_from(["1", '"x"', "[]"]),
              st.sampled_from(["list", "table"])).map(lambda t: nested(*t)),
)

keys = st.one_of(st.sampled_from(["site_id", "state_dir", "port", "host", "password", "interval_s",
                                  "registers", "address", "type", "community", "control_socket",
                                  "secrets_file", "max_mb", "timeout_s", "version"]),
                 st.from_regex(r"[A-Za-z_][A-Za-z0-9_.-]{0,30}", fullmatch=True))


@st.composite
def config_texts(draw) -> str:
    """The example with a few lines replaced or added, or random text."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.text(max_size=500))
    lines = list(LINES)
    for _ in range(draw(st.integers(1, 5))):
        at = draw(st.integers(0, len(lines)))
        action = draw(st.sampled_from(["value", "line", "header", "delete"]))
        if action == "value" and at < len(lines) and "=" in lines[at]:
            key = lines[at].split("=", 1)[0]
            lines[at] = f"{key}= {draw(values)}"
        elif action == "line":
            lines.insert(at, f"{draw(keys)} = {draw(values)}")
        elif action == "header":
            depth = draw(st.sampled_from([1, 2, 15, 16, 17, 1200]))
            lines.insert(at, "[" + ".".join([draw(keys).split(".")[0] or "a"] * depth) + "]")
        elif at < len(lines):
            del lines[at]
    return "\n".join(lines) + "\n"
