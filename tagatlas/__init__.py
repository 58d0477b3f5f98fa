"""TagAtlas: where a social post was posted and which hashtags it should carry.

Parts (each an installed subpackage): ``tagatlas.data`` (posts, places, hashtags),
``tagatlas.encoders`` (text/image models), ``tagatlas.index`` (FAISS + SQLite store),
``tagatlas.recommender`` (retrieval-augmented model), ``tagatlas.evaluation`` (protocol,
metrics, baselines). The torchvision fix runs here, before anything imports torchvision.
"""

from tagatlas._torchfix import fix_torchvision_ops

fix_torchvision_ops()

__version__ = "0.1.0"
__all__ = ["__version__"]
