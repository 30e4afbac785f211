"""The PT2E quantizer of the ``"pt2e"`` int8 backend, and the graph passes run around it.

A module called more than once in one forward (one ``nn.ReLU`` after each of several branches) is
one "source partition" with several outputs to the quantizer, which then refuses the whole graph
("Input partition has more than one output node"): `name_each_call` makes each call its own.

Inductor's x86 quantizer knows aten's operators, not zoo's custom ops: it leaves a pass-through op
(`zoo.models.register_int8_passthrough`, such as TSM's temporal shift) in float between a
dequantize and a quantize, which costs three full passes over the activation, in float32, per
call. Here such an op is annotated to take a quantized input and give an output at the same scale
(`passthrough_quantizer`), then, after conversion, moved onto the int8 values
(`run_passthroughs_on_int8`): ``op(dequantize(q))`` becomes ``dequantize(op(q))`` (exact where the
zero point is 0, as after a ReLU: the zeros the op writes stay zeros), and the
``quantize(dequantize(.))`` pair left at one scale is dropped.

Imports torchao: load this module only when the backend is used.
"""
from __future__ import annotations

import torch
from torchao.quantization.pt2e.quantizer import (ComposableQuantizer, QuantizationAnnotation, Quantizer,
                                                 SharedQuantizationSpec)
from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer as x86

from ..models import int8_passthroughs

__all__ = ["name_each_call", "passthrough_quantizer", "run_passthroughs_on_int8"]

_ANNOTATION = "quantization_annotation"
_QUANTIZE = torch.ops.quantized_decomposed.quantize_per_tensor.default
_DEQUANTIZE = torch.ops.quantized_decomposed.dequantize_per_tensor.default


def name_each_call(graph: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """``graph`` (an exported program's module) with each call of a module named apart in the
    nodes' ``nn_module_stack``, by which the quantizer groups nodes into partitions: export keys a
    module's later calls ``name@1``, ``name@2``, ... but gives them all the module's name."""
    for node in graph.graph.nodes:
        stack = node.meta.get("nn_module_stack")
        if not stack:
            continue
        key = next(reversed(stack))
        name, module_type = stack[key]
        if "@" in key and "@" not in name:
            stack[key] = (name + key[key.rindex("@"):], module_type)
    return graph


class _PassthroughAnnotator(Quantizer):
    """Annotates each pass-through op: input quantized as an activation, output at its scale."""

    def __init__(self, config):
        super().__init__()
        self.config = config

    def annotate(self, model: torch.fx.GraphModule) -> torch.fx.GraphModule:
        ops = int8_passthroughs()
        for node in model.graph.nodes:
            if node.op != "call_function" or node.target not in ops or _ANNOTATION in node.meta:
                continue
            source = node.args[0]
            node.meta[_ANNOTATION] = QuantizationAnnotation(
                input_qspec_map={source: self.config.input_activation},
                output_qspec=SharedQuantizationSpec((source, node)), _annotated=True)
        return model

    def validate(self, model: torch.fx.GraphModule) -> None:
        pass


def passthrough_quantizer() -> Quantizer:
    """Inductor's x86 quantizer (default config), then the pass-through ops annotated."""
    config = x86.get_default_x86_inductor_quantization_config()
    return ComposableQuantizer([x86.X86InductorQuantizer().set_global(config), _PassthroughAnnotator(config)])


def run_passthroughs_on_int8(graph: torch.fx.GraphModule) -> int:
    """Rewrite ``graph`` (converted by ``convert_pt2e`` after `passthrough_quantizer`) in place so
    each pass-through op whose input is dequantized at zero point 0 runs on the quantized values;
    returns how many do."""
    ops, moved = int8_passthroughs(), 0
    for node in list(graph.graph.nodes):
        source = node.args[0] if node.op == "call_function" and node.target in ops else None
        if not (isinstance(source, torch.fx.Node) and source.target == _DEQUANTIZE and source.args[2] == 0):
            continue
        quantized, qparams = source.args[0], tuple(source.args[1:])
        with graph.graph.inserting_before(node):
            on_int8 = graph.graph.call_function(node.target, (quantized, *node.args[1:]), dict(node.kwargs))
            dequantized = graph.graph.call_function(_DEQUANTIZE, (on_int8, *qparams), dict(source.kwargs))
        node.replace_all_uses_with(dequantized)
        graph.graph.erase_node(node)
        for user in list(dequantized.users):  # quantize(dequantize(q)) at the same scale is q
            if user.target == _QUANTIZE and tuple(user.args[1:]) == qparams:
                user.replace_all_uses_with(on_int8)
        moved += 1
    graph.graph.eliminate_dead_code()
    graph.recompile()
    return moved
