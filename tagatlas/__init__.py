"""TagAtlas: where a social post was posted and which hashtags it should carry.

Parts (each an installed subpackage): ``tagatlas.data`` (posts, places, hashtags),
``tagatlas.encoders`` (text/image models), ``tagatlas.index`` (FAISS + SQLite store),
``tagatlas.recommender`` (retrieval-augmented model), ``tagatlas.evaluation`` (protocol,
metrics, baselines). Two fixes run here: numpy's BLAS threads are told to sleep after each call
(before numpy loads; see ``tagatlas.core.native``), and torchvision's import is made to work with CPU torch.
"""

from tagatlas.core.native import quiet_blas_threads

quiet_blas_threads()

from tagatlas._torchfix import fix_torchvision_ops  # noqa: E402 - after the BLAS setting, which must precede numpy

fix_torchvision_ops()

from tagatlas.core import __version__  # noqa: E402

__all__ = ["__version__"]
