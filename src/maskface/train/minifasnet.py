"""MiniFASNet (Minivision's Silent-Face-Anti-Spoofing) rebuilt from its description, for loading
the published state dicts and exporting them to ONNX (``scripts/export_minifasnet.py``).

Written from ``shared/models/minifasnet/README.md`` (layer names match the state-dict keys);
no reference code is copied. PyTorch only: inference runs the exported ONNX graph.
"""

from __future__ import annotations

import torch
from torch import nn

#: hidden widths of the residual DW units per stage (the pruned "keep" lists)
KEEP = {
    "MiniFASNetV2": {"conv_3": (13, 13, 13, 13), "conv_4": (231, 52, 26, 77, 26, 26),
                     "conv_5": (26, 26)},
    "MiniFASNetV1SE": {"conv_3": (13, 26, 13, 52), "conv_4": (154, 52, 26, 52, 26, 26),
                       "conv_5": (26, 26)},
}


class ConvBlock(nn.Module):
    """conv (no bias) → BatchNorm → per-channel PReLU."""

    def __init__(self, cin, cout, k=1, s=1, p=0, groups=1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, s, p, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.prelu = nn.PReLU(cout)

    def forward(self, x):
        return self.prelu(self.bn(self.conv(x)))


class LinearBlock(nn.Module):
    """conv (no bias) → BatchNorm, no activation."""

    def __init__(self, cin, cout, k=1, s=1, p=0, groups=1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, s, p, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return self.bn(self.conv(x))


class SEModule(nn.Module):
    def __init__(self, c, reduction=4):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(c, c // reduction, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c // reduction)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(c // reduction, c, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x):
        w = self.sigmoid(self.bn2(self.fc2(self.relu(self.bn1(self.fc1(self.avg_pool(x)))))))
        return x * w


class DepthWise(nn.Module):
    """1x1 expand → 3x3 depthwise (stride s) → 1x1 project; identity shortcut if ``residual``."""

    def __init__(self, cin, cout, hidden, s=1, residual=False, se=False):
        super().__init__()
        self.conv = ConvBlock(cin, hidden, 1)
        self.conv_dw = ConvBlock(hidden, hidden, 3, s, 1, groups=hidden)
        self.project = LinearBlock(hidden, cout, 1)
        self.residual = residual
        self.se_module = SEModule(cout) if se else None

    def forward(self, x):
        y = self.project(self.conv_dw(self.conv(x)))
        if self.se_module is not None:
            y = self.se_module(y)
        return x + y if self.residual else y


class Residual(nn.Module):
    def __init__(self, c, hiddens, se=False):
        super().__init__()
        # Only the stage's last unit carries the SE module (V1SE).
        self.model = nn.Sequential(*[
            DepthWise(c, c, h, 1, residual=True, se=se and i == len(hiddens) - 1)
            for i, h in enumerate(hiddens)])

    def forward(self, x):
        return self.model(x)


class MiniFASNet(nn.Module):
    """MiniFASNetV2 (``se=False``) or MiniFASNetV1SE (``se=True``) for 80x80 inputs; 3 logits."""

    def __init__(self, arch: str = "MiniFASNetV2", embedding: int = 128, classes: int = 3):
        super().__init__()
        keep, se = KEEP[arch], arch.endswith("SE")
        self.conv1 = ConvBlock(3, 32, 3, 2, 1)
        self.conv2_dw = ConvBlock(32, 32, 3, 1, 1, groups=32)
        self.conv_23 = DepthWise(32, 64, 103, 2)
        self.conv_3 = Residual(64, keep["conv_3"], se)
        self.conv_34 = DepthWise(64, 128, 231, 2)
        self.conv_4 = Residual(128, keep["conv_4"], se)
        self.conv_45 = DepthWise(128, 128, 308, 2)
        self.conv_5 = Residual(128, keep["conv_5"], se)
        self.conv_6_sep = ConvBlock(128, 512, 1)
        # 5x5 for 80x80 inputs: ((80 + 15) // 16); the reference default of 7x7 is wrong here.
        self.conv_6_dw = LinearBlock(512, 512, 5, groups=512)
        self.linear = nn.Linear(512, embedding, bias=False)
        self.bn = nn.BatchNorm1d(embedding)
        self.drop = nn.Dropout(0.0)
        self.prob = nn.Linear(embedding, classes, bias=False)

    def forward(self, x):
        x = self.conv_6_dw(self.conv_6_sep(self.conv_5(self.conv_45(self.conv_4(
            self.conv_34(self.conv_3(self.conv_23(self.conv2_dw(self.conv1(x))))))))))
        return self.prob(self.drop(self.bn(self.linear(torch.flatten(x, 1)))))


def load_minifasnet(path, arch: str) -> MiniFASNet:
    """Build ``arch`` and load a published state dict (keys prefixed ``module.``), strictly."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
    model = MiniFASNet(arch)
    model.load_state_dict(state, strict=True)
    return model.eval()


class LivenessPair(nn.Module):
    """Both models in one graph: each on its own crop, softmax, mean → (N, 3) probabilities
    (class 1 = live), so inference is one onnxruntime call per batch of faces."""

    def __init__(self, v2: MiniFASNet, v1se: MiniFASNet):
        super().__init__()
        self.v2, self.v1se = v2, v1se

    def forward(self, crop_2_7, crop_4_0):
        return (torch.softmax(self.v2(crop_2_7), 1) + torch.softmax(self.v1se(crop_4_0), 1)) / 2


def export_onnx(pair: LivenessPair, path, opset: int = 13) -> float:
    """Export ``pair`` as one ONNX graph (inputs ``crop_2_7``, ``crop_4_0``; output ``probs``;
    dynamic batch), every PRelu rewritten as ``Max(x, slope*x)`` (same values, faster on
    onnxruntime); returns the max |onnxruntime - torch| difference on random crops."""
    import numpy as np
    import onnx
    import onnxruntime as ort

    from maskface.train.recog_model import fast_prelu

    pair = pair.eval()
    gen = torch.Generator().manual_seed(0)

    def crops(n):
        return (torch.rand(n, 3, 80, 80, generator=gen) * 255,
                torch.rand(n, 3, 80, 80, generator=gen) * 255)

    a, b = crops(4)
    torch.onnx.export(pair, (a, b), str(path), dynamo=False, opset_version=opset,
                      input_names=["crop_2_7", "crop_4_0"], output_names=["probs"],
                      dynamic_axes={"crop_2_7": {0: "n"}, "crop_4_0": {0: "n"}, "probs": {0: "n"}})
    onnx.save(fast_prelu(onnx.load(str(path))), str(path))
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    a, b = crops(7)
    with torch.no_grad():
        ref = pair(a, b).numpy()
    got = sess.run(None, {"crop_2_7": a.numpy(), "crop_4_0": b.numpy()})[0]
    return float(np.abs(ref - got).max())
