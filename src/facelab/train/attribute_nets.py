"""The small CNN facelab trains for attributes (torch; needs the ``train`` extra).

One backbone, one head per task: classification heads give logits, the age
head gives years.  Built for CPUs: 4 VGG-style stages (3x3 conv, BatchNorm,
ReLU) on small grey or colour chips, global average pooling, dropout.
:class:`ExportWrapper` is what goes into the ONNX file: it takes float
``[0, 1]`` chips, normalises them, averages the prediction with the one of the
mirrored chip, and returns softmax probabilities (and age in years).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

AGE_MEAN, AGE_SCALE = 35.0, 25.0  # the age head predicts (age - AGE_MEAN) / AGE_SCALE


def _conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class AttributeNet(nn.Module):
    """``tasks`` maps a task name to its number of classes (0 = regression, i.e. age)."""

    def __init__(
        self,
        tasks: Mapping[str, int],
        channels: int = 1,
        widths: Sequence[int] = (32, 64, 128, 256),
        depths: Sequence[int] = (1, 2, 2, 2),
        dropout: float = 0.4,
    ):
        super().__init__()
        self.tasks = dict(tasks)
        layers: list[nn.Module] = []
        cin = channels
        for i, (w, d) in enumerate(zip(widths, depths)):
            for _ in range(d):
                layers.append(_conv(cin, w))
                cin = w
            if i < len(widths) - 1:
                layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout(dropout)
        self.heads = nn.ModuleDict({t: nn.Linear(cin, max(1, n)) for t, n in self.tasks.items()})

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``x``: normalised chips (N, C, H, W).  Returns logits per task (age: normalised years, shape (N,))."""
        z = self.drop(torch.flatten(self.pool(self.features(x)), 1))
        return {t: (h(z).squeeze(1) if self.tasks[t] == 0 else h(z)) for t, h in self.heads.items()}


class HeadNet(nn.Module):
    """Heads on a fixed face embedding (e.g. dlib's 128-d): one hidden layer shared by the tasks."""

    def __init__(self, tasks: Mapping[str, int], dim: int = 128, hidden: int = 256, dropout: float = 0.3):
        super().__init__()
        self.tasks = dict(tasks)
        self.dim = dim
        self.body = nn.Sequential(nn.Linear(dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True), nn.Dropout(dropout))
        self.heads = nn.ModuleDict({t: nn.Linear(hidden, max(1, n)) for t, n in self.tasks.items()})

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        z = self.body(x * 10.0)  # dlib embeddings have entries of about +-0.1
        return {t: (h(z).squeeze(1) if self.tasks[t] == 0 else h(z)) for t, h in self.heads.items()}


def normalize(x: torch.Tensor) -> torch.Tensor:
    """``[0, 1]`` pixels -> the network's input range."""
    return (x - 0.5) / 0.25


class ExportWrapper(nn.Module):
    """What the ONNX file computes: ``[0,1]`` chips (or embeddings) in, probabilities (and age in years) out.

    Chip models average with the mirrored chip (``flip``).
    """

    def __init__(self, net: AttributeNet | HeadNet, flip: bool = True):
        super().__init__()
        self.chips = isinstance(net, AttributeNet)
        self.net, self.flip = net, flip and self.chips
        self.order = list(net.tasks)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if self.chips:
            x = normalize(x)
        if self.flip:
            x = torch.cat([x, torch.flip(x, dims=[3])], 0)
        out = self.net(x)
        res = []
        for t in self.order:
            y = out[t]
            y = y * AGE_SCALE + AGE_MEAN if self.net.tasks[t] == 0 else torch.softmax(y, dim=1)
            if self.flip:
                n = y.shape[0] // 2
                y = (y[:n] + y[n:]) / 2
            res.append(y)
        return tuple(res)
