"""Reading checkpoint files safely: ``torch.load(weights_only=True)``, a restricted unpickler for
files whose metadata holds objects (MMAction2's), and registered readers for other formats
(PySlowFast's Caffe2 pickles). Nothing but tensors and plain containers is ever built."""
from __future__ import annotations

import io
import os
import pickle
import re
from typing import Any, Callable, Dict, Sequence, Union

import torch

from .._errors import BadCheckpoint, InputNotFound

__all__ = ["PathLike", "register_checkpoint_reader", "read_checkpoint", "read_weights", "load_plain_data", "first_line"]

PathLike = Union[str, os.PathLike]


# File suffix -> reader for checkpoint formats torch.load cannot read (e.g. Caffe2 pickles).
_READERS: Dict[str, Callable[[io.BytesIO], Any]] = {}


def register_checkpoint_reader(suffix: str, reader: Callable[[io.BytesIO], Any]) -> None:
    """Read files ending in ``suffix`` with ``reader(file_object)`` instead of ``torch.load``.

    Readers must be as safe as ``weights_only=True``: plain data only, no arbitrary objects.
    """
    _READERS[suffix.lower()] = reader


def read_checkpoint(path: PathLike, *, progress: bool = True) -> Any:
    """Read a checkpoint from a local path or URL with ``torch.load(weights_only=True)`` (or a
    registered safe reader for formats such as PySlowFast's Caffe2 ``.pkl``). A URL is downloaded
    with timeouts into the weights cache (`zoo.models._hub.fetch_url`)."""
    path = os.fspath(path)
    if "://" in path:
        from ._hub import fetch_url
        local = str(fetch_url(path, progress=progress))
    else:
        local = path
    if not os.path.isfile(local):
        raise InputNotFound(f"checkpoint {path!r} does not exist")
    with open(local, "rb") as f:
        data = f.read()
    for suffix, reader in _READERS.items():
        if path.lower().endswith(suffix):
            try:
                return reader(io.BytesIO(data))
            except Exception as e:  # a registered reader's own errors: the file is not in its format
                raise BadCheckpoint(f"cannot read checkpoint {path!r}: {first_line(e)}") from None
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # a class weights_only refuses: read it as plain data below
        pass
    except Exception as e:  # whatever torch raises for a file that is not a checkpoint
        raise BadCheckpoint(f"cannot read checkpoint {path!r} with torch.load(weights_only=True): "
                         f"{first_line(e)}") from None
    try:  # e.g. MMAction2 / mmengine files: their `meta` holds objects weights_only refuses
        return load_plain_data(data)
    except Exception as e:  # as above: not a checkpoint torch can read
        raise BadCheckpoint(f"cannot read checkpoint {path!r} (plain data and tensors only): {first_line(e)}") from None


def first_line(e: BaseException) -> str:
    """One line of why ``e`` happened: the first of its message, or for ``torch.load``'s refusal of
    a pickled object the class it refused (its message is paragraphs of advice to load unsafely)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(e)).strip()
    refused = re.search(r"Unsupported global: GLOBAL (\S+)", text)
    if refused:
        return f"it holds a pickled {refused.group(1)} object, which a safe load refuses"
    return text.splitlines()[0] if text else type(e).__name__


class _Opaque:
    """Stand-in for an object of a class the restricted reader does not admit: built from nothing
    (no import, no constructor, no ``__setstate__`` of the real class runs), keeps nothing."""

    def __new__(cls, *args, **kwargs):
        return object.__new__(cls)

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        pass

    def __repr__(self):
        return f"<not loaded: {type(self).__qualname__}>"


# what a state dict needs: tensors, their storages (torch maps those itself), containers, dtypes
_ADMITTED = {("torch._utils", n) for n in ("_rebuild_tensor_v2", "_rebuild_tensor", "_rebuild_parameter",
                                         "_rebuild_parameter_with_state")}
_ADMITTED |= {("collections", "OrderedDict"), ("torch", "Size"), ("torch", "device"),
              ("torch._tensor", "_rebuild_from_type_v2"), ("torch.nn.parameter", "Parameter")}


class _PlainDataUnpickler(pickle.Unpickler):
    """Admits tensors and plain containers; any other class becomes an inert `_Opaque` (mmengine
    checkpoints keep ``meta`` objects such as message hubs and numpy scalars beside the weights)."""

    def find_class(self, module, name):
        if (module, name) in _ADMITTED or (module == "torch" and isinstance(getattr(torch, name, None), torch.dtype)):
            return super().find_class(module, name)
        if module == "builtins" and name in ("set", "frozenset", "slice", "complex"):
            return super().find_class(module, name)
        return type(f"{module}.{name}", (_Opaque,), {})


class _PlainDataPickle:
    """A ``pickle_module`` for ``torch.load`` whose unpickler is `_PlainDataUnpickler`."""

    Unpickler = _PlainDataUnpickler
    load = staticmethod(lambda f, **kw: _PlainDataUnpickler(f, **kw).load())


def load_plain_data(data: bytes) -> Any:
    """``torch.load`` of a checkpoint whose non-tensor objects ``weights_only=True`` refuses: they
    load as inert placeholders; nothing outside tensors and plain containers is imported or run."""
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=False, pickle_module=_PlainDataPickle)


def read_weights(weights: Union[PathLike, Sequence[PathLike]], *, progress: bool = True) -> Any:
    """`read_checkpoint` of a path or URL, or a list of them for multi-file releases."""
    if isinstance(weights, (list, tuple)):
        return [read_checkpoint(w, progress=progress) for w in weights]
    return read_checkpoint(weights, progress=progress)
