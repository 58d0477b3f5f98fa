"""Make `import torchvision` work with the CPU build of torch.

PyPI's torchvision wheels are CUDA-linked; with torch's CPU build their import fails with
``operator torchvision::nms does not exist`` (and so do open_clip, timm and transformers).
Declaring the two missing operator schemas before torchvision is first imported fixes it:
transforms and models are pure Python, only the detection ops stay unavailable.
"""

from __future__ import annotations

_SCHEMAS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
)
_library = None  # kept alive for the life of the process: dropping it unregisters the schemas


def fix_torchvision_ops() -> bool:
    """Declare the missing torchvision schemas on CPU-only torch; return True if any was added."""
    global _library
    try:
        import torch
    except ImportError:  # torch is a dependency, but `tagatlas.data` should not need it
        return False
    if torch.version.cuda is not None or _library is not None:
        return False
    added = False
    library = torch.library.Library("torchvision", "DEF")
    for schema in _SCHEMAS:
        try:
            library.define(schema)
            added = True
        except RuntimeError:  # already defined (a working torchvision build, or a second call)
            pass
    _library = library
    return added
