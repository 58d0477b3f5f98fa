"""A model's configuration as validated data: what defines a model before it sees data (saved as config.json
inside model.json). Loading refuses unknown keys, wrong types and out-of-range values by name."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from tagatlas.encoders import EncoderConfig
from tagatlas.recommender.head import HeadConfig


class ConfigError(ValueError):
    """A configuration value is unknown, of the wrong type or out of range (the message names it)."""


@dataclass
class ModelConfig:
    """Everything that defines a model before it sees data."""

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    head: HeadConfig = field(default_factory=HeadConfig)
    n_lexical_features: int = 2**18
    min_place_posts: int = 3  # places with fewer training posts are folded into the nearest kept place
    min_tag_posts: int = 2  # the classifier's tag vocabulary; rarer tags are reached through retrieval
    index_factory: str = "auto"
    index_rerank: int = 4  # an approximate index returns this many × k candidates, re-ranked with the store's exact vectors (0: off)
    index_space: str = "encoder"  # "encoder": the encoder's vector (complements the head; validated better); "head": its hidden layer
    k_max: int = 50  # neighbours retrieved per post (the fusion uses up to this many)
    val_fraction: float = 0.0  # 0: automatic, 10 % of users but at least 300 users (at most 30 %)
    refit: bool = True  # after tuning, retrain the head on fit + validation posts
    hedge_tolerance: float = 0.0  # validation Acc@161 that hedged coordinates of unsure posts may cost (for a lower median error)
    tag_match_k: int = 20  # indexed tags nearest a post in the text space that the embedding match proposes (0: off)
    photo_metadata: bool = True  # read EXIF GPS / capture time of photos (the strongest place signal there is)
    impute_min_pairs: int = 200  # training posts with both text and image needed to learn cross-modal imputation (0: off)
    cluster_k: int = 10  # graph clusters built in training (k of the per-modality kNN graphs; 0: none until `tagatlas cluster`)
    cluster_resolution: float = 1.0  # Leiden resolution of those clusters
    evidence: list[str] = field(default_factory=lambda: ["cluster", "tag_places", "place_names", "image_neighbours", "user_places"])  # plug-in evidence sources (recommender/evidence), weights tuned
    seed: int = 0

    @classmethod
    def from_dict(cls, data: Any) -> "ModelConfig":
        """A validated config from plain data (model.json); raises ConfigError naming the first bad key."""
        values = _checked(cls, data, "config", skip=("encoder", "head"))
        values["encoder"] = EncoderConfig(**_checked(EncoderConfig, data.get("encoder", {}), "config.encoder"))
        values["head"] = HeadConfig(**_checked(HeadConfig, data.get("head", {}), "config.head"))
        if "evidence" in values:
            from tagatlas.recommender.evidence import registered_sources

            unknown = [n for n in values["evidence"] if n not in registered_sources()]
            if unknown:
                raise ConfigError(f"config.evidence: unknown source(s) {', '.join(map(repr, unknown))}; "
                                  f"registered: {', '.join(registered_sources())}")
            values["evidence"] = list(values["evidence"])
        return cls(**values)

    def to_dict(self) -> dict:
        return asdict(self)

    def validated(self) -> "ModelConfig":
        """A validated deep copy (what `fit` trains with: the caller's object is never changed)."""
        return ModelConfig.from_dict(self.to_dict())


# Allowed ranges (inclusive) and choices, per config class and field.
RANGES: dict[type, dict[str, tuple[float, float]]] = {
    ModelConfig: {"n_lexical_features": (1, 2**26), "min_place_posts": (1, 10**6), "min_tag_posts": (1, 10**6), "index_rerank": (0, 100),
                  "k_max": (1, 1000), "val_fraction": (0.0, 0.9), "hedge_tolerance": (0.0, 1.0), "tag_match_k": (0, 1000),
                  "impute_min_pairs": (0, 10**9), "cluster_k": (0, 1000), "cluster_resolution": (1e-6, 1e3), "seed": (0, 2**63 - 1)},
    HeadConfig: {"bag_dim": (1, 1 << 16), "hidden": (1, 1 << 16), "dropout": (0.0, 0.99), "lr": (1e-9, 10.0), "weight_decay": (0.0, 10.0),
                 "batch_size": (1, 1 << 20), "max_epochs": (1, 10_000), "patience": (0, 10_000), "tag_loss_weight": (0.0, 1e3),
                 "coord_loss_weight": (0.0, 1e3), "char_dim": (0, 1 << 14), "char_len": (1, 1 << 16), "char_heads": (1, 64),
                 "coattn_dim": (0, 1 << 14), "coattn_words": (1, 1 << 14), "coattn_region_dim": (1, 1 << 16), "seed": (0, 2**63 - 1)},
    EncoderConfig: {"max_chars": (1, 1 << 24)},
}
CHOICES: dict[type, dict[str, tuple[str, ...]]] = {ModelConfig: {"index_space": ("encoder", "head")}}


def _type_ok(kind: str, value: Any) -> bool:
    """Whether `value` is of the dataclass field type `kind` (a string: these modules use postponed annotations)."""
    options = [k.strip() for k in kind.split("|")]
    checks = {"int": lambda v: isinstance(v, int) and not isinstance(v, bool),
              "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v),
              "bool": lambda v: isinstance(v, bool), "str": lambda v: isinstance(v, str), "dict": lambda v: isinstance(v, dict),
              "list[str]": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
              "None": lambda v: v is None}
    return any(checks.get(k, lambda v: True)(value) for k in options)


def _checked(cls: type, data: Any, where: str, skip: tuple[str, ...] = ()) -> dict:
    """The fields of `cls` present in `data`, after refusing unknown keys, wrong types and values out of range."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected an object of settings, got {type(data).__name__}")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(k for k in data if k not in known)
    if unknown:
        raise ConfigError(f"{where}: unknown setting(s) {', '.join(map(repr, unknown))}; known: {', '.join(sorted(known))}")
    out = {}
    for name, value in data.items():
        if name in skip:
            continue
        kind = str(known[name].type)
        if not _type_ok(kind, value):
            raise ConfigError(f"{where}.{name}: expected {kind}, got {value!r}")
        if kind == "float" and isinstance(value, int):
            value = float(value)
        low, high = RANGES.get(cls, {}).get(name, (None, None))
        if low is not None and not low <= value <= high:
            raise ConfigError(f"{where}.{name}: {value!r} is out of range [{low}, {high}]")
        choices = CHOICES.get(cls, {}).get(name)
        if choices and value not in choices:
            raise ConfigError(f"{where}.{name}: {value!r} is not one of {', '.join(choices)}")
        out[name] = value
    return out
