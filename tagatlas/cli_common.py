"""Options shared by several `tagatlas` commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

CacheOption = Annotated[bool, typer.Option("--cache/--no-cache",
                                           help="reuse post vectors cached by content hash (re-enriching unchanged posts skips the encoders)")]
CachePathOption = Annotated[Optional[Path], typer.Option("--cache-path",
                                                         help="embedding cache file (default: $TAGATLAS_CACHE_DIR or ~/.cache/tagatlas)")]
