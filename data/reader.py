"""Reading canonical post files (JSON Lines, optionally gzip-compressed).

A bad line stops the read with an error naming file, line and field, unless the caller asks to
skip invalid lines; skipped lines are always counted and reported, never dropped silently.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from tagatlas.data.post import Post


class PostFileError(ValueError):
    """A post file cannot be read: the message names the file, the line and the field."""


@dataclass
class ReadReport:
    """What a read saw: lines read, posts accepted, lines skipped and why (first `keep` reasons)."""

    path: str
    lines: int = 0
    posts: int = 0
    skipped: int = 0
    reasons: list[str] = field(default_factory=list)
    keep: int = 20
    images_refused: int = 0  # image paths outside the image root (or not regular files): the post is read without its image
    image_reasons: list[str] = field(default_factory=list)

    def skip(self, reason: str) -> None:
        self.skipped += 1
        if len(self.reasons) < self.keep:
            self.reasons.append(reason)

    def refuse_image(self, reason: str) -> None:
        self.images_refused += 1
        if len(self.image_reasons) < self.keep:
            self.image_reasons.append(reason)


def _describe(error: ValidationError) -> str:
    parts = []
    for err in error.errors():
        where = ".".join(str(p) for p in err.get("loc", ())) or "post"
        parts.append(f"field '{where}': {err.get('msg')}")
    return "; ".join(parts)


def _open_text(path: Path):
    with open(path, "rb") as probe:
        magic = probe.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def _resolve_image(image: str | None, base: Path, root: Path, where: str, report: ReadReport) -> str | None:
    """The post's image as an absolute path when it is a regular file under `root` (symlinks resolved); else None,
    counted in the report (a path such as ../../etc/passwd, or a FIFO that would block, is never opened)."""
    if not image or "://" in image:
        return image
    path = (base / image).resolve()
    if not path.is_relative_to(root):
        report.refuse_image(f"{where}: image {image[:200]!r} lies outside {root} (give --image-root to allow another folder)")
        return None
    if not path.is_file():
        report.refuse_image(f"{where}: image {image[:200]!r} is not a regular file")
        return None
    return str(path)


def read_posts(path: str | os.PathLike, *, skip_invalid: bool = False, report: ReadReport | None = None,
               image_root: str | os.PathLike | None = None) -> Iterator[Post]:
    """Yield the posts of a `.jsonl` or `.jsonl.gz` file; relative image paths resolve against its folder, and only
    regular files under `image_root` (default: that folder) are kept as images."""
    path = Path(path)
    if not path.exists():
        raise PostFileError(f"{path}: no such file")
    if path.is_dir():
        raise PostFileError(f"{path}: is a folder; give a posts.jsonl(.gz) file")
    report = report if report is not None else ReadReport(str(path))
    base = path.parent
    root = Path(image_root).resolve() if image_root is not None else base.resolve()
    try:
        handle = _open_text(path)
        with handle:
            for lineno, line in enumerate(handle, start=1):
                report.lines += 1
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    if not isinstance(record, dict):
                        raise PostFileError(f"{path}:{lineno}: a line must be a JSON object, got {type(record).__name__}")
                    post = Post.model_validate(record)
                except json.JSONDecodeError as exc:
                    message = f"{path}:{lineno}: not valid JSON ({exc.msg} at column {exc.colno})"
                except ValidationError as exc:
                    message = f"{path}:{lineno}: {_describe(exc)}"
                except PostFileError as exc:
                    message = str(exc)
                else:
                    post.image = _resolve_image(post.image, base, root, f"{path}:{lineno}", report)
                    report.posts += 1
                    yield post
                    continue
                if not skip_invalid:
                    raise PostFileError(message + " (use --skip-invalid to skip and count such lines)")
                report.skip(message)
    except (UnicodeDecodeError, gzip.BadGzipFile, EOFError) as exc:
        raise PostFileError(f"{path}: cannot decode after line {report.lines}: {exc}") from exc


def load_posts(paths, *, skip_invalid: bool = False) -> tuple[list[Post], list[ReadReport]]:
    """Read every file fully; post ids must be unique across them (a duplicate is an error)."""
    posts: list[Post] = []
    reports: list[ReadReport] = []
    seen: dict[str, str] = {}
    for path in [paths] if isinstance(paths, (str, os.PathLike)) else paths:
        report = ReadReport(str(path))
        for post in read_posts(path, skip_invalid=skip_invalid, report=report):
            if post.id in seen:
                message = f"{path}: post id {post.id!r} already read from {seen[post.id]}"
                if not skip_invalid:
                    raise PostFileError(message + " (use --skip-invalid to skip and count duplicates)")
                report.skip(message)
                report.posts -= 1
                continue
            seen[post.id] = str(path)
            posts.append(post)
        reports.append(report)
    return posts, reports


def batches(posts: Iterator, size: int) -> Iterator[list]:
    """Consecutive lists of `size` items (the last may be shorter)."""
    batch: list = []
    for post in posts:
        batch.append(post)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
