"""Evaluation: the user-disjoint protocol, metrics and baselines behind `tagatlas evaluate`."""

from tagatlas.evaluation.runner import NoTestPostsError, evaluate, format_table
from tagatlas.evaluation.split import TrainingSplit, training_split

__all__ = ["NoTestPostsError", "TrainingSplit", "evaluate", "format_table", "training_split"]
