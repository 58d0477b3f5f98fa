"""What several `tagatlas` commands share: options, and turning the errors a user can cause into one line."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, NoReturn, Optional, TypeVar

import typer

T = TypeVar("T")

CacheOption = Annotated[bool, typer.Option("--cache/--no-cache",
                                           help="reuse post vectors cached by content hash (re-enriching unchanged posts skips the encoders)")]
CachePathOption = Annotated[Optional[Path], typer.Option("--cache-path",
                                                         help="embedding cache file (default: $TAGATLAS_CACHE_DIR or ~/.cache/tagatlas)")]


def fail(message: str, code: int = 2) -> NoReturn:
    """Print `error: message` on stderr and exit with `code` (2: the user's input was wrong)."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def user_errors() -> tuple[type[BaseException], ...]:
    """The exception types a user causes with a bad file, folder or value (imported late: the CLI starts fast)."""
    from tagatlas.data import PostFileError
    from tagatlas.enrich import EnrichResumeError
    from tagatlas.evaluation import NoTestPostsError
    from tagatlas.recommender import ModelFolderError

    return (PostFileError, ModelFolderError, EnrichResumeError, NoTestPostsError, FileNotFoundError, ValueError)


def guard(fn: Callable[[], T], extra: Callable[[BaseException], str | None] | None = None) -> T:
    """Run `fn`; a user error becomes one clear line and exit code 2 instead of a traceback. `extra` may name
    further errors: it returns the line to print for an exception it recognises, else None."""
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - re-raised below unless it is the user's
        message = extra(exc) if extra is not None else None
        if message is not None:
            fail(message)
        if isinstance(exc, user_errors()):
            fail(str(exc))
        raise
