"""ResNet-20 for 32x32 images: the teacher of the authors' training chain.

He et al., "Deep Residual Learning for Image Recognition" (2016), section 4.2: the CIFAR
variant with 6n + 2 layers, here n = 3 (docs/METHOD.md section 6):

    conv3x3(C -> 16), BN, ReLU
    stage 1: 3 basic blocks,  16 channels, 32x32
    stage 2: 3 basic blocks,  32 channels, 16x16 (first block strides by 2)
    stage 3: 3 basic blocks,  64 channels,  8x8  (first block strides by 2)
    global average pool, Linear(64 -> num_classes)

A basic block is ``relu(BN(conv3x3(relu(BN(conv3x3(x))))) + shortcut(x))``. Where the
shape changes, the shortcut is the parameter-free "option A" of the paper: keep every
second pixel in both directions and pad the channels with zeros, half of the new channels
before the old ones and half after (16 -> 8 zeros + 16 + 8 zeros). Convolutions have no
bias. Submodule names give the state-dict keys of the authors' checkpoints
(``conv1.weight, bn1.*, layer{1,2,3}.{0,1,2}.{conv1,bn1,conv2,bn2}.*, linear.*``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

STAGE_WIDTHS = (16, 32, 64)
BLOCKS_PER_STAGE = 3


class SubsamplePadShortcut(nn.Module):
    """Option-A shortcut: stride-2 subsampling plus zero channels on both sides."""

    def __init__(self, in_planes: int, planes: int):
        super().__init__()
        extra = planes - in_planes
        self.before = extra // 2
        self.after = extra - self.before

    def forward(self, x):
        # F.pad pads the last dimensions first: (W, W, H, H, C, C).
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.before, self.after))


class BasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        if stride != 1 or in_planes != planes:
            if stride != 2:
                raise ValueError("the option-A shortcut subsamples by exactly 2")
            self.shortcut = SubsamplePadShortcut(in_planes, planes)
        else:
            self.shortcut = nn.Identity()

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet20(nn.Module):
    """The CIFAR ResNet-20 (0.27 M parameters for 3 input channels, 10 classes)."""

    arch = "resnet20"

    def __init__(self, in_channels: int = 3, num_classes: int = 10):
        super().__init__()
        if in_channels < 1 or num_classes < 1:
            raise ValueError("ResNet-20 needs at least one input channel and one class")
        self.in_channels = int(in_channels)
        self.num_classes = int(num_classes)
        w1, w2, w3 = STAGE_WIDTHS
        self.conv1 = nn.Conv2d(in_channels, w1, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(w1)
        self.layer1 = self._stage(w1, w1, stride=1)
        self.layer2 = self._stage(w1, w2, stride=2)
        self.layer3 = self._stage(w2, w3, stride=2)
        self.linear = nn.Linear(w3, num_classes)
        self.reset_parameters()

    @staticmethod
    def _stage(in_planes: int, planes: int, stride: int) -> nn.Sequential:
        blocks = [BasicBlock(in_planes, planes, stride)]
        blocks += [BasicBlock(planes, planes, 1) for _ in range(BLOCKS_PER_STAGE - 1)]
        return nn.Sequential(*blocks)

    def reset_parameters(self) -> None:
        """He (Kaiming normal, fan-in) initialisation of convolutions and the classifier,
        as in the original ResNet; BatchNorm starts at the identity."""
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)
            if isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, x):
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected images of shape (B, {self.in_channels}, H, W), "
                             f"got {tuple(x.shape)}")
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = out.mean(dim=(2, 3))  # global average pool
        return self.linear(out)


def build_resnet20(in_channels: int = 3, num_classes: int = 10) -> ResNet20:
    """The CIFAR ResNet-20 teacher (docs/METHOD.md section 6) for ``in_channels``-channel
    images and ``num_classes`` classes."""
    return ResNet20(in_channels=in_channels, num_classes=num_classes)
