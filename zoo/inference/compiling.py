"""How zoo runs ``torch.compile``'d graphs (the fast path's and the PT2E int8 path's): inductor's
weight freezing (constant-folded, pre-packed weights), applied when a graph compiles, i.e. at the
first call of each input shape; and a recompile limit that keeps every compiled model compiled.
Dynamo keeps its compiled graphs per code object: every compiled model of one class (and each
dtype and shape) adds one to ``TSM.forward``'s, and past dynamo's default of 8 it silently runs
the rest eagerly."""
from __future__ import annotations

import contextlib
from typing import Iterator

__all__ = ["RECOMPILE_LIMIT", "compiled_calls"]

RECOMPILE_LIMIT = 256  # compiled graphs per model class in one process


@contextlib.contextmanager
def compiled_calls() -> Iterator[None]:
    """The settings a compiled graph is called under (weight freezing, `RECOMPILE_LIMIT`)."""
    import torch._dynamo.config as dynamo_config
    import torch._inductor.config as inductor_config

    with inductor_config.patch(freezing=True), dynamo_config.patch(recompile_limit=RECOMPILE_LIMIT):
        yield
