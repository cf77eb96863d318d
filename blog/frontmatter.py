"""Split Markdown files into front matter and body: YAML between `---`, TOML between `+++`."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from typing import Any

import yaml

# PyYAML's C extension (libyaml), when it was built with it: None means the pure Python loader.
FAST_LOADER: type[yaml.SafeLoader] | None = getattr(yaml, "CSafeLoader", None)
# A post's front matter takes a few hundred characters. The parsers build values in Python, and
# 2 MB of them (a file's limit) took a second or two; this bounds them to a few milliseconds.
FRONT_MATTER_MAX = 100_000
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
    if len(source) > FRONT_MATTER_MAX:
        raise FrontMatterError(
            f"the front matter is longer than {FRONT_MATTER_MAX:,} characters "
            f"({len(source):,}): a post's takes a few hundred",
            1,
        )
    body = "".join(lines[end + 1 :])
    meta = _toml(source, closing_line=end + 1) if fence == "+++" else _yaml(source)
    return Document(meta, body, end + 2)


def _yaml(source: str) -> dict[str, Any]:
    """Read YAML front matter with libyaml when PyYAML has it, else (or on any error) in Python.

    libyaml's parser is about ten times faster (the pure one was a quarter of an import's CPU
    time) and builds the same nodes; the values are constructed in Python either way. A file
    it refuses is read again by the pure loader, whose messages and lines the error reports are
    written against: a problem reads the same, with or without libyaml.
    """
    if FAST_LOADER is not None:
        try:
            return _load(source, FAST_LOADER)
        except Exception:  # noqa: BLE001 - the pure loader below says what is wrong, and where
            pass
    return _load(source, yaml.SafeLoader)


def _load(source: str, loader_class: type[yaml.SafeLoader]) -> dict[str, Any]:
    """Load one YAML document with the safe loader given, checking its node graph for cycles."""
    # Compose and construct in two steps, as safe_load does, to check the node graph in between.
    try:
        loader = loader_class(source)
    except yaml.reader.ReaderError as error:  # a control character YAML does not allow
        line = source[: error.position].count("\n") + 2
        raise FrontMatterError(f"YAML front matter: {error.reason}", line) from None
    try:
        try:
            node = loader.get_single_node()
        except RecursionError:
            # PyYAML's composer recurses once per level: "[[[[…" would be a traceback.
            line = _file_line(loader.get_mark())
            raise FrontMatterError("YAML front matter: nested too deeply", line) from None
        if node is None:
            return {}
        cycle = _cycle(node) if "*" in source else None  # only an alias (*name) makes one
        if cycle is not None:
            # `tags: &a [*a]` is a list holding itself: no text, and it sends code into a loop.
            raise FrontMatterError(
                "YAML front matter: an alias refers to itself (a value that contains itself)",
                _file_line(cycle.start_mark),
            )
        try:
            meta = loader.construct_document(node)
        except (ValueError, OverflowError) as error:
            # A scalar that looks like a date or number but is none: 2025-02-30, 10**5000.
            bad = _unconstructable(node)
            where = bad.start_mark if bad is not None else node.start_mark
            value = f" {bad.value!r}" if isinstance(bad, yaml.ScalarNode) else ""
            raise FrontMatterError(
                f"YAML front matter: cannot read the value{value[:80]}: {error}",
                _file_line(where),
            ) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problem = getattr(error, "problem", None) or str(error)
        raise FrontMatterError(f"YAML front matter: {problem}", _file_line(mark)) from None
    finally:
        loader.dispose()
    return _mapping(meta)


def _file_line(mark: yaml.Mark | None) -> int | None:
    """Turn a YAML mark in the front matter into a file line (+1 for 1-based, +1 for the fence)."""
    return mark.line + 2 if mark is not None else None


def _cycle(root: yaml.Node) -> yaml.Node | None:
    """Return a collection node that contains itself (through aliases), or None.

    Iterative, and each node is finished once, so shared aliases (a "billion laughs" file) stay
    linear and deep nesting cannot overflow the stack.
    """
    done: set[int] = set()
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, leaving = stack.pop()
        if leaving:
            on_path.discard(id(node))
            done.add(id(node))
            continue
        if not isinstance(node, yaml.CollectionNode) or id(node) in done:
            continue
        if id(node) in on_path:
            return node
        on_path.add(id(node))
        stack.append((node, True))
        if isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        else:
            children = list(node.value)
        stack.extend((child, False) for child in reversed(children))
    return None


def _unconstructable(root: yaml.Node) -> yaml.Node | None:
    """Find the first scalar that cannot be turned into a value, to name its line."""
    probe = yaml.SafeLoader("")
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.ScalarNode):
            try:
                probe.construct_object(node)
            except (ValueError, OverflowError, yaml.YAMLError):
                return node
        elif isinstance(node, yaml.MappingNode):
            stack.extend(part for pair in reversed(node.value) for part in reversed(pair))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(reversed(node.value))
    return None


def _toml(source: str, closing_line: int) -> dict[str, Any]:
    try:
        meta = tomllib.loads(source)
    except RecursionError:
        # tomllib recurses once per nested array or inline table and says nothing of where.
        raise FrontMatterError("TOML front matter: nested too deeply", None) from None
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
