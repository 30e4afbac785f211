"""`VideoModel`: what every model zoo builds carries, and the hooks the rest of zoo calls.

Set by the builder (`zoo.build`), once, and only there; read by the data pipeline, the harness,
the exporters and the command line:

- ``info``: the `ModelInfo` of the input protocol the model was built for (the release's, the
  clip length and crop it was asked for, its number of classes);
- ``categories``: the class names of its classifier (empty when the weights do not name them);
- ``weights_record``: the released weights loaded (a `Weights` record) or None, and
  ``weights_tag``, their ``model.tag``;
- ``build_args``: the constructor options it was built with (a zoo checkpoint records them);
- ``load_report``: the `LoadReport` of the checkpoint loaded, or None.

Each family implements ``num_classes``, ``get_classifier``, ``reset_classifier`` (or sets ``fc_std``
for a single linear ``fc``: see `VideoModel.linear_classifier`), ``forward_features`` and ``forward_head``. Hooks with defaults: ``networks()`` (the separately
trained networks of an ensemble, such as PAN Full's RGB and PA networks; none for one network),
``online`` and ``stream()`` (a model that predicts frame by frame, such as online TSM).
"""
from __future__ import annotations

from types import MappingProxyType
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

import torch
import torch.nn as nn

from .._errors import UsageError
from ._checks import check_input

__all__ = ["VideoModel"]


class VideoModel(nn.Module):
    """The contract of a built model (see the module docstring)."""

    num_classes: int
    categories: Tuple[str, ...] = ()
    weights_record = None  # a `Weights` record, or None
    load_report = None  # a `LoadReport`, or None
    build_args: Mapping[str, Any] = MappingProxyType({})  # set by the builder
    online: bool = False  # predicts frame by frame through `stream()`

    @property
    def weights_tag(self) -> Optional[str]:
        """``model.tag`` of the released weights loaded, or None."""
        return self.weights_record.name if self.weights_record is not None else None

    # a family whose classifier is one ``fc = nn.Linear(num_features, num_classes)`` sets its initialisation's
    # std here and builds it with `linear_classifier`; the two methods below then serve it
    fc_std: Optional[float] = None

    def linear_classifier(self, num_classes: int) -> nn.Linear:
        """A new ``nn.Linear(self.num_features, num_classes)``, weights N(0, ``fc_std``), bias 0."""
        fc = nn.Linear(self.num_features, num_classes)
        nn.init.normal_(fc.weight, 0, self.fc_std)
        nn.init.zeros_(fc.bias)
        return fc

    def get_classifier(self) -> Union[nn.Module, List[nn.Module]]:
        if self.fc_std is None:
            raise NotImplementedError
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        if self.fc_std is None:
            raise NotImplementedError
        self.num_classes = num_classes
        self.fc = self.linear_classifier(num_classes)

    # the frame-level families (TSN/TSM, TAda2D, TEA, STM, TCPNet) run their 2D trunk over every frame
    @staticmethod
    def frames_to_batch(x: torch.Tensor) -> torch.Tensor:
        """``[B, C, T, H, W]`` -> ``[B*T, C, H, W]`` (frame-major within each clip)."""
        b, c, t, h, w = x.shape
        return x.transpose(1, 2).reshape(b * t, c, h, w)

    @staticmethod
    def batch_to_clips(x: torch.Tensor, frames: int) -> torch.Tensor:
        """``[B*T, ...]`` -> ``[B, T, ...]``: a batch of frames (as `frames_to_batch` makes it) regrouped
        by clip, for the temporal modules plugged into a frame-level trunk."""
        return x.reshape(x.shape[0] // frames, frames, *x.shape[1:])

    def clip_frames(self, x: torch.Tensor) -> torch.Tensor:
        """`frames_to_batch` of a clip checked first (`check_input`: ``[B, C, num_frames, H, W]``)."""
        check_input(x, num_frames=self.num_frames, model=type(self).__name__)
        return self.frames_to_batch(x)

    def forward_features(self, x: torch.Tensor):
        raise NotImplementedError

    def forward_head(self, features, pre_logits: bool = False) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def networks(self) -> Dict[str, nn.Module]:
        """The separately trained networks of an ensemble, by name (PAN Full: ``rgb``, ``pa``); empty
        for a single network. Fine-tuning freezes and partial-BN applies per network."""
        return {}

    def stream(self):
        """A per-frame predictor of an online model (see ``online``)."""
        raise UsageError(f"{type(self).__name__} has no online form: it classifies whole clips")

    def stream_step(self, batch: int, height: int, width: int) -> Tuple[nn.Module, Dict[str, torch.Tensor]]:
        """One frame of an online model with its state as explicit tensors, for export: a module
        ``step(frame [B, 3, H, W], *state) -> (logits, *next_state)`` and the state of a new stream
        (name -> tensor, in the step's order)."""
        raise UsageError(f"{type(self).__name__} has no stream step to export: it classifies whole clips")
