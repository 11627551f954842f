"""Clipping rules as objects: their parameters, the registry, and a plug-in rule reaching every
place that offers rules (forms, CLI, API, workers) with no edit outside its own definition."""

from __future__ import annotations

import math
import textwrap
import time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from clipviz import clipping, one_unit
from clipviz.clipping import AutoClip, NoClip, NormClip, ValueClip

finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
vectors = arrays(np.float64, st.integers(1, 12), elements=finite)


def test_each_rule_takes_exactly_its_own_parameters():
    assert NoClip().values == {}
    assert NormClip(2.0).values == {"threshold": 2.0} == ValueClip(threshold=2).values
    assert AutoClip(percentile=25).values == {"percentile": 25.0}
    with pytest.raises(TypeError):
        NormClip(threshold=1.0, percentile=5.0)  # the factory's signature is the rule's own
    with pytest.raises(ValueError, match="takes threshold; got 'percentile'"):
        clipping.Rule.__init__(NormClip.__new__(NormClip), threshold=1.0, percentile=5.0)
    # a config holding every rule's parameters can be passed whole: make() takes the rule's own
    assert clipping.make("norm", {"threshold": 3.0, "percentile": 7.0}) == NormClip(3.0)
    assert clipping.make("none", {"threshold": None}) == NoClip()
    assert [clipping.get(n).name for n in clipping.names()] == list(clipping.names())
    assert {p.name for p in clipping.params()} >= {"threshold", "percentile"}


@pytest.mark.parametrize("rule, text", [(NoClip(), "none"), (NormClip(120.0), "norm (tau=120)"),
                                        (ValueClip(0.5), "value (tau=0.5)"),
                                        (AutoClip(10.0), "autoclip (p=10)")])
def test_describe_and_repr(rule, text):
    assert rule.describe() == text
    assert eval(repr(rule), vars(clipping)) == rule  # noqa: S307 - the repr rebuilds the rule


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_a_parameter_accepts_exactly_its_domain(x):
    for p in clipping.params():
        inside = math.isfinite(x) and (x > p.lo if p.lo_open else x >= p.lo) and x <= p.hi
        if inside:
            assert p.check(x) == x
            assert p.form_lo <= p.default <= p.form_hi
        else:
            with pytest.raises(ValueError, match=f"{p.name} must be"):
                p.check(x)


def test_unknown_rule_names_the_registered_ones():
    with pytest.raises(ValueError, match="clip rule must be one of 'none', 'norm', 'value', 'autoclip'"):
        clipping.get("max")
    assert clipping.lookup("max") is None and clipping.lookup(["norm"]) is None
    assert clipping.describe("max", {}) == "max"
    assert clipping.line_value("norm", {"threshold": 2.5}) == 2.5
    assert clipping.line_value("autoclip", {"threshold": 2.5, "percentile": 5}) is None


def test_a_parameter_name_means_one_thing():
    bad = clipping.Param("threshold", "t", "t", "other", "", 0.0, 1.0, 0.5, 0.1, 1.0)

    class Clash(clipping.Rule):
        name, title, legend, method, params = "clash", "", "", "", (bad,)

    with pytest.raises(ValueError, match="share the same Param"):
        clipping.register(Clash)
    assert "clash" not in clipping.names()


@given(st.lists(arrays(np.float64, 3, elements=finite), min_size=1, max_size=20), st.floats(1, 100))
def test_fresh_forgets_the_state_and_a_descent_never_shares_it(gs, p):
    rule = AutoClip(p)
    first = [rule.step(g).threshold for g in gs]
    again = rule.fresh()
    assert [again.step(g).threshold for g in gs] == first


def test_descend_takes_a_rule_object_and_leaves_it_untouched():
    rule = AutoClip(50.0)
    a = one_unit.descend(4.0, -3.6, lr=1.5, n_steps=40, clip=rule)
    b = one_unit.descend(4.0, -3.6, lr=1.5, n_steps=40, clip="autoclip", percentile=50.0)
    c = one_unit.descend(4.0, -3.6, lr=1.5, n_steps=40, clip=rule)
    np.testing.assert_array_equal(a.params, b.params)
    np.testing.assert_array_equal(a.params, c.params)  # no history carried between descents
    assert rule._sorted_norms == []
    t = one_unit.descend(4.0, -3.6, lr=1.5, n_steps=5, clip=NormClip(0.5))
    assert (t.clip, t.threshold) == ("norm", 0.5)


# ---------------------------------------------------------------------------
# a plug-in rule, installed as a package would be: an entry point in the group clipviz.clipping
# ---------------------------------------------------------------------------
PLUGIN = '''
import math

from clipviz.clipping import Param, Rule

CAP = Param("cap", "cap", "c", "Soft cap c", "soft clipping: g <- g c / (c + |g|)", lo=0.0,
            hi=1e6, default=1.0, form_lo=1e-3, form_hi=1e3, domain="a number in (0, 1e6]")


class SoftClip(Rule):
    """g <- g c / (c + ||g||): every step shrunk, large ones to about norm c."""

    name = "soft"
    title = "soft: g·c/(c + ‖g‖)"
    legend = "soft clipping"
    method = "soft clipping"
    params = (CAP,)

    def __init__(self, cap):
        super().__init__(cap=cap)

    def _clip(self, g, n):
        c = self.values["cap"]
        return g * (c / (c + n)), n > 0, math.nan
'''


@pytest.fixture
def soft_rule(tmp_path, monkeypatch):
    """The SoftClip plug-in on this process's path and its children's (runners, workers)."""
    site = tmp_path / "site"
    (site / "clipviz_softclip-0.1.dist-info").mkdir(parents=True)
    (site / "softclip_plugin.py").write_text(textwrap.dedent(PLUGIN))
    (site / "clipviz_softclip-0.1.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: clipviz-softclip\nVersion: 0.1\n")
    (site / "clipviz_softclip-0.1.dist-info" / "entry_points.txt").write_text(
        "[clipviz.clipping]\nsoft = softclip_plugin:SoftClip\n")
    monkeypatch.syspath_prepend(str(site))
    import os

    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])))
    assert "soft" not in clipping.names()
    # the surface page reads the registry once, when imported (as a deployment starts after its
    # plug-ins are installed: test_plugin_rule_in_a_fresh_app); imported here first, its controls
    # stay those of the built-in rules for the other tests of this process
    import clipviz.web.pages.surface  # noqa: F401

    assert clipping.load_plugins() == ("soft",)
    yield clipping.get("soft")
    clipping.unregister("soft")


def test_plugin_rule_steps_like_any_rule(soft_rule):
    r = clipping.make("soft", cap=2.0)
    o = r.step(np.array([3.0, 4.0]))
    assert o.fired and o.norm == 5.0 and np.allclose(o.g, [3.0 * 2 / 7, 4.0 * 2 / 7])
    s = r.step(np.array([np.nan, 1.0]))
    assert s.skipped and not s.fired and np.array_equal(s.g, [0.0, 0.0])
    with pytest.raises(ValueError, match="needs a cap"):
        clipping.make("soft")
    assert "soft" in clipping.RULES


def test_plugin_rule_in_the_training_page_form(soft_rule):
    from clipviz.web.pages import training as tp

    specs = {s.name: s for s in tp.run_specs()}
    assert "soft" in specs["clip"].options and specs["cap"].label == "Soft cap c"
    assert "soft" in _values(_find(tp.layout(), "tr-clip").options)
    assert _find(tp.layout(), "tr-cap").value == 1.0
    raw = {s.name: s.default for s in tp.run_specs()} | {"clip": "soft", "cap": 0.25, "seeds": 1}
    cfgs, errors = tp.form_configs(raw)
    assert errors == {} and cfgs[0]["clip"] == "soft" and cfgs[0]["cap"] == 0.25
    assert cfgs[0]["threshold"] is None  # the other rules' parameters are not the run's
    _, errors = tp.form_configs(raw | {"cap": 5000})
    assert "Soft cap c" in errors["cap"]
    assert "soft clipping" in [o["label"].strip() for o in _find(tp.layout(), "tr-methods").options]


def test_plugin_rule_in_the_cli(soft_rule, capsys):
    from clipviz.cli import main

    assert main(["train", "--clip", "soft", "--cap", "0.5", "--seq-len", "8", "--hidden", "6",
                 "--batch-size", "4", "--max-updates", "5", "--eval-every", "5", "--quiet"]) == 0
    assert "clip=soft (cap=0.5)" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert "{none,norm,value,autoclip,norm_shrink,soft}" in out and "--cap" in out and "soft clipping" in out


def test_plugin_rule_through_the_api_and_a_runner(soft_rule, tmp_path, monkeypatch):
    """Validated by the API, run by a runner process that finds the plug-in itself."""
    monkeypatch.setenv("CLIPVIZ_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("CLIPVIZ_REDIS_URL", raising=False)
    from clipviz.web.app import create_app

    client = create_app(warm=False).server.test_client()
    small = dict(task="temporal_order", seq_len=8, hidden=6, batch_size=4, max_updates=30,
                 eval_every=10, clip="soft")
    r = client.post("/api/runs", json=small)
    assert r.status_code == 400 and "needs a cap" in r.get_json()["error"]
    r = client.post("/api/runs", json=dict(small, cap=-1))
    assert r.status_code == 400 and "cap must be a number in (0, 1e6]" in r.get_json()["error"]
    r = client.post("/api/runs", json=dict(small, clip="sofft", cap=1))
    assert r.status_code == 400 and "'soft'" in r.get_json()["error"]
    r = client.post("/api/runs", json=dict(small, cap=0.5))
    assert r.status_code == 201, r.get_json()
    rid = r.get_json()["id"]
    deadline = time.monotonic() + 120
    while (run := client.get(f"/api/runs/{rid}").get_json()["run"])["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, run
        time.sleep(0.2)
    assert run["status"] == "finished", run
    assert run["config"]["clip"] == "soft" and run["config"]["cap"] == 0.5
    assert run["result"]["clipped_fraction"] == 1.0  # soft clipping shrinks every finite step


SURFACE_PROBE = """
import json
from clipviz.web.app import create_app
from clipviz.web.pages import surface as page
from tests.test_clipping_rules import _find, _values
from tests.web_helpers import RUN, SURF

app = create_app(warm=False)  # the app of a deployment where the plug-in is installed
tree = page.layout(clip="soft", cap="0.5")
view = page.update_view({**SURF, **RUN, "clip": "soft", "cap": 0.5}, surface=False)
bad = page.update_view({**SURF, **RUN, "clip": "soft", "cap": -1}, surface=False)
states = {s["id"] for cb in app.callback_map.values() for s in cb.get("state", [])}
print(json.dumps({
    "options": _values(_find(tree, "es-clip").options), "cap": _find(tree, "es-cap").value,
    "sent": [c["arg"] for c in page.browser_data()["view"]["controls"]],
    "names": [t["name"] for t in view["paths"]["data"]], "msgs": view["msgs"],
    "bad": bad["msgs"]["cap"], "paths_when_bad": bad["paths"],
    "training_form_state": "tr-cap" in states,
}))
"""


def test_plugin_rule_in_a_fresh_app(soft_rule, tmp_path):
    """A deployment with the plug-in installed: the surface page offers the rule and a control for
    its parameter, its browser code sends it, its descent uses it; the training form's callbacks
    read its parameter too."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, CLIPVIZ_DATA_DIR=str(tmp_path / "data"),
               PYTHONPATH=os.pathsep.join([os.environ["PYTHONPATH"], str(root)]))
    out = subprocess.run([sys.executable, "-c", SURFACE_PROBE], env=env, cwd=root, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert "soft" in got["options"] and got["cap"] == 0.5
    assert "cap" in got["sent"]
    assert got["names"][:2] == ["no clipping", "soft clipping"] and not any(got["msgs"].values())
    assert "Soft cap c" in got["bad"] and got["paths_when_bad"] is None
    assert got["training_form_state"]


def _values(options) -> list:
    """The values of a Dash component's options (plain strings or {"label", "value"} dicts)."""
    return [o["value"] if isinstance(o, dict) else o for o in options]


def _find(tree, cid):
    """The component with id ``cid`` in a Dash layout."""
    stack = [tree]
    while stack:
        c = stack.pop()
        if getattr(c, "id", None) == cid:
            return c
        kids = getattr(c, "children", None)
        if isinstance(kids, (list, tuple)):
            stack.extend(kids)
        elif kids is not None and hasattr(kids, "children") or hasattr(kids, "id"):
            stack.append(kids)
    raise AssertionError(f"no component {cid!r}")


# ---------------------------------------------------------------------------
# norm_shrink: the authors' rule (pascanur/trainingRNNs, RNN.py:219-243)
# ---------------------------------------------------------------------------
from clipviz.clipping import Blocks, NormShrinkClip  # noqa: E402

taus = st.floats(1e-3, 1e3)


@given(vectors, taus)
def test_norm_shrink_rescales_like_algorithm_1_below_the_blow_up(g, tau):
    """Below 1e10: g kept when ||g|| <= τ (strict >, RNN.py:226), else g τ/||g||; never replaced."""
    out = NormShrinkClip(tau).step(g.copy())
    n = float(np.linalg.norm(g))
    assert not out.skipped and not out.replaced and out.threshold == tau
    assert out.fired == (out.norm > tau)
    assert np.linalg.norm(out.g) <= tau * (1 + 1e-12) or not out.fired and np.array_equal(out.g, g)
    if out.fired:
        np.testing.assert_allclose(out.g, g * (tau / out.norm), rtol=1e-12, atol=0)
    assert out.norm == pytest.approx(n, rel=1e-12)
    if out.norm != tau:  # only ||g|| == τ exactly differs (Algorithm 1 fires on >=)
        ref = NormClip(tau).step(g.copy())
        np.testing.assert_array_equal(out.g, ref.g)


@given(arrays(np.float64, st.integers(5, 12), elements=finite), st.integers(0, 3),
       st.sampled_from([np.nan, np.inf, -np.inf, 1e11, -3e15]), taus)
def test_norm_shrink_replaces_a_blow_up_by_the_w_shrink(theta, where, bad, tau):
    """A non-finite norm or one above 1e10: the step is 0.02 W on W's block and 0 elsewhere
    (RNN.py:234-243); without the parameters the step is skipped as every rule skips."""
    g = np.ones_like(theta)
    g[where] = bad
    blocks = Blocks(theta, {"W": slice(0, 4)})
    out = NormShrinkClip(tau).step(g.copy(), blocks)
    assert out.replaced and out.fired and not out.skipped
    assert not math.isfinite(out.norm) or out.norm > NormShrinkClip.BLOW_UP
    np.testing.assert_array_equal(out.g[:4], 0.02 * theta[:4])
    assert not out.g[4:].any()
    assert out.g is not g and np.isfinite(out.g).all()
    bare = NormShrinkClip(tau).step(g.copy())  # no parameters (the one-unit descent)
    assert bare.skipped and not bare.replaced and not bare.g.any()


def test_norm_shrink_is_registered_and_declares_what_it_reads():
    assert "norm_shrink" in clipping.names() and clipping.get("norm_shrink") is NormShrinkClip
    assert NormShrinkClip.needs == ("W",) and NormClip.needs == () and AutoClip.needs == ()
    assert NormShrinkClip(1.0).values == {"threshold": 1.0}
    assert clipping.make("norm_shrink", {"threshold": 2.0, "percentile": 5.0}) == NormShrinkClip(2.0)
    assert NormShrinkClip(1.0).describe() == "norm_shrink (tau=1)"
    with pytest.raises(ValueError, match="threshold must be"):
        NormShrinkClip(0.0)
    # the other rules ignore the parameters they are handed
    g = np.array([3.0, 4.0])
    np.testing.assert_array_equal(NormClip(1.0).step(g, Blocks(g, {"W": slice(0, 1)})).g,
                                  NormClip(1.0).step(g).g)
