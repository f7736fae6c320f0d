"""The query language on hostile input: deep nesting, huge literals, long echoes.

The examples of the language itself run through ``Store.query`` in test_catalog.py;
these call :func:`filter_frame` on a frame built here, so every expected row is known.
"""

import re

import numpy as np
import pandas as pd
import pytest

from deepmanifold.store.query import filter_frame

DEPTH = 100  # the documented nesting limit


@pytest.fixture
def frame():
    return pd.DataFrame({"run_id": ["a", "b", "c"], "width": [16.0, 64.0, np.nan], "arch": ["mlp", "wrn", "mlp"],
                         "big": [2.0**53, 1.0, 0.0]})


def ids(frame, where):
    return list(filter_frame(frame, where)["run_id"])


@pytest.mark.parametrize("where", [
    "not " * 1000 + "width == 16",                        # 4 kB of `not`
    "not " * DEPTH + "width == 16",                       # one level too many
    "width in " + "[" * 101 + "]" * 101,                  # brackets, within the parser's own limit
    "not (" * 60 + "width == 16 or " + "not " * 45 + "arch == 'x'" + ")" * 60,  # mixed, 107 levels
])
def test_deep_nesting_is_refused_before_recursing(frame, where):
    with pytest.raises(ValueError, match=re.escape(f"nests too deeply (more than {DEPTH} levels)")) as info:
        ids(frame, where)
    assert len(str(info.value)) < 250  # the query is echoed shortened


def test_nesting_up_to_the_limit_is_evaluated(frame):
    # 99 `not` around one comparison: 100 levels, an odd number of negations.
    assert ids(frame, "not " * (DEPTH - 1) + "width == 16") == ["b", "c"]
    assert ids(frame, "not " * (DEPTH - 2) + "width == 16") == ["a"]
    assert ids(frame, "not " * (DEPTH - 2) + "arch in ['wrn']") == ["b"]
    # Long but flat queries are not deep.
    assert ids(frame, " and ".join(["width > 0"] * 500)) == ["a", "b"]


def test_a_huge_number_is_not_echoed_in_full(frame):
    where = "width == " + "9" * 5000
    with pytest.raises(ValueError) as info:
        ids(frame, where)
    message = str(info.value)
    assert message.startswith("query 'width == 999") and "…" in message
    assert "is not a valid expression: Exceeds the limit" in message  # the parser's reason, in full
    assert message.count("9" * 100) == 0 and len(message) < 500


def test_long_literals_names_and_snippets_are_shortened(frame):
    text = "x" * 3000
    with pytest.raises(ValueError, match=r"^cannot compare width \(16\.0\) with 'x+…x+' \('x+…x+'\) "
                                         r"""using > in query "width > 'x+…x+'"$""") as info:
        ids(frame, f"width > '{text}'")
    assert len(str(info.value)) < 500
    with pytest.raises(ValueError, match=r"^unknown column 'width(\.a)+\.?…a?(\.a)+' in query; columns: run_id") as info:
        ids(frame, "width" + ".a" * 2000 + " == 1")
    assert len(str(info.value)) < 250
    with pytest.raises(ValueError, match=r"^arithmetic '1+…1+ \+ 1' is not allowed") as info:
        ids(frame, "width == " + "1" * 3000 + " + 1")
    assert len(str(info.value)) < 400


@pytest.mark.parametrize("where, message", [
    # short input keeps its whole message
    ("arch ==", "query 'arch ==' is not a valid expression: invalid syntax"),
    ("`width > 1", "unclosed backtick in query '`width > 1'"),
    ("arch > 3", "cannot compare arch ('mlp') with 3 (3) using > in query 'arch > 3'"),
    ("len(arch) > 2", "function call 'len(arch)' is not allowed in a query"),
    ("depth > 2", "unknown column 'depth' in query; columns: run_id, width, arch, big"),
    ("arch", "column 'arch' is not boolean; compare it (e.g. arch == ...) in query 'arch'"),
])
def test_short_queries_keep_their_messages(frame, where, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        ids(frame, where)


def test_integer_literals_beyond_float_compare_exactly(frame):
    # 4000 digits: larger than any float64, but Python compares int and float exactly.
    huge = "9" * 4000
    assert ids(frame, f"width == {huge}") == []
    assert ids(frame, f"width < {huge}") == ["a", "b"]  # the missing width satisfies no ordering
    assert ids(frame, f"width > -{huge}") == ["a", "b"]
    # 2**53 + 1 rounds to 2**53 as a float64; compared exactly, it is not equal.
    assert ids(frame, f"big == {2**53 + 1}") == []
    assert ids(frame, f"big < {2**53 + 1}") == ["a", "b", "c"]
    assert ids(frame, f"big == {2**53}") == ["a"]
