"""Evaluation: the user-disjoint protocol, metrics and baselines behind `tagatlas evaluate`."""

from tagatlas.evaluation.runner import NoTestPostsError, evaluate, format_table

__all__ = ["NoTestPostsError", "evaluate", "format_table"]
