"""Feature extractors of clovaai `modules/feature_extraction.py`: VGG (CRNN), RCNN (GRCNN) and ResNet (FAN).

Each maps B x C x H x W to B x output_channel x h x w and keeps its layers under `ConvNet`, as in the released
checkpoints (EasyOCR's generation-2 models use the same VGG with output_channel 256).
"""
import torch
import torch.nn.functional as F
from torch import nn


class VGGFeatureExtractor(nn.Module):
    """CRNN's VGG: 32 x 100 input -> output_channel x 1 x 24."""

    def __init__(self, in_channels: int, output_channel: int = 512):
        super().__init__()
        c = [output_channel // 8, output_channel // 4, output_channel // 2, output_channel]
        self.ConvNet = nn.Sequential(
            nn.Conv2d(in_channels, c[0], 3, 1, 1), nn.ReLU(True),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(c[0], c[1], 3, 1, 1), nn.ReLU(True),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(c[1], c[2], 3, 1, 1), nn.ReLU(True),
            nn.Conv2d(c[2], c[2], 3, 1, 1), nn.ReLU(True),
            nn.MaxPool2d((2, 1), (2, 1)),
            nn.Conv2d(c[2], c[3], 3, 1, 1, bias=False), nn.BatchNorm2d(c[3]), nn.ReLU(True),
            nn.Conv2d(c[3], c[3], 3, 1, 1, bias=False), nn.BatchNorm2d(c[3]), nn.ReLU(True),
            nn.MaxPool2d((2, 1), (2, 1)),
            nn.Conv2d(c[3], c[3], 2, 1, 0), nn.ReLU(True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ConvNet(x)


class GRCLUnit(nn.Module):
    """One recurrent step of a gated recurrent convolution layer (Wang & Hu 2017)."""

    def __init__(self, channels: int):
        super().__init__()
        self.BN_gfu = nn.BatchNorm2d(channels)
        self.BN_grx = nn.BatchNorm2d(channels)
        self.BN_fu = nn.BatchNorm2d(channels)
        self.BN_rx = nn.BatchNorm2d(channels)
        self.BN_Gx = nn.BatchNorm2d(channels)

    def forward(self, wgf_u, wgr_x, wf_u, wr_x):
        gate = torch.sigmoid(self.BN_gfu(wgf_u) + self.BN_grx(wgr_x))
        return F.relu(self.BN_fu(wf_u) + self.BN_Gx(self.BN_rx(wr_x) * gate))


class GRCL(nn.Module):
    """Gated recurrent convolution layer; the feed-forward terms are computed once and reused every iteration."""

    def __init__(self, in_channels: int, out_channels: int, num_iteration: int = 5, kernel_size: int = 3, pad: int = 1):
        super().__init__()
        self.wgf_u = nn.Conv2d(in_channels, out_channels, 1, 1, 0, bias=False)
        self.wgr_x = nn.Conv2d(out_channels, out_channels, 1, 1, 0, bias=False)
        self.wf_u = nn.Conv2d(in_channels, out_channels, kernel_size, 1, pad, bias=False)
        self.wr_x = nn.Conv2d(out_channels, out_channels, kernel_size, 1, pad, bias=False)
        self.BN_x_init = nn.BatchNorm2d(out_channels)
        self.GRCL = nn.Sequential(*[GRCLUnit(out_channels) for _ in range(num_iteration)])

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        wgf_u = self.wgf_u(u)
        wf_u = self.wf_u(u)
        x = F.relu(self.BN_x_init(wf_u))
        for unit in self.GRCL:
            x = unit(wgf_u, self.wgr_x(x), wf_u, self.wr_x(x))
        return x


class RCNNFeatureExtractor(nn.Module):
    """GRCNN: 32 x 100 input -> output_channel x 1 x 26."""

    def __init__(self, in_channels: int, output_channel: int = 512):
        super().__init__()
        c = [output_channel // 8, output_channel // 4, output_channel // 2, output_channel]
        self.ConvNet = nn.Sequential(
            nn.Conv2d(in_channels, c[0], 3, 1, 1), nn.ReLU(True),
            nn.MaxPool2d(2, 2),
            GRCL(c[0], c[0]),
            nn.MaxPool2d(2, 2),
            GRCL(c[0], c[1]),
            nn.MaxPool2d(2, (2, 1), (0, 1)),
            GRCL(c[1], c[2]),
            nn.MaxPool2d(2, (2, 1), (0, 1)),
            nn.Conv2d(c[2], c[3], 2, 1, 0, bias=False), nn.BatchNorm2d(c[3]), nn.ReLU(True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ConvNet(x)


class BasicBlock(nn.Module):
    """ResNet basic block with bias-free 3x3 convolutions."""

    def __init__(self, inplanes: int, planes: int, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + residual)


class ResNet(nn.Module):
    """FAN's 45-layer ResNet: 32 x 100 input -> output_channel x 1 x 26 (blocks [1, 2, 5, 3])."""

    def __init__(self, in_channels: int, output_channel: int, layers: tuple[int, int, int, int] = (1, 2, 5, 3)):
        super().__init__()
        blocks = [output_channel // 4, output_channel // 2, output_channel, output_channel]
        self.inplanes = output_channel // 8
        self.conv0_1 = nn.Conv2d(in_channels, output_channel // 16, 3, 1, 1, bias=False)
        self.bn0_1 = nn.BatchNorm2d(output_channel // 16)
        self.conv0_2 = nn.Conv2d(output_channel // 16, self.inplanes, 3, 1, 1, bias=False)
        self.bn0_2 = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU(inplace=True)

        self.maxpool1 = nn.MaxPool2d(2, 2, 0)
        self.layer1 = self._make_layer(blocks[0], layers[0])
        self.conv1 = nn.Conv2d(blocks[0], blocks[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(blocks[0])

        self.maxpool2 = nn.MaxPool2d(2, 2, 0)
        self.layer2 = self._make_layer(blocks[1], layers[1])
        self.conv2 = nn.Conv2d(blocks[1], blocks[1], 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(blocks[1])

        self.maxpool3 = nn.MaxPool2d(2, (2, 1), (0, 1))
        self.layer3 = self._make_layer(blocks[2], layers[2])
        self.conv3 = nn.Conv2d(blocks[2], blocks[2], 3, 1, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(blocks[2])

        self.layer4 = self._make_layer(blocks[3], layers[3])
        self.conv4_1 = nn.Conv2d(blocks[3], blocks[3], 2, (2, 1), (0, 1), bias=False)
        self.bn4_1 = nn.BatchNorm2d(blocks[3])
        self.conv4_2 = nn.Conv2d(blocks[3], blocks[3], 2, 1, 0, bias=False)
        self.bn4_2 = nn.BatchNorm2d(blocks[3])

    def _make_layer(self, planes: int, num_blocks: int) -> nn.Sequential:
        downsample = None
        if self.inplanes != planes:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes, 1, 1, bias=False), nn.BatchNorm2d(planes))
        layers = [BasicBlock(self.inplanes, planes, downsample)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes) for _ in range(1, num_blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn0_1(self.conv0_1(x)))
        x = self.relu(self.bn0_2(self.conv0_2(x)))
        x = self.layer1(self.maxpool1(x))
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer2(self.maxpool2(x))
        x = self.relu(self.bn2(self.conv2(x)))
        x = self.layer3(self.maxpool3(x))
        x = self.relu(self.bn3(self.conv3(x)))
        x = self.layer4(x)
        x = self.relu(self.bn4_1(self.conv4_1(x)))
        return self.relu(self.bn4_2(self.conv4_2(x)))


class ResNetFeatureExtractor(nn.Module):
    """Wraps `ResNet` under the `ConvNet` name the checkpoints use."""

    def __init__(self, in_channels: int, output_channel: int = 512):
        super().__init__()
        self.ConvNet = ResNet(in_channels, output_channel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ConvNet(x)
