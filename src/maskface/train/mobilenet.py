"""MobileNetV2 in plain PyTorch, laid out like torchvision's so its ImageNet weights load strictly.

torchvision is not installable here (its wheels pull the CUDA build of torch), so the network is
rebuilt module by module with torchvision's names: ``features.N.conv.M...`` and
``classifier.1``. The ImageNet state dict from the model registry then loads with
``strict=True``, which proves the architecture matches.
"""

from __future__ import annotations

import torch
from torch import nn

#: ImageNet normalisation of torchvision's weights (RGB, 0..1 input)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# (expansion t, output channels c, repeats n, first stride s), as in the MobileNetV2 paper.
_SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
             (6, 160, 3, 2), (6, 320, 1, 1))


class ConvBNReLU(nn.Sequential):
    """Conv → BatchNorm → ReLU6 (torchvision's ``Conv2dNormActivation``: indices 0, 1, 2)."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1):
        super().__init__(
            nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU6(inplace=True),
        )


class InvertedResidual(nn.Module):
    """Expand (1x1) → depthwise (3x3) → project (1x1, linear), with a skip when shapes match."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int):
        super().__init__()
        hidden = cin * expand
        self.use_res_connect = stride == 1 and cin == cout
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(ConvBNReLU(cin, hidden, kernel=1))
        layers += [
            ConvBNReLU(hidden, hidden, stride=stride, groups=hidden),
            nn.Conv2d(hidden, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    """MobileNetV2 (width 1.0); input RGB normalised with ImageNet mean/std."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.2):
        super().__init__()
        cin = 32
        features: list[nn.Module] = [ConvBNReLU(3, cin, stride=2)]
        for t, c, n, s in _SETTINGS:
            for i in range(n):
                features.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        features.append(ConvBNReLU(cin, 1280, kernel=1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(1280, num_classes))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = nn.functional.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.classifier(x)


def load_imagenet(model: MobileNetV2) -> MobileNetV2:
    """Load the registry's ImageNet weights (digest-checked) into a 1000-class model, strictly."""
    from maskface.models import model_path

    state = torch.load(model_path("mobilenet_v2_imagenet"), map_location="cpu",
                       weights_only=True)
    model.load_state_dict(state, strict=True)
    return model


def mobilenet_v2(num_classes: int, pretrained: bool = True, dropout: float = 0.2
                 ) -> MobileNetV2:
    """MobileNetV2 with ImageNet features and a fresh ``num_classes`` head."""
    model = MobileNetV2(1000, dropout)
    if pretrained:
        load_imagenet(model)
    head = nn.Linear(1280, num_classes)
    nn.init.normal_(head.weight, 0, 0.01)
    nn.init.zeros_(head.bias)
    model.classifier[1] = head
    return model


def bgr_to_input(bgr: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """BGR 0..255 → RGB with ImageNet statistics (``mean``/``std`` given in BGR, x255)."""
    return torch.flip((bgr - mean) / std, dims=[1])


class DeployModel(nn.Module):
    """What ships as ONNX: BGR 0..255 ``(N, 3, S, S)`` in, softmax probabilities out.

    Channel order and normalisation live inside the graph, so inference code only resizes
    crops and can never feed the network differently from training.
    """

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net
        # BGR input: reverse the RGB statistics; scale 1/255 folded into std.
        mean = torch.tensor(IMAGENET_MEAN[::-1]).view(1, 3, 1, 1) * 255.0
        std = torch.tensor(IMAGENET_STD[::-1]).view(1, 3, 1, 1) * 255.0
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)

    def normalize(self, bgr: torch.Tensor) -> torch.Tensor:
        """BGR 0..255 → RGB with ImageNet statistics (the network's training input)."""
        return bgr_to_input(bgr, self.mean, self.std)

    def logits(self, bgr: torch.Tensor) -> torch.Tensor:
        return self.net(self.normalize(bgr))

    def forward(self, bgr: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.logits(bgr), dim=1)


def mobilenet_from_classifier(path, num_classes: int, dropout: float = 0.2) -> MobileNetV2:
    """MobileNetV2 holding the weights of a shipped maskface classifier (its ONNX file).

    The export folded each BatchNorm into its convolution, so a convolution gets the folded
    weight and its BatchNorm becomes the identity plus the folded bias (mean 0, variance
    ``1 - eps``, scale 1): in eval mode the network computes what the file computes. The head
    is kept when ``num_classes`` matches the file's, else replaced by a fresh one."""
    import onnx
    from onnx import numpy_helper

    proto = onnx.load(str(path))
    init = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    convs = [n for n in proto.graph.node if n.op_type == "Conv"]
    gemms = [n for n in proto.graph.node if n.op_type == "Gemm"]
    model = MobileNetV2(1000, dropout)
    pairs = []  # (conv, its BatchNorm) in network order
    mods = list(model.features.modules())
    for i, m in enumerate(mods):
        if isinstance(m, nn.Conv2d):
            bn = next(b for b in mods[i + 1:] if isinstance(b, nn.BatchNorm2d))
            pairs.append((m, bn))
    if len(convs) != len(pairs) or len(gemms) != 1:
        raise ValueError(f"{path}: not a MobileNetV2 maskface classifier "
                         f"({len(convs)} convolutions, {len(gemms)} heads)")
    with torch.no_grad():
        for node, (conv, bn) in zip(convs, pairs):
            w = torch.from_numpy(init[node.input[1]].copy())
            if w.shape != conv.weight.shape:
                raise ValueError(f"{path}: layer shape {tuple(w.shape)} is not "
                                 f"{tuple(conv.weight.shape)}")
            conv.weight.copy_(w)
            bias = (torch.from_numpy(init[node.input[2]].copy()) if len(node.input) > 2
                    else torch.zeros(w.shape[0]))
            bn.weight.fill_(1.0)
            bn.bias.copy_(bias)
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0 - bn.eps)
        w = torch.from_numpy(init[gemms[0].input[1]].copy())
        b = torch.from_numpy(init[gemms[0].input[2]].copy())
        head = nn.Linear(1280, num_classes)
        if w.shape[0] == num_classes:
            head.weight.copy_(w)
            head.bias.copy_(b)
        else:
            nn.init.normal_(head.weight, 0, 0.01)
            nn.init.zeros_(head.bias)
        model.classifier[1] = head
    return model


class SharedPair(nn.Module):
    """Two classifiers whose first ``blocks`` feature blocks are identical, run as one graph:
    the shared blocks once, then each network's own tail and head. BGR 0..255 in, each
    network's softmax probabilities out (the first's, then the second's)."""

    def __init__(self, first: DeployModel, second: DeployModel, blocks: int):
        super().__init__()
        # The input statistics only (the first network itself is reached through its parts).
        self.register_buffer("mean", first.mean.clone())
        self.register_buffer("std", first.std.clone())
        self.trunk = first.net.features[:blocks]
        self.tails = nn.ModuleList([first.net.features[blocks:], second.net.features[blocks:]])
        self.heads = nn.ModuleList([first.net.classifier, second.net.classifier])

    def forward(self, bgr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.trunk(bgr_to_input(bgr, self.mean, self.std))
        a, b = (torch.softmax(head(nn.functional.adaptive_avg_pool2d(tail(h), 1).flatten(1)),
                              dim=1) for tail, head in zip(self.tails, self.heads))
        return a, b
