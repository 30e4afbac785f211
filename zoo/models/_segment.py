"""`SegmentConsensus`: TSN's shape of network, shared by the frame-level families (TSN/TSM, TEA, STM):
a 2D trunk (``backbone``) run over each of a clip's ``num_segments`` frames, each frame's map pooled,
then dropout, a linear classifier and the average of the frames' logits (TSN's average consensus).

    [B, 3, T, H, W] -> [B*T, 3, H, W] -> backbone -> GAP -> [B, T, D] -> dropout -> fc -> mean over T

A family sets ``backbone``, ``num_segments``, ``dropout`` and ``fc`` (`VideoModel.linear_classifier`,
TSN's initialisation) and plugs its temporal modules into the trunk.
"""
from __future__ import annotations

import torch

from ._contract import VideoModel

__all__ = ["SegmentConsensus"]


class SegmentConsensus(VideoModel):
    """See the module docstring."""

    num_segments: int
    fc_std = 0.001  # the official TSN's new_fc

    @property
    def num_frames(self) -> int:
        """Input frames the model is built for (one per segment)."""
        return self.num_segments

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 3, T, H, W]`` -> per-frame pooled features ``[B, T, D]``."""
        x = self.backbone(self.clip_frames(x)).mean((2, 3))
        return x.view(-1, self.num_segments, x.shape[1])

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Per-frame features ``[B, T, D]`` -> clip logits ``[B, K]`` (average consensus)."""
        if pre_logits:
            return features.mean(1)
        return self.fc(self.dropout(features)).mean(1)
