"""The web app's controls (clipviz.web.params): checking, parsing and writing back control values."""

from __future__ import annotations

import pytest

from clipviz.web import params
from clipviz.web.pages import surface as page


def test_num_check_accepts_bounds_and_explains_violations():
    s = params.Num("T", "T", 1, 500, 50, integer=True)
    assert s.check("20") == 20 and s.check(1) == 1 and s.check(500.0) == 500
    for bad, words in (("abc", "not an integer"), ("2.5", "not an integer"), (0, "out of range"),
                       (501, "out of range"), ("nan", "not finite"), (None, "enter"), ("", "enter"),
                       ([1], "not an integer"), (True, "enter")):
        with pytest.raises(ValueError, match=words) as e:
            s.check(bad)
        assert "between 1 and 500" in str(e.value)


def test_parse_uses_defaults_for_bad_and_missing_values():
    values, errors = params.parse(page.ALL_SPECS, {"T": "abc", "res": "64", "clip": "bogus", "log": "0"})
    assert values["T"] == 50 and values["res"] == 64 and values["clip"] == "norm"
    assert values["log"] is False and values["lr"] == 1.5
    assert set(errors) == {"T", "clip"}


def test_query_string_round_trips_through_parse():
    values = {s.name: s.default for s in page.ALL_SPECS} | {"T": 20, "act": "tanh", "log": False, "tau": 0.25}
    q = params.query_string(page.ALL_SPECS, values)
    from urllib.parse import parse_qsl

    back, errors = params.parse(page.ALL_SPECS, dict(parse_qsl(q[1:])))
    assert errors == {} and back == values


def test_round_sig():
    assert params.round_sig(1.23456789, 4) == 1.235
    assert params.round_sig(0.1 + 0.2) == 0.3
    assert params.round_sig(0.0) == 0.0
