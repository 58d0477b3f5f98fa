"""Noisy-image gate (MRLF): images that carry little place signal (portraits and selfies, images unrelated
to their caption, images the backbone cannot name) count less in the post vector.

Signals per image: the share of the image covered by its largest frontal face (OpenCV's Haar cascade,
shipped inside `opencv-python-headless`), the normalised entropy of the backbone's ImageNet class
distribution, and the cosine agreement of the image with its own caption in the text space. The gate is
a logistic function of them. Its coefficients are data: the default is a documented prior (not learned);
`fit` learns them from image posts labelled by whether the image helped (done once image posts exist).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import asdict, dataclass, field

import numpy as np

log = logging.getLogger(__name__)

SIGNALS = ("face", "entropy", "agreement")
# Prior: a face over ~5 % of the frame halves the weight, ~10 % leaves ~0.1; a caption that agrees raises it.
PRIOR = {"bias": 2.0, "face": -40.0, "entropy": -1.0, "agreement": 2.0}


@dataclass
class GateConfig:
    """Coefficients of the gate; `learned` says whether `fit` produced them (else they are the prior)."""

    coef: dict[str, float] = field(default_factory=lambda: dict(PRIOR))
    threshold: float = 0.5  # an image weighted under this counts as gated in reports
    learned: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


@functools.lru_cache(maxsize=1)
def _face_cascade():
    import cv2

    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    if cascade.empty():
        raise RuntimeError("OpenCV's frontal-face cascade could not be loaded (opencv-python-headless < 5 ships it)")
    return cascade


def face_fraction(image, side: int = 256) -> float:
    """Share of the image (0..1) covered by its largest detected frontal face, on a `side`-pixel copy."""
    import cv2

    gray = np.asarray(image.convert("L"))
    scale = side / max(gray.shape)
    if scale < 1:
        gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    faces = _face_cascade().detectMultiScale(cv2.equalizeHist(gray), scaleFactor=1.1, minNeighbors=5, minSize=(20, 20))
    return float(max((w * h for _, _, w, h in faces), default=0) / gray.size)


def class_entropy(probs: np.ndarray) -> np.ndarray:
    """Normalised entropy (0: one class certain, 1: uniform) of each row of class probabilities."""
    p = np.clip(np.asarray(probs, np.float64), 1e-12, 1.0)
    return (-(p * np.log(p)).sum(axis=1) / np.log(p.shape[1])).astype(np.float32)


class NoisyImageGate:
    """signals → weight in [0, 1] of each image in its post's vector."""

    def __init__(self, config: GateConfig | None = None):
        self.config = config or GateConfig()

    def signals(self, images, probs: np.ndarray | None, text_vectors: np.ndarray, image_vectors: np.ndarray) -> np.ndarray:
        """(n, 3) face share, class entropy (0 when the backbone gives no classes), caption agreement (0 without text)."""
        faces = np.array([face_fraction(img) for img in images], np.float32)
        entropy = class_entropy(probs) if probs is not None else np.zeros(len(images), np.float32)
        agreement = np.einsum("nd,nd->n", text_vectors, image_vectors).astype(np.float32)
        return np.column_stack([faces, entropy, agreement])

    def weight(self, signals: np.ndarray) -> np.ndarray:
        c = self.config.coef
        z = c["bias"] + np.asarray(signals, np.float64) @ np.array([c[s] for s in SIGNALS])
        return (1.0 / (1.0 + np.exp(-z))).astype(np.float32)

    def fit(self, signals: np.ndarray, helpful: np.ndarray, C: float = 1.0) -> "NoisyImageGate":
        """Learn the coefficients from images labelled helpful (the image moved its post towards the truth) or not."""
        from sklearn.linear_model import LogisticRegression

        helpful = np.asarray(helpful, bool)
        if helpful.all() or not helpful.any():
            raise ValueError("fitting the image gate needs both helpful and unhelpful images")
        clf = LogisticRegression(C=C).fit(np.asarray(signals, np.float64), helpful)
        self.config = GateConfig(coef={"bias": float(clf.intercept_[0]), **{s: float(v) for s, v in zip(SIGNALS, clf.coef_[0])}},
                                 threshold=self.config.threshold, learned=True)
        return self
