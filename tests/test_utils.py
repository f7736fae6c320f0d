"""The helpers every room shares: strict-JSON values and flattened configurations."""

import json
import math

import numpy as np
import pytest

from deepmanifold.utils import flatten, jsonable


def test_jsonable_gives_strict_json_of_numpy_and_non_finite_values():
    value = {"a": np.float32(0.5), 3: (np.int64(2), float("nan"), np.inf), "m": np.arange(4).reshape(2, 2),
             "flag": np.bool_(True), "nested": {"x": [np.float64(-np.inf), "s", None]}}
    out = jsonable(value)
    assert out == {"a": 0.5, "3": [2, None, None], "m": [[0, 1], [2, 3]], "flag": True,
                   "nested": {"x": [None, "s", None]}}
    assert json.loads(json.dumps(out, allow_nan=False)) == out  # strict JSON round trip
    assert type(out["3"][0]) is int and type(out["flag"]) is bool
    assert jsonable(math.pi) == math.pi


def test_flatten_dots_nested_mappings_and_keeps_values():
    config = {"arch": "mlp", "arch_options": {"width": 32, "block": {"depth": 2}}, "lrs": [0.1, 0.2], "empty": {}}
    assert flatten(config) == {"arch": "mlp", "arch_options.width": 32, "arch_options.block.depth": 2,
                               "lrs": [0.1, 0.2]}
    assert flatten({"a": {"b": 1}}, prefix="config.") == {"config.a.b": 1}


def test_check_int_takes_integers_from_low_and_names_the_rest():
    from deepmanifold.utils import check_int

    assert check_int(np.int64(3), "k") == 3 and type(check_int(np.int64(3), "k")) is int
    assert check_int(0, "k", low=0) == 0
    for bad in (0, -1, 1.0, True, "2", None):
        with pytest.raises(ValueError, match="k must be an integer >= 1"):
            check_int(bad, "k")
