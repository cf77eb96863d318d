"""Split Markdown files into front matter and body: YAML between `---`, TOML between `+++`."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from typing import Any

import yaml

# tomllib (before Python 3.14) puts the position only in its message.
_TOML_POSITION = re.compile(r"\s*\(at (?:line (?P<line>\d+), column \d+|end of document)\)$")


class FrontMatterError(ValueError):
    """A file whose front matter cannot be read; `line` is 1-based within the file."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


@dataclass
class Document:
    meta: dict[str, Any]
    body: str
    body_line: int  # the file line on which the body starts


def parse(text: str) -> Document:
    """Read a file's front matter (if any) and body."""
    text = text.lstrip("\ufeff")
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() not in {"---", "+++"}:
        return Document({}, text, 1)
    fence = lines[0].strip()
    closers = {fence, "..."} if fence == "---" else {fence}  # YAML may also end a document with ...
    end = next((i for i, line in enumerate(lines[1:], start=1) if line.strip() in closers), None)
    if end is None:
        hint = " (a file that starts with a --- rule needs a blank line before it)" * (
            fence == "---"
        )
        raise FrontMatterError(
            f"front matter opened with {fence} on line 1 is never closed{hint}", 1
        )
    source = "".join(lines[1:end])
    body = "".join(lines[end + 1 :])
    meta = _toml(source, closing_line=end + 1) if fence == "+++" else _yaml(source)
    return Document(meta, body, end + 2)


def _yaml(source: str) -> dict[str, Any]:
    try:
        meta = yaml.safe_load(source)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 2 if mark is not None else None  # +1 for 1-based, +1 for the fence
        problem = getattr(error, "problem", None) or str(error)
        raise FrontMatterError(f"YAML front matter: {problem}", line) from None
    return _mapping(meta)


def _toml(source: str, closing_line: int) -> dict[str, Any]:
    try:
        meta = tomllib.loads(source)
    except tomllib.TOMLDecodeError as error:
        message = str(error)
        position = _TOML_POSITION.search(message)
        line: int | None = None
        if position is not None:
            message = message[: position.start()]
            # Counted from the line after the opening +++; "end of document" is the last line.
            line = int(position["line"]) + 1 if position["line"] else closing_line - 1
        raise FrontMatterError(f"TOML front matter: {message}", line) from None
    return _mapping(meta)


def _mapping(meta: Any) -> dict[str, Any]:
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        raise FrontMatterError("front matter must be a mapping of keys to values", 2)
    return {str(key).lower(): value for key, value in meta.items()}
