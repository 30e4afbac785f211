"""Registry-wide fingerprints: every registered model, and every architecture variant a weights
record asks for, keeps its state-dict keys and shapes (so release checkpoints keep loading) and
computes the same function. Recorded once in ``tests/fingerprints.json`` by

    python tests/test_fingerprints.py          # (re)writes tests/fingerprints.json
    python tests/test_fingerprints.py --missing  # adds the entries of new models, keeps the others

and checked by the test below: a refactoring of the model code (a shared trunk, hook points) must
leave every entry unchanged.

The weights are independent of construction order: built on the meta device, every tensor of the
state dict is filled from a generator seeded by its key (fan-in scaled normal weights, BatchNorm
statistics randomised), so only the keys, the shapes and the forward
computation decide the logits. The input is a fixed clip at the model's smallest size; the logits
are kept as 8 fixed random projections (float64). On the machine that recorded them (the same CPU part
and caches, one thread) they must agree to 1e-12 of their largest: the float32 logits repeat bit for
bit there, while the float64 product that projects them does not (the BLAS rounds its last digits
differently from one process to another: 4e-16 seen); a logit moved by one float32 unit moves them by far
more. Elsewhere (other CPU kernels round differently), and in CI (``CI`` set), whose hosts are not ours
to know (one showed the same CPU name and flags as the recording machine and rounded TCPNet's and TEA's
logits differently), within 1e-5. An entry added with ``--missing`` on another machine than the file's names its own.
"""
import hashlib
import json
import os
import sys
import zlib

import pytest
import torch

import zoo
from zoo.models import build_with_checkpoint, list_models, model_weights

PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fingerprints.json")


def variants():
    """``(entry name, model, model_args, num_classes)``: each model as registered, then each distinct
    architecture a weights record of it builds."""
    out = []
    for name in list_models():
        out.append((name, name, {}, None))
        seen = [{}]
        for w in model_weights(name):
            args = dict(w.model_args)
            if args not in seen:
                seen.append(args)
                out.append((f"{name}[{w.tag}]", name, args, w.num_classes))
    return out


def _fill(state_dict, small=()):
    """Deterministic values for every tensor, from its key alone; ``small``: keys of tensors the model
    initialises to zero (a branch that starts silent), drawn at 1/100 of the scale, so that a random
    network whose branches feed back on their input's scale (TAda2D's calibration) stays finite."""
    out = {}
    for key, t in state_dict.items():
        g = torch.Generator().manual_seed(zlib.crc32(key.encode()))
        if key in small:
            out[key] = 0.01 * torch.randn(t.shape, generator=g)
        elif not t.is_floating_point():
            out[key] = torch.zeros(t.shape, dtype=t.dtype)
        elif key.endswith("running_var"):
            out[key] = torch.rand(t.shape, generator=g) + 0.5
        elif key.endswith("running_mean") or key.endswith("bias"):
            out[key] = 0.1 * torch.randn(t.shape, generator=g)
        elif t.dim() <= 1:  # norm scales and other vectors
            out[key] = torch.rand(t.shape, generator=g) + 0.5
        else:
            fan_in = max(1, t[0].numel())
            out[key] = torch.randn(t.shape, generator=g) * (1.0 / fan_in) ** 0.5
    return out


def fingerprint(model_name, args, num_classes):
    with torch.device("meta"):
        model = build_with_checkpoint(model_name, None, num_classes=num_classes, **args)
    info = model.info
    keys = [(k, list(v.shape), str(v.dtype)) for k, v in model.state_dict().items()]
    small = {k for k, v in model.state_dict(keep_vars=True).items() if getattr(v, "zero_init", False)}
    model = model.to_empty(device="cpu")
    model.load_state_dict(_fill(model.state_dict(), small), strict=True)
    model.eval()
    size = info.min_size
    g = torch.Generator().manual_seed(0)
    channels = getattr(model, "in_chans", info.input_shape[0])  # a flow variant (P3D's Kinetics flow) takes 2
    x = torch.randn(1, channels, info.input_shape[1], size, size, generator=g)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            logits = model(x).double()
    finally:
        torch.set_num_threads(threads)
    projection = torch.randn(logits.shape[-1], 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    return {"keys": len(keys), "keys_sha256": hashlib.sha256(json.dumps(keys).encode()).hexdigest(),
            "input": list(x.shape), "logits_projected": (logits @ projection)[0].tolist(),
            "logits_finite": bool(torch.isfinite(logits).all())}


def _machine():
    """The identity under which logits must repeat bit for bit: the CPU part (not only its name: a VM's
    generic "Intel(R) Xeon(R) Processor" names several parts that round differently), its caches, the
    kernels it offers and torch. A record without all of these is checked by tolerance."""
    from zoo.benchmark.machine import cpu_flags, cpu_identity, cpu_name

    kernels = sorted(f for f in cpu_flags() if f.startswith(("avx", "amx", "fma")))
    return {"cpu": cpu_name(), **cpu_identity(), "kernels": kernels, "torch": torch.__version__}


def _recorded():
    with open(PATH) as f:
        return json.load(f)


@pytest.mark.parametrize("entry, model_name, args, num_classes", variants(), ids=[v[0] for v in variants()])
def test_fingerprint_unchanged(entry, model_name, args, num_classes):
    doc = _recorded()
    assert entry in doc["models"], f"{entry} has no fingerprint: run `python tests/test_fingerprints.py`"
    want, got = doc["models"][entry], fingerprint(model_name, args, num_classes)
    assert got["keys"] == want["keys"] and got["keys_sha256"] == want["keys_sha256"], "state-dict keys changed"
    assert got["input"] == want["input"] and got["logits_finite"]
    same = _machine() == want.get("machine", doc["machine"]) and not os.environ.get("CI")
    tol = 1e-12 if same else 1e-5
    # relative to the projections' scale: a projection near zero is a difference of large terms
    want_t = torch.tensor(want["logits_projected"], dtype=torch.float64)
    torch.testing.assert_close(torch.tensor(got["logits_projected"], dtype=torch.float64), want_t,
                               rtol=tol, atol=tol * float(want_t.abs().max()))


def test_every_variant_is_recorded():
    assert sorted(_recorded()["models"]) == sorted(v[0] for v in variants())


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    torch.set_num_threads(1)  # from the start, as the tests run (some kernels pick their blocking once)
    missing = "--missing" in sys.argv[1:]
    doc = _recorded() if missing else {"about": "python tests/test_fingerprints.py; see its docstring",
                                       "zoo": zoo.__version__, "machine": _machine(), "models": {}}
    for entry, model_name, args, num_classes in variants():
        if missing and entry in doc["models"]:
            continue
        doc["models"][entry] = fingerprint(model_name, args, num_classes)
        if _machine() != doc["machine"]:
            doc["models"][entry]["machine"] = _machine()
        print(entry, doc["models"][entry]["keys"], doc["models"][entry]["logits_projected"][0], flush=True)
    with open(PATH, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
