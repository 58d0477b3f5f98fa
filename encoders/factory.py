"""One factory that hides the backbones behind `PostEncoder` (configs are data, as open_clip's)."""

from __future__ import annotations

from tagatlas.encoders.image import EfficientNetLiteImage, OpenCLIPImage
from tagatlas.encoders.post import EncoderConfig, PostEncoder
from tagatlas.encoders.text import OpenCLIPText, SentenceTransformerText, USEMultilingualText


def _open_clip(spec: str, device: str):
    """Load an open_clip model from "arch/pretrained" (hub tag when online, or a checkpoint path)."""
    import open_clip

    arch, _, pretrained = spec.partition("/")
    model, _, preprocess = open_clip.create_model_and_transforms(arch, pretrained=pretrained or None, device=device)
    model.eval()
    tokenizer = open_clip.get_tokenizer(arch)
    dim = int(model.text_projection.shape[1]) if getattr(model, "text_projection", None) is not None else int(model.embed_dim)
    return model, preprocess, tokenizer, dim


def resolve_device(device: str) -> str:
    """The torch device an encoder config names: "auto" is CUDA when torch sees a GPU, else CPU (what CI runs)."""
    if device == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu" or device == "mps" or device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit()):
        return device
    raise ValueError(f"encoder device={device!r} unknown: use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'")


def create_encoder(config: EncoderConfig | dict | None = None) -> PostEncoder:
    """Build the post encoder a config names; unknown names fail with the list of known ones."""
    if config is None:
        config = EncoderConfig()
    elif isinstance(config, dict):
        config = EncoderConfig(**config)
    text_spec, image_spec, device = config.text, config.image, resolve_device(config.device)
    clip = None
    if text_spec == "use-multilingual":
        text = USEMultilingualText()
    elif text_spec.startswith("st:"):
        text = SentenceTransformerText(text_spec[3:], device=device)
    elif text_spec.startswith("open_clip:"):
        model, preprocess, tokenizer, dim = _open_clip(text_spec[len("open_clip:"):], device)
        clip = (model, preprocess, dim)
        text = OpenCLIPText(model, tokenizer, text_spec, dim, device)
    else:
        raise ValueError(f"encoder text={text_spec!r} unknown: use 'use-multilingual', 'st:<model>' or 'open_clip:<arch>/<pretrained>'")

    if image_spec == "none":
        image_factory = None
    elif image_spec == "efficientnet-lite0":
        image_factory = lambda: EfficientNetLiteImage(device=device)  # noqa: E731 (loaded on first image)
    elif image_spec == "open_clip":
        if clip is None:
            raise ValueError("encoder image='open_clip' needs text='open_clip:<arch>/<pretrained>' (one shared space)")
        image_factory = lambda: OpenCLIPImage(clip[0], clip[1], text_spec, clip[2], device)  # noqa: E731
    else:
        raise ValueError(f"encoder image={image_spec!r} unknown: use 'efficientnet-lite0', 'open_clip' or 'none'")
    return PostEncoder(text, image_factory, config)
