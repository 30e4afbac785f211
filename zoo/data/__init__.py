"""The shared data pipeline: decoders, samplers, transforms, datasets, SynthMotion.

Everything is driven by a model's :class:`~zoo.models.ModelInfo`; nothing branches on a
model name.

Contract with the evaluation harness and the training loop::

    ds = zoo.data.build_dataset(spec, info, split="val", train=False, views=None,
                                on_error="error", root=None)
    item = ds[i]   # {"video": float [V, 3, T, H, W], "label": int, "index": i, "path": str}
    loader = DataLoader(ds, batch_size=..., num_workers=..., collate_fn=zoo.data.collate)
    batch = next(iter(loader))  # {"video": [B, V, 3, T, H, W] | None, "label": [B], "index": [B],
                                #  "path": [...], "errors": [{"index", "path", "label", "error"}]}
    ds.class_names, ds.label_map_hash, len(ds)

- ``spec``: a Kinetics-style CSV (``path,label[,start,end]``), an SSv2 annotations JSON (with
  its labels JSON as ``label_map=`` or next to it), a TSN list (``frame_dir num_frames label``),
  a class-folder tree, or a SynthMotion directory (``split`` picks ``train``/``val``).
- ``views=(clips, crops)`` defaults to ``info.test_views``; ``train=True`` yields one view.
  ``V = clips * crops``, ordered clip-major then crop. Frames are normalised with
  ``info.mean``/``info.std`` after scaling to [0, 1].
- ``on_error="error"`` raises :class:`DataError` (path + reason) on an unreadable item;
  ``"skip"`` returns ``{"video": None, "label", "index", "path", "error": reason}`` and
  :func:`collate` reports it under ``"errors"``. No other video is ever substituted.

See :mod:`zoo.data.samplers` and :mod:`zoo.data.transforms` for the exact protocols, and
:mod:`zoo.data.synth` for the SynthMotion benchmark.
"""
from .._lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(("DataError", "VideoDataset", "build_dataset", "collate", "MIN_FRAMES", "too_short"), ".datasets"),
    "Record": ".records",
    "resolve_spec": ".lists",
    **dict.fromkeys(("DecodeError", "FrameFolderDecoder", "PyAVDecoder", "VideoMeta", "open_decoder"), ".decoders"),
    **dict.fromkeys(("label_map_hash", "load_label_map", "save_label_map"), ".labels"),
    **dict.fromkeys(("DenseSampler", "SegmentSampler", "build_sampler"), ".samplers"),
    "ClipTransform": ".transforms",
    "check_dataset": ".check",
}
__all__ = [*_EXPORTS, "synth"]  # `zoo.data.synth` is a submodule: `from zoo.data import synth`
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
