"""Writes tests/fixtures/liveness_reference.npz: MiniFASNet outputs computed by torch.

An independent reference for `model_repository/liveness_onnx.py`: the two Silent-Face-Anti-
Spoofing networks are written here as plain torch modules with the channel counts of the
upstream architecture (minivision-ai/Silent-Face-Anti-Spoofing, src/model_lib/MiniFASNet.py),
their weights are read with `torch.load` (`load_state_dict(strict=True)` checks every name and
shape), and the networks run in eval mode without any BatchNorm folding.

Inputs: 6 crops from real photos under the shared data folder and 4 seeded-random crops.
Only the photos' relative paths, the crop rule, per-crop pixel sums and the outputs are
stored, not the pixels (the test recomputes the crops). The fixture also holds statistics of
a few weight tensors, and a tiny state dict saved by torch in the zip and in the legacy
format, for the tests of `model_repository/torch_weights.py`.

Torch is not a project dependency; run this in a separate virtual environment:

    python3 -m venv /tmp/torchvenv
    /tmp/torchvenv/bin/pip install torch==2.13.0 numpy==1.26.4 opencv-python-headless==4.11.0.86
    /tmp/torchvenv/bin/python tests/tools/make_liveness_reference.py \
        [--weights-dir ../shared/models] [--data-dir ../shared/data]
"""

from __future__ import annotations

import argparse
import collections
import io
import tempfile
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "tests" / "fixtures" / "liveness_reference.npz"
V2_FILE = "minifasnet_silent_face/2.7_80x80_MiniFASNetV2.pth"
V1SE_FILE = "minifasnet_silent_face/4_0_0_80x80_MiniFASNetV1SE.pth"

PHOTOS = [
    "spoof/images/live/minivision_image_T1.jpg",
    "spoof/images/print/minivision_image_F1.jpg",
    "spoof/images/replay/minivision_image_F2.jpg",
    "spoof/images/replay/miniailive_f_fake_andr_monitor.jpg",
    "faces/Aaron_Eckhart/Aaron_Eckhart_0001.jpg",
    "faces/Al_Pacino/Al_Pacino_0001.jpg",
]
CROP_SIZE = 80
# Side of the centred square, as a fraction of the photo's shorter side; the 2.7x crop is
# 2.7/4.0 of the 4.0x one, as it would be around a real face box.
CROP_FRACTIONS = {"crop_v2": 2.7 / 4.0, "crop_v1se": 1.0}
CROP_RULE = (
    "cv2.imread BGR; centred square of side round(min(h, w) * fraction), top-left "
    "((h - side) // 2, (w - side) // 2); cv2.resize to 80x80 with INTER_LINEAR"
)
RANDOM_SEED = 20240613
RANDOM_CROPS = 4
CHECKED_TENSORS = [
    "module.conv1.conv.weight",
    "module.conv_4.model.2.conv_dw.bn.running_var",
    "module.conv_6_dw.conv.weight",
    "module.prob.weight",
    "module.bn.num_batches_tracked",
]

# Hidden channels of each inverted-residual block (the 1x1 expansion), per stage; the stage
# widths are 64 after conv_23, 128 after conv_34 and conv_45.
V2_EXPANSIONS = {
    "conv_3": [13, 13, 13, 13],
    "conv_4": [231, 52, 26, 77, 26, 26],
    "conv_5": [26, 26],
}
V1_EXPANSIONS = {
    "conv_3": [13, 26, 13, 52],
    "conv_4": [154, 52, 26, 52, 26, 26],
    "conv_5": [26, 26],
}


class ConvBlock(nn.Module):
    """Convolution, BatchNorm and (unless linear) PReLU."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel: int = 1,
        stride: int = 1,
        padding: int = 0,
        groups: int = 1,
        linear: bool = False,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride, padding, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(c_out)
        self.prelu = None if linear else nn.PReLU(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return x if self.prelu is None else self.prelu(x)


class SqueezeExcitation(nn.Module):
    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        hidden = channels // reduction
        self.fc1 = nn.Conv2d(channels, hidden, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(hidden)
        self.fc2 = nn.Conv2d(hidden, channels, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = x.mean(dim=(2, 3), keepdim=True)
        gate = torch.relu(self.bn1(self.fc1(gate)))
        return x * torch.sigmoid(self.bn2(self.fc2(gate)))


class DepthWise(nn.Module):
    """1x1 expansion, 3x3 depthwise, linear 1x1 projection; optionally SE and a shortcut."""

    def __init__(
        self, c_in: int, hidden: int, c_out: int, stride: int, residual: bool, se: bool = False
    ) -> None:
        super().__init__()
        self.conv = ConvBlock(c_in, hidden)
        self.conv_dw = ConvBlock(hidden, hidden, 3, stride, 1, groups=hidden)
        self.project = ConvBlock(hidden, c_out, linear=True)
        self.se_module = SqueezeExcitation(c_out) if se else None
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.conv_dw(self.conv(x)))
        if self.se_module is not None:
            y = self.se_module(y)
        return x + y if self.residual else y


class Stage(nn.Module):
    def __init__(self, width: int, expansions: list[int], se_last: bool) -> None:
        super().__init__()
        self.model = nn.Sequential(
            *(
                DepthWise(width, e, width, 1, True, se=se_last and i == len(expansions) - 1)
                for i, e in enumerate(expansions)
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class MiniFASNet(nn.Module):
    """MiniFASNet for 80x80 crops, 128-d embedding, 3 classes, inference path only."""

    def __init__(self, expansions: dict[str, list[int]], se: bool) -> None:
        super().__init__()
        self.conv1 = ConvBlock(3, 32, 3, 2, 1)
        self.conv2_dw = ConvBlock(32, 32, 3, 1, 1, groups=32)
        self.conv_23 = DepthWise(32, 103, 64, 2, False)
        self.conv_3 = Stage(64, expansions["conv_3"], se)
        self.conv_34 = DepthWise(64, 231, 128, 2, False)
        self.conv_4 = Stage(128, expansions["conv_4"], se)
        self.conv_45 = DepthWise(128, 308, 128, 2, False)
        self.conv_5 = Stage(128, expansions["conv_5"], se)
        self.conv_6_sep = ConvBlock(128, 512)
        self.conv_6_dw = ConvBlock(512, 512, 5, groups=512, linear=True)
        self.linear = nn.Linear(512, 128, bias=False)
        self.bn = nn.BatchNorm1d(128)
        self.prob = nn.Linear(128, 3, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for stage in (
            self.conv1,
            self.conv2_dw,
            self.conv_23,
            self.conv_3,
            self.conv_34,
            self.conv_4,
            self.conv_45,
            self.conv_5,
            self.conv_6_sep,
            self.conv_6_dw,
        ):
            x = stage(x)
        return self.prob(self.bn(self.linear(x.flatten(1))))


def load_network(path: Path, expansions: dict[str, list[int]], se: bool) -> MiniFASNet:
    state = torch.load(path, map_location="cpu", weights_only=True)
    net = MiniFASNet(expansions, se)
    net.load_state_dict({k.removeprefix("module."): v for k, v in state.items()}, strict=True)
    return net.eval()


def centre_crop(image: np.ndarray, fraction: float) -> np.ndarray:
    h, w = image.shape[:2]
    side = round(min(h, w) * fraction)
    top, left = (h - side) // 2, (w - side) // 2
    square = image[top : top + side, left : left + side]
    return cv2.resize(square, (CROP_SIZE, CROP_SIZE), interpolation=cv2.INTER_LINEAR)


def make_crops(data_dir: Path) -> dict[str, np.ndarray]:
    images = [cv2.imread(str(data_dir / p), cv2.IMREAD_COLOR) for p in PHOTOS]
    rng = np.random.default_rng(RANDOM_SEED)
    crops = {}
    for name, fraction in CROP_FRACTIONS.items():
        real = [centre_crop(image, fraction) for image in images]
        noise = rng.integers(0, 256, (RANDOM_CROPS, CROP_SIZE, CROP_SIZE, 3), dtype=np.uint8)
        crops[name] = np.concatenate([np.stack(real), noise])
    return crops


def tiny_state_dict_files() -> tuple[dict[str, np.ndarray], bytes, bytes]:
    """A state dict with a shared storage, an offset view, a transposed view and an int64."""
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6) / 7
    state = collections.OrderedDict(
        weight=base,
        transposed=base.t(),
        row_slice=base[1:3, ::2],
        count=torch.tensor(42, dtype=torch.int64),
        half=torch.linspace(-1, 1, 5, dtype=torch.float16),
    )
    expected = {k: v.numpy().copy() for k, v in state.items()}
    files = []
    for zipped in (True, False):
        buffer = io.BytesIO()
        torch.save(state, buffer, _use_new_zipfile_serialization=zipped)
        files.append(buffer.getvalue())
    return expected, files[0], files[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights-dir", type=Path, default=REPO.parent / "shared" / "models")
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    args = parser.parse_args()

    v2 = load_network(args.weights_dir / V2_FILE, V2_EXPANSIONS, se=False)
    v1se = load_network(args.weights_dir / V1SE_FILE, V1_EXPANSIONS, se=True)
    crops = make_crops(args.data_dir)
    with torch.no_grad():
        probs = torch.stack(
            [
                torch.softmax(net(torch.from_numpy(crops[name]).permute(0, 3, 1, 2).float()), dim=1)
                for net, name in ((v2, "crop_v2"), (v1se, "crop_v1se"))
            ],
            dim=1,
        ).numpy()

    v2_state = torch.load(args.weights_dir / V2_FILE, map_location="cpu", weights_only=True)
    tiny, tiny_zip, tiny_legacy = tiny_state_dict_files()
    fixture = {
        "photos": np.array(PHOTOS),
        "crop_rule": np.array(CROP_RULE),
        "crop_fractions": np.array([CROP_FRACTIONS["crop_v2"], CROP_FRACTIONS["crop_v1se"]]),
        "crop_pixel_sums": np.stack([crops["crop_v2"], crops["crop_v1se"]], 1)
        .reshape(len(PHOTOS) + RANDOM_CROPS, 2, -1)
        .sum(-1, dtype=np.int64),
        "random_seed": np.array(RANDOM_SEED),
        "random_crops": np.array(RANDOM_CROPS),
        "probs": probs.astype(np.float32),
        "p_real": probs[:, :, 1].mean(1, keepdims=True).astype(np.float32),
        "v2_tensor_names": np.array(CHECKED_TENSORS),
        "v2_tensor_sums": np.array([v2_state[k].double().sum().item() for k in CHECKED_TENSORS]),
        "v2_tensor_shapes": np.array([str(tuple(v2_state[k].shape)) for k in CHECKED_TENSORS]),
        "v2_tensor_count": np.array(len(v2_state)),
        "tiny_zip": np.frombuffer(tiny_zip, np.uint8),
        "tiny_legacy": np.frombuffer(tiny_legacy, np.uint8),
        **{f"tiny/{k}": v for k, v in tiny.items()},
        "torch_version": np.array(torch.__version__),
    }
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=FIXTURE.parent, suffix=".npz", delete=False) as tmp:
        np.savez_compressed(tmp, **fixture)
    Path(tmp.name).chmod(0o644)
    Path(tmp.name).replace(FIXTURE)
    print(f"wrote {FIXTURE} ({FIXTURE.stat().st_size} bytes)")
    print("P(real):", np.round(fixture["p_real"][:, 0], 4))


if __name__ == "__main__":
    main()
