"""What graph tools need to know of zoo's custom ops, registered by a family file beside its op:

- export forms: the plain-aten functions a ``torch.export`` program is decomposed into before ONNX
  conversion (ONNX has no function for a custom op);
- int8 pass-throughs: ops that only move their first input's values and fill the rest with zeros
  (such as TSM's temporal shift), which an int8 graph can run on the quantized tensor itself."""
from __future__ import annotations

from typing import Callable, Dict, FrozenSet, Set

__all__ = ["register_export_form", "export_forms", "register_int8_passthrough", "int8_passthroughs"]

_FORMS: Dict[object, Callable] = {}
_PASSTHROUGHS: Set[object] = set()


def register_export_form(op, fn: Callable) -> None:
    """Decompose ``op`` (a ``torch.ops`` overload) into ``fn`` (same signature, aten ops only)."""
    _FORMS[op] = fn


def export_forms() -> Dict[object, Callable]:
    """``{op overload: function}`` for ``ExportedProgram.run_decompositions``."""
    return dict(_FORMS)


def register_int8_passthrough(op) -> None:
    """Declare that ``op`` (a ``torch.ops`` overload) only copies values of its first argument to
    other places and writes zeros elsewhere: on a quantized tensor of zero point 0 it gives the
    quantized result exactly, so an int8 graph may run it on the int8 values, at their scale."""
    _PASSTHROUGHS.add(op)


def int8_passthroughs() -> FrozenSet[object]:
    """The ops declared by `register_int8_passthrough`."""
    return frozenset(_PASSTHROUGHS)
