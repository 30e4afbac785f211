"""Export forms of zoo's custom ops: the plain-aten functions a ``torch.export`` program is
decomposed into before ONNX conversion (ONNX has no function for a custom op). A family file
registers its op's form beside the op."""
from __future__ import annotations

from typing import Callable, Dict

__all__ = ["register_export_form", "export_forms"]

_FORMS: Dict[object, Callable] = {}


def register_export_form(op, fn: Callable) -> None:
    """Decompose ``op`` (a ``torch.ops`` overload) into ``fn`` (same signature, aten ops only)."""
    _FORMS[op] = fn


def export_forms() -> Dict[object, Callable]:
    """``{op overload: function}`` for ``ExportedProgram.run_decompositions``."""
    return dict(_FORMS)
