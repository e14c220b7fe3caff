"""Task architectures: the models the built-in tasks train and compress.

- ``digits-cnn``: a small 3-conv CNN for scikit-learn's 8x8 digits (the default task).
- ``digits-resdw``: MobileNet-style inverted residual blocks with depthwise convs and
  BatchNorm on the same digits, for structured pruning and latency work.
- ``lenet-300-100``: exactly 784-300-100-10 (Han et al. 2015, Deep Compression).
- ``lenet-5``: the Caffe LeNet-5 of Han et al.: conv 20@5x5, pool, conv 50@5x5, pool,
  fc 500, fc 10 (431,080 parameters; like Caffe's, no activation after the convs).
- ``mnist1d-cnn``: a 3-conv 1-D CNN for MNIST-1D (Greydanus 2020) sequences of length 40.
"""

from __future__ import annotations

import torch
from torch import nn

from autocompress.models._registry import ModelSpec, register_model


class DigitsCNN(nn.Module):
    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.conv3 = nn.Conv2d(32, 64, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(64 * 2 * 2, 64)
        self.fc2 = nn.Linear(64, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv1(x))
        x = self.pool(torch.relu(self.conv2(x)))  # 8x8 -> 4x4
        x = self.pool(torch.relu(self.conv3(x)))  # 4x4 -> 2x2
        return self.fc2(torch.relu(self.fc1(torch.flatten(x, 1))))


class InvertedResidual(nn.Module):
    """1x1 expand -> depthwise 3x3 (stride) -> 1x1 project; a skip when shapes allow."""

    def __init__(self, c_in: int, c_out: int, expand: int = 4, stride: int = 1) -> None:
        super().__init__()
        h = c_in * expand
        self.expand = nn.Conv2d(c_in, h, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(h)
        self.dw = nn.Conv2d(h, h, 3, stride=stride, padding=1, groups=h, bias=False)
        self.bn2 = nn.BatchNorm2d(h)
        self.project = nn.Conv2d(h, c_out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(c_out)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.expand(x)))
        y = torch.relu(self.bn2(self.dw(y)))
        y = self.bn3(self.project(y))
        return x + y if self.residual else y


class DigitsResDW(nn.Module):
    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 16, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        self.block1 = InvertedResidual(16, 16)
        self.block2 = InvertedResidual(16, 32, stride=2)  # 8x8 -> 4x4
        self.block3 = InvertedResidual(32, 32)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(32, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn(self.stem(x)))
        x = self.block3(self.block2(self.block1(x)))
        return self.head(torch.flatten(self.pool(x), 1))


class LeNet300(nn.Module):
    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.fc1 = nn.Linear(784, 300)
        self.fc2 = nn.Linear(300, 100)
        self.fc3 = nn.Linear(100, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(x, 1)
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


class LeNet5(nn.Module):
    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 20, 5)  # 28 -> 24, pool -> 12
        self.conv2 = nn.Conv2d(20, 50, 5)  # 12 -> 8, pool -> 4
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(50 * 4 * 4, 500)
        self.fc2 = nn.Linear(500, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.conv2(self.pool(self.conv1(x))))
        return self.fc2(torch.relu(self.fc1(torch.flatten(x, 1))))


class MNIST1DCNN(nn.Module):
    def __init__(self, channels: int = 32, classes: int = 10) -> None:
        super().__init__()
        c = channels
        self.conv1 = nn.Conv1d(1, c, 5, stride=2, padding=1)  # 40 -> 19
        self.conv2 = nn.Conv1d(c, c, 3, stride=2, padding=1)  # 19 -> 10
        self.conv3 = nn.Conv1d(c, c, 3, stride=2, padding=1)  # 10 -> 5
        self.fc = nn.Linear(c * 5, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv1(x))
        x = torch.relu(self.conv2(x))
        x = torch.relu(self.conv3(x))
        return self.fc(torch.flatten(x, 1))


register_model("digits-cnn", ModelSpec(DigitsCNN, (1, 8, 8), 10))
register_model("digits-resdw", ModelSpec(DigitsResDW, (1, 8, 8), 10))
register_model("lenet-300-100", ModelSpec(LeNet300, (1, 28, 28), 10))
register_model("lenet-5", ModelSpec(LeNet5, (1, 28, 28), 10))
register_model("mnist1d-cnn", ModelSpec(MNIST1DCNN, (1, 40), 10))
