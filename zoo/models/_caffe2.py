"""Caffe2 ``.pkl`` checkpoints (PySlowFast's and VMZ's releases), read safely and turned into tensors.

The files are pickles of ``{"blobs": {name: ndarray}, ...}``, which ``torch.load(weights_only=True)``
refuses; `read_caffe2_pkl` unpickles them admitting numpy arrays and plain containers only, and
is registered as the checkpoint reader for ``.pkl`` files. Each family maps the blob names to its
keys with `blobs_to_tensors` and its own renaming.
"""
from __future__ import annotations

import io
import os
import pickle
from typing import Any, Callable, Dict, Mapping, Optional

import numpy as np
import torch

from .._errors import BadCheckpoint
from ._checkpoint_io import register_checkpoint_reader

__all__ = ["read_caffe2_pkl", "caffe2_blobs", "blobs_to_tensors"]

try:  # numpy >= 2
    from numpy._core import multiarray as _np_multiarray
    from numpy._core import numeric as _np_numeric
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core import multiarray as _np_multiarray
    from numpy.core import numeric as _np_numeric

_PICKLE_ALLOWED = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): __import__("codecs").encode,  # how Python 3 writes bytes at protocol <= 2
}
for _mod in ("numpy.core", "numpy._core"):
    _PICKLE_ALLOWED[(f"{_mod}.multiarray", "_reconstruct")] = _np_multiarray._reconstruct
    _PICKLE_ALLOWED[(f"{_mod}.multiarray", "scalar")] = _np_multiarray.scalar
    _PICKLE_ALLOWED[(f"{_mod}.numeric", "_frombuffer")] = _np_numeric._frombuffer


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        try:
            return _PICKLE_ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to load {module}.{name}: a Caffe2 .pkl checkpoint may only contain numpy "
                f"arrays in dicts/lists (is this really a Caffe2 checkpoint?)") from None


def read_caffe2_pkl(file) -> dict:
    """Read a Caffe2 ``.pkl`` (a pickled ``{"blobs": {name: ndarray}, ...}``, often written by
    Python 2) without executing code: only numpy array reconstruction is allowed.

    ``file`` is a path or a binary file object. Python 2 ``str`` payloads decode as latin1.
    """
    if isinstance(file, (str, os.PathLike)):
        with open(file, "rb") as f:
            return read_caffe2_pkl(io.BytesIO(f.read()))
    try:
        return _NumpyOnlyUnpickler(file, encoding="latin1").load()
    except pickle.UnpicklingError:
        raise
    except Exception as e:
        raise BadCheckpoint(f"cannot read Caffe2 pickle: {e}") from e




register_checkpoint_reader(".pkl", read_caffe2_pkl)


def caffe2_blobs(checkpoint: Any) -> Optional[Dict[str, Any]]:
    """The blob dict of a Caffe2 checkpoint (``{"blobs": {...}}``), or None for any other object."""
    if isinstance(checkpoint, dict) and isinstance(checkpoint.get("blobs"), dict):
        return checkpoint["blobs"]
    return None


def blobs_to_tensors(blobs: Mapping[str, Any], rename: Callable[[str], Optional[str]],
                     shapes: Mapping[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """``{rename(name): tensor}`` for every blob; ``rename`` returns None to drop a blob (momentum
    buffers, learning rate, iteration counters). A blob with fewer dimensions than the tensor of
    its key in ``shapes`` (e.g. a 2D blob of a 1x1x1 conv) gets trailing unit dimensions."""
    out = {}
    for name, blob in blobs.items():
        key = rename(name)
        if key is None:
            continue
        tensor = torch.from_numpy(np.ascontiguousarray(blob))
        target = shapes.get(key)
        if target is not None and tensor.dim() < target.dim():
            tensor = tensor.reshape(tuple(tensor.shape) + (1,) * (target.dim() - tensor.dim()))
        out[key] = tensor
    return out
