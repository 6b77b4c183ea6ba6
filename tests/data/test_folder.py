"""Training on any folder of images: reading, cropping, bad files, the conv network family."""

import pytest
import torch
from PIL import Image

import infogan
from infogan.cli import main
from infogan.config import ModelConfig
from infogan.core.latent import LatentSpec
from infogan.core.networks import build_networks
from infogan.core.networks.conv import channel_widths
from infogan.data import load_image_folder
from infogan.errors import InfoGANError


def _make_folder(root, count=24):
    """PNG and JPEG files of mixed sizes and modes in nested folders, plus one broken file."""
    generator = torch.Generator().manual_seed(0)
    for i in range(count):
        width, height = (40 + 3 * i, 32 + 2 * i) if i % 2 else (32, 32)
        pixels = (torch.rand(height, width, 3, generator=generator) * 255).to(torch.uint8).numpy()
        image = Image.fromarray(pixels).convert("L" if i % 3 == 0 else "RGB")
        sub = root / f"part{i % 2}"
        sub.mkdir(parents=True, exist_ok=True)
        image.save(sub / f"img{i}.{'jpg' if i % 4 == 1 else 'png'}")
    (root / "part0" / "broken.png").write_bytes(b"\x89PNG not really")
    (root / "notes.txt").write_text("not an image")
    return root


def test_folder_images_are_cropped_resized_and_counted(tmp_path, capsys):
    folder = _make_folder(tmp_path / "images")
    images = load_image_folder(folder, channels=3, size=32)
    assert images.shape == (24, 3, 32, 32) and images.dtype == torch.uint8
    assert "skipped 1 unreadable" in capsys.readouterr().err
    grey = load_image_folder(folder, channels=1, size=64)
    assert grey.shape == (24, 1, 64, 64)


def test_centre_crop_keeps_the_middle(tmp_path):
    image = torch.zeros(20, 60, dtype=torch.uint8)
    image[:, 20:40] = 255  # a white square in the middle of a wide black image
    Image.fromarray(image.numpy()).save(tmp_path / "wide.png")
    loaded = load_image_folder(tmp_path, channels=1, size=20)
    assert loaded.shape == (1, 1, 20, 20) and loaded.float().mean() > 250


def test_bad_files_can_be_errors_and_empty_folders_are_explained(tmp_path):
    folder = _make_folder(tmp_path / "images", count=2)
    with pytest.raises(InfoGANError, match="broken.png"):
        load_image_folder(folder, 1, 32, on_bad_file="error")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InfoGANError, match="holds no .png"):
        load_image_folder(tmp_path / "empty", 1, 32)
    with pytest.raises(InfoGANError, match="does not exist"):
        load_image_folder(tmp_path / "missing", 1, 32)


@pytest.mark.parametrize("size", [32, 64, 128])
@pytest.mark.parametrize("channels", [1, 3])
def test_conv_family_shapes(size, channels):
    spec = LatentSpec(noise_dim=10, categorical=(5,), continuous=2)
    g, d = build_networks(ModelConfig(architecture="conv", image_size=size, image_channels=channels), spec)
    images = g(spec.to_input(spec.sample(2)))
    logits, q = d(images)
    assert images.shape == (2, channels, size, size) and logits.shape == (2,)
    assert q.categorical_logits[0].shape == (2, 5) and q.continuous_mean.shape == (2, 2)


def test_conv_family_widths_and_sizes():
    assert channel_widths(32) == [256, 128, 64]
    assert channel_widths(128) == [512, 512, 256, 128, 64]
    assert channel_widths(64, width=32) == [256, 128, 64, 32]
    _, narrow = build_networks(ModelConfig(architecture="conv", image_size=64, width=16), LatentSpec())
    assert [m.out_channels for m in narrow.trunk if isinstance(m, torch.nn.Conv2d)] == [16, 32, 64, 128]
    with pytest.raises(InfoGANError, match="only the conv and mnist_small architectures have a width"):
        ModelConfig(architecture="mnist", width=32)
    with pytest.raises(InfoGANError, match="32, 64, 128"):
        ModelConfig(architecture="conv", image_size=48)


def test_train_evaluate_and_traverse_an_image_folder_from_the_cli(tmp_path, capsys):
    folder = _make_folder(tmp_path / "images")
    out = tmp_path / "run"
    args = ["train", "--out", str(out), "--max-steps", "2", "--device", "cpu", "--progress", "lines",
            "--set", "data.dataset=folder", "--set", f"data.path={folder}", "--set", "model.architecture=conv",
            "--set", "model.image_size=32", "--set", "model.image_channels=3", "--set", "optim.batch_size=8",
            "--set", "latent.categorical=[3]", "--set", "logging.tensorboard=false"]  # fmt: skip
    assert main(args) == 0
    assert main(["evaluate", str(out), "--samples", "50", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "no labels" in printed and "c1: information bound" in printed
    assert main(["traverse", str(out), "--out", str(tmp_path / "t.png"), "--code", "c1"]) == 0
    model = infogan.load(out)
    assert model.generate(2).shape == (2, 3, 32, 32)
    codes = model.encode(load_image_folder(folder, 3, 32)[:4])
    assert codes["c1"].shape == (4,) and int(codes["c1"].max()) < 3


def test_folder_dataset_needs_a_path_and_mnist_needs_matching_networks(tmp_path, data_dir, capsys):
    assert main(["train", "--out", str(tmp_path / "a"), "--set", "data.dataset=folder"]) == 2
    assert "data.path" in capsys.readouterr().err
    args = ["train", "--out", str(tmp_path / "b"), "--data-dir", str(data_dir), "--set", "model.architecture=conv",
            "--set", "model.image_size=32"]  # fmt: skip
    assert main(args) == 2
    assert "images are 1x28x28 but the network makes 1x32x32" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("preset", "shape"),
    [("celeba", (3, 32, 32)), ("faces3d", (1, 32, 32)), pytest.param("chairs3d", (1, 64, 64), marks=pytest.mark.slow)],
)  # chairs3d: 30 s on 2 cores (64x64 networks); its networks' shapes are checked in test_models
def test_paper_folder_presets_train_with_their_own_networks(tmp_path, preset, shape):
    folder = _make_folder(tmp_path / "images", count=8)
    out = tmp_path / preset
    args = ["train", "--preset", preset, "--out", str(out), "--max-steps", "2", "--device", "cpu",
            "--progress", "lines", "--set", f"data.path={folder}", "--set", "optim.batch_size=4",
            "--set", "logging.tensorboard=false"]  # fmt: skip
    assert main(args) == 0
    model = infogan.load(out)
    assert model.config.model.architecture == {"celeba": "svhn", "faces3d": "faces", "chairs3d": "chairs"}[preset]
    images = model.generate(3)
    assert images.shape == (3, *shape) and torch.isfinite(images).all()
