"""fpga.int_resmlp: the integer model against a plain-Python-int reference of
docs/METHOD.md section 10, the trace, the parameter file (round trip, one-line errors)."""
import json
import math
from fractions import Fraction

import numpy as np
import pytest

from errors import UserError
from fpga import int_resmlp as im
from tests.oracles import shipped_int8_dump


def _rs(v, s):
    return v if s == 0 else math.floor(Fraction(v, 2 ** s) + Fraction(1, 2))


def _c8(v):
    return min(max(v, -128), 127)


def ref_model(p, meta, x):
    """Section 10 on one image with Python ints and lists only."""
    P = {k: v.astype(int).tolist() for k, v in p.items()}

    def lin(name, rows):
        W, b, s = P[name + ".W"], P[name + ".b"], P[name + ".s"]
        return [[_c8(_rs(sum(a * w for a, w in zip(r, W[o])), s[o]) + b[o]) for o in range(len(W))]
                for r in rows]

    def aff(name, rows):
        w, b, s = P[name + ".w"], P[name + ".b"], P[name + ".s"]
        return [[_c8(_rs(v * w[c], s[c]) + b[c]) for c, v in enumerate(r)] for r in rows]

    def lerp(lut, rows):
        out = []
        for r in rows:
            o = []
            for c, v in enumerate(r):
                hi, lo = (v + 128) // 4, (v + 128) % 4
                y0, y1 = lut[c][hi], lut[c][hi + 1]
                o.append(y0 + math.floor(Fraction((y1 - y0) * lo, 4) + Fraction(1, 2)))
            out.append(o)
        return out

    def T(rows):
        return [list(c) for c in zip(*rows)]

    def add(a, b):
        return [[_c8(u + v) for u, v in zip(ra, rb)] for ra, rb in zip(a, b)]

    x = lin("embed", x.astype(int).tolist())
    for i in range(meta["depth"]):
        q = f"blocks.{i}"
        r = aff(q + ".tm.res", x)
        t = T(lin(q + ".tm.lin", T(aff(q + ".tm.aff1", x))))
        x = add(aff(q + ".tm.aff2", t), r)
        r = aff(q + ".mlp.res", x)
        if meta["act"] == "psa":
            t = lin(q + ".mlp.lin2", lerp(P[q + ".mlp.lut2"], lin(q + ".mlp.lin1", lerp(P[q + ".mlp.lut1"], x))))
        else:
            t = lin(q + ".mlp.lin2", [[max(v, 0) for v in row] for row in lin(q + ".mlp.lin1", x)])
        x = add(t, r)
    pooled = [_rs(sum(col), int(math.log2(len(x)))) for col in zip(*x)]
    return lin("head", [pooled])[0]


@pytest.mark.parametrize("act,hidden", [("base", 12), ("psa", 8)])
def test_forward_matches_python_int_reference(act, hidden):
    p, meta = im.random_params(act, hidden, patch_values=5, channels=8, depth=2, tokens=16, seed=3)
    rng = np.random.default_rng(4)
    x = rng.integers(-128, 128, size=(3, 16, 5)).astype(np.int8)
    got = im.forward(p, meta, x)
    assert got.dtype == np.int8 and got.shape == (3, 10)
    for n in range(3):
        assert got[n].tolist() == ref_model(p, meta, x[n])


def test_trace_and_batching():
    p, meta = im.random_params("psa", 96, seed=1)
    x = np.random.default_rng(5).integers(-128, 128, size=(5, 64, 16)).astype(np.int8)
    logits = im.forward(p, meta, x, batch=2)
    tr = im.forward_trace(p, meta, x[2])
    assert np.array_equal(tr["logits"], logits[2])
    assert list(tr)[:6] == ["embed", "blocks.0.tm.res", "blocks.0.tm.aff1", "blocks.0.tm.lin",
                            "blocks.0.tm.aff2", "blocks.0.tm.add"]
    assert [k for k in tr if k.startswith("blocks.3.mlp")] == [
        "blocks.3.mlp.res", "blocks.3.mlp.lut1", "blocks.3.mlp.lin1", "blocks.3.mlp.lut2",
        "blocks.3.mlp.lin2", "blocks.3.mlp.add"]
    assert tr["pool"].shape == (96,) and tr["blocks.1.tm.lin"].shape == (64, 96)
    # random models are not saturated throughout
    assert (np.abs(tr["blocks.3.mlp.add"].astype(int)) < 127).mean() > 0.5
    assert len(set(logits.reshape(-1).tolist())) > 10


def test_save_load_round_trip_and_errors(tmp_path):
    p, meta = im.random_params("base", 192, seed=2)
    path = tmp_path / "q.npz"
    im.save_params(path, p, meta)
    with np.load(path, allow_pickle=False) as z:
        assert z["meta"].shape == () and json.loads(str(z["meta"][()]))["act"] == "base"
    p2, meta2 = im.load_params(path)
    assert meta2 == json.loads(json.dumps(meta)) and set(p2) == set(p)
    assert all(np.array_equal(p[k], p2[k]) for k in p)

    def bad(mutate, match):
        q = dict(p)
        mutate(q)
        arrays = dict(q)
        arrays["meta"] = np.array(json.dumps(meta))
        f = tmp_path / "bad.npz"
        np.savez(f, **arrays)
        with pytest.raises(UserError, match=match) as ei:
            im.load_params(f)
        assert "\n" not in str(ei.value)

    bad(lambda q: q.pop("blocks.2.mlp.lin1.b"), r"lacks the key blocks\.2\.mlp\.lin1\.b")
    bad(lambda q: q.update({"head.W": p["head.W"].astype(np.int32) * 3}), r"head\.W holds values")
    bad(lambda q: q.update({"embed.s": np.full(96, 40)}), r"embed\.s holds values .* 0\.\.31")
    bad(lambda q: q.update({"blocks.0.tm.lin.W": p["blocks.0.tm.lin.W"][:, :10]}), r"tm\.lin\.W has shape")
    bad(lambda q: q.update({"blocks.0.mlp.lut1": np.zeros((96, 65), np.int8)}), r"unexpected key blocks\.0\.mlp\.lut1")
    with pytest.raises(UserError, match="does not exist"):
        im.load_params(tmp_path / "missing.npz")
    # save refuses a bad model and leaves no file behind
    q = dict(p)
    q["head.b"] = np.full(10, 300)
    with pytest.raises(UserError, match=r"head\.b"):
        im.save_params(tmp_path / "never.npz", q, meta)
    assert sorted(x.name for x in tmp_path.iterdir()) == ["bad.npz", "q.npz"]


def test_cli_bad_params_is_one_line(tmp_path, capsys):
    f = tmp_path / "junk.npz"
    f.write_bytes(b"not a zip")
    assert im.main(["--params", str(f)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "junk.npz" in err


SHIPPED = [("baseline", "h_mul_2", "base", 192), ("baseline", "h_mul_1", "base", 96),
           ("lerp_psa_64", "h_mul_1", "psa", 96)]


@pytest.mark.parametrize("folder,stem,act,hidden", SHIPPED)
def test_shipped_dumps_reproduce_their_samples(folder, stem, act, hidden):
    params, meta, x, labels, logits = shipped_int8_dump(f"{folder}/quant/{stem}")
    assert (meta["act"], meta["hidden"], meta["patch_values"]) == (act, hidden, 16)
    assert x.shape == (256, 64, 16) and labels.shape == (256,)
    assert np.array_equal(im.forward(params, meta, x), logits)
