"""Import Markdown files with Hugo or Jekyll front matter as articles (`flask --app app import`).

Each file is its own transaction: a good file is committed at once and a bad one is rolled back
and reported as `path:line: message`, so one broken file never stops or undoes the rest. The slug
is the file's identity: importing the same file again adds a revision instead of a duplicate.

Trees come from elsewhere (a clone, an archive), so the walk trusts nothing in them: links that
lead out of the folder given are reported and not followed, files over IMPORT_MAX_FILE_BYTES
(2 MB by default) and anything that is not a regular file are reported and not read.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from .articles import (
    Draft,
    add_revision,
    create_article,
    latest_revision,
    same_text,
    split_tags,
)
from .content import slugify
from .extensions import db
from .frontmatter import Document, FrontMatterError, parse
from .models import Article, Revision, Role, User
from .workflow import back_to_draft, enter_review, publish_without_review

MARKDOWN_SUFFIXES = frozenset({".md", ".markdown"})
NO_ACCOUNT = "no account to own the article; create one with `flask --app app user create`"
NO_ADMIN = (
    "no admin account to own the article; create one with "
    "`flask --app app user create EMAIL --name NAME --role admin`"
)
AI_MODEL_MAX = 120  # the column's length
# A long article is 100 kB of Markdown; 2 MB is a mistake (a log, a data dump), never a post.
MAX_FILE_BYTES = 2 * 1024 * 1024
NOT_UTC = "cannot be converted to UTC (it falls outside the years 1 to 9999 there)"
NOTE_MAX = 300

# Jekyll posts are named 2025-04-20-my-post.md: the date, then the slug.
_JEKYLL_NAME = re.compile(r"^(?P<date>\d{4}-\d{2}-\d{2})-(?P<rest>.+)$")
# A top-level `key:` (YAML) or `key =` (TOML) line, the key possibly quoted.
_KEY_LINE = re.compile(r"""^(?P<indent>[ \t]*)["']?(?P<key>[A-Za-z_][\w-]*)["']?[ \t]*[:=]""")
# Jekyll writes "2025-04-20 09:30:00 +0200": the space before the zone is not ISO 8601.
_ZONE_AFTER_SPACE = re.compile(r"\s+(?P<zone>[+-]\d{2}:?\d{2}|Z)$")


# Python 3.11's tomllib has no line attribute, only "(at line N, column M)" in the message.
@dataclass
class ImportedFile:
    """A file that was created, updated or skipped, with the article's slug."""

    path: Path
    slug: str
    status: str = ""  # the article's status afterwards (created and updated files)
    reason: str = ""  # why it was skipped

    def __str__(self) -> str:
        return f"{self.path} ({self.slug or '-'}): {self.reason or self.status}"


@dataclass
class ImportFailure:
    """A problem that stopped a file from being imported."""

    path: Path
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else str(self.path)
        return f"{where}: {self.message}"


@dataclass
class ImportReport:
    """What an import did, file by file."""

    created: list[ImportedFile] = field(default_factory=list)
    updated: list[ImportedFile] = field(default_factory=list)
    skipped: list[ImportedFile] = field(default_factory=list)
    errors: list[ImportFailure] = field(default_factory=list)

    def summary(self) -> str:
        """Return one line such as "3 created, 1 updated, 2 skipped, 1 error"."""
        errors = len(self.errors)
        line = (
            f"{len(self.created)} created, {len(self.updated)} updated, "
            f"{len(self.skipped)} skipped, {errors} error{'' if errors == 1 else 's'}"
        )
        files = len({failure.path for failure in self.errors})
        if files != errors:  # one file may have several problems
            line += f" in {files} file{'' if files == 1 else 's'}"
        return line


class _FileProblems(Exception):
    """Everything wrong with one file, as (line, message) pairs; the file is rolled back."""

    def __init__(self, problems: list[tuple[int | None, str]]) -> None:
        super().__init__(problems)
        self.problems = problems


@dataclass
class _Fields:
    """A file's front matter and body, checked and converted."""

    draft: Draft
    date: datetime | None
    is_draft: bool
    ai_generated: bool
    ai_model: str | None
    author_email: str
    slug_line: int | None


def import_paths(paths: list[Path], author: User | None = None) -> ImportReport:
    """Import Markdown files and folders of them; commit file by file and report on each."""
    report = ImportReport()
    if author is not None and author not in db.session:
        # A rollback expires the author, so it must belong to this session to be reloaded.
        author = db.session.get(User, author.id)
        if author is None:
            raise ValueError("the author given is not in the database")
    has_account = db.session.scalar(select(User.id).limit(1)) is not None
    claimed: dict[str, Path] = {}  # slug -> the file that took it in this run
    for path in _markdown_files([Path(p) for p in paths], report):
        if not has_account:
            report.errors.append(ImportFailure(path, None, NO_ACCOUNT))
            continue
        try:
            bucket, entry = _import_file(path, author, claimed)
            db.session.commit()
        except _FileProblems as problems:
            db.session.rollback()
            report.errors.extend(ImportFailure(path, line, msg) for line, msg in problems.problems)
            continue
        except SQLAlchemyError as error:
            db.session.rollback()
            cause = getattr(error, "orig", None) or error
            report.errors.append(ImportFailure(path, None, f"database error: {cause}"))
            continue
        except Exception as error:  # noqa: BLE001 - a bug met in one file must not stop the rest
            db.session.rollback()
            current_app.logger.exception("importing %s failed", path)
            message = (
                f"could not be imported: an unexpected error ({type(error).__name__}: {error}); "
                "please report it with this file"
            )
            report.errors.append(ImportFailure(path, None, message[:500]))
            continue
        claimed[entry.slug] = path
        getattr(report, bucket).append(entry)
    return report


OUTSIDE = "outside the folder given, not followed"


def _inside(link: Path, root: Path) -> bool:
    """Say whether a link leads to somewhere inside root (a loop of links leads nowhere)."""
    try:
        return link.resolve().is_relative_to(root)
    except (OSError, RuntimeError):  # Python 3.11 raises RuntimeError for a symlink loop
        return False


def _markdown_files(paths: list[Path], report: ImportReport) -> Iterator[Path]:
    """Yield the files to import, in order and once each; note missing paths and section pages."""
    seen: set[Path] = set()

    def wanted(file: Path) -> bool:
        key = file.resolve()
        if key in seen:
            return False
        seen.add(key)
        if file.stem == "_index":
            report.skipped.append(
                ImportedFile(file, "", reason="a Hugo section page (_index), not an article")
            )
            return False
        return True

    for path in paths:
        if path.is_dir():
            root = path.resolve()
            for folder, dirs, files in os.walk(path):  # never descends into linked folders
                # Hidden folders (.git, .obsidian) hold no articles; Jekyll's _posts does.
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in dirs:
                    link = Path(folder) / name
                    if link.is_symlink() and not _inside(link, root):
                        report.skipped.append(
                            ImportedFile(link, "", reason=f"a link to a folder {OUTSIDE}")
                        )
                for name in sorted(files):
                    file = Path(folder) / name
                    if file.suffix.lower() not in MARKDOWN_SUFFIXES:
                        continue
                    if name.startswith(".") or (name.startswith("_") and file.stem != "_index"):
                        continue  # partials and editor files, not posts
                    if file.is_symlink():
                        # A link in a downloaded tree could read any file this account can; one
                        # inside it would import its target a second time, under another slug.
                        where = "in the folder given" if _inside(file, root) else OUTSIDE
                        reason = f"a link to a file {where}"
                        if where != OUTSIDE:
                            reason += "; the file itself is imported under its own name"
                        report.skipped.append(ImportedFile(file, "", reason=reason))
                        continue
                    if wanted(file):
                        yield file
        elif path.is_file() or path.exists():  # a FIFO or a device is reported when read
            # A file named on the command line was asked for, even a _name.md (not an _index).
            if path.suffix.lower() in MARKDOWN_SUFFIXES:
                if wanted(path):
                    yield path
            else:
                report.skipped.append(
                    ImportedFile(path, "", reason="not a Markdown file (.md or .markdown)")
                )
        else:
            report.errors.append(ImportFailure(path, None, "no such file or folder"))


def _import_file(
    path: Path, author: User | None, claimed: dict[str, Path]
) -> tuple[str, ImportedFile]:
    """Create or update the article for one file; return the report bucket and its entry."""
    text = _read(path)
    try:
        document = parse(text)
    except FrontMatterError as error:
        raise _FileProblems([(error.line, error.message)]) from None
    fields = _fields(path, document, _key_lines(text, document))
    slug = fields.draft.slug
    if slug in claimed:
        raise _FileProblems(
            [(fields.slug_line, f"the slug {slug!r} is also {claimed[slug]}'s; set another `slug`")]
        )
    owner = author or _owner(fields.author_email)
    name = _display_name(path)
    article = db.session.scalar(select(Article).filter_by(slug=slug))
    if article is None:
        return "created", ImportedFile(path, slug, status=_create(fields, owner, name))
    if not any(revision.note.startswith("imported from") for revision in article.revisions):
        # Never let a file overwrite an article written in the studio or sent through the API.
        raise _FileProblems(
            [
                (
                    fields.slug_line,
                    f"the slug {slug!r} belongs to an article that was not imported "
                    "from a file; set another `slug`",
                )
            ]
        )
    return _update(path, article, fields, owner, name)


def _create(fields: _Fields, owner: User, name: str) -> str:
    """Write a new article from a file and send it on its way; return its status."""
    article, revision = create_article(
        fields.draft,
        owner,
        ai_generated=fields.ai_generated,
        ai_model=fields.ai_model,
        kind="ai_original" if fields.ai_generated else "import",
        note=f"imported from {name}"[:NOTE_MAX],
    )
    if fields.date is not None:
        article.created_at = fields.date
    if fields.ai_generated:
        # Whatever `draft` says: an AI text is never public before an admin approves it.
        enter_review(article, revision, owner, f"Imported from {name}")
    elif fields.is_draft:
        back_to_draft(article)
    else:
        _publish(article, revision, owner, fields.date)
    return article.status


def _update(
    path: Path, article: Article, fields: _Fields, owner: User, name: str
) -> tuple[str, ImportedFile]:
    """Add a revision to an article imported before, unless the file has not changed."""
    latest = latest_revision(article)
    # An AI label is never lost: a file that drops `ai_generated` still goes through review.
    ai_generated = bool(latest and latest.ai_generated) or fields.ai_generated
    model = fields.ai_model or (latest.ai_model if latest else None) or ""
    draft = replace(fields.draft, ai_generated=ai_generated, ai_model=model if ai_generated else "")
    if latest is not None and same_text(latest, draft):
        if not ai_generated and not fields.is_draft and article.published_revision_id != latest.id:
            # `draft: true` became false with the text untouched: publish what is there.
            _publish(article, latest, owner, None if article.published_at else fields.date)
            return "updated", ImportedFile(path, article.slug, status=article.status)
        return "skipped", ImportedFile(path, article.slug, reason="unchanged")
    revision = add_revision(
        article, draft, owner, kind="import", note=f"imported from {name}"[:NOTE_MAX]
    )
    if ai_generated:
        # The public text (if any) stays up until an admin approves this revision.
        enter_review(article, revision, owner, f"Imported from {name}")
    elif fields.is_draft:
        back_to_draft(article)
    else:
        _publish(article, revision, owner, None if article.published_at else fields.date)
    return "updated", ImportedFile(path, article.slug, status=article.status)


def _publish(article: Article, revision: Revision, owner: User, at: datetime | None) -> None:
    """Publish a human-written revision at `at` (now when None; kept when already published)."""
    publish_without_review(article, revision, owner, at)


def _owner(email: str) -> User:
    """Find who owns a file's article: the front matter's author by e-mail, else the first admin."""
    if email:
        user = db.session.scalar(select(User).where(func.lower(User.email) == email.lower()))
        if user is not None:
            return user
    admin = db.session.scalar(
        select(User).filter_by(role=Role.ADMIN, active=True).order_by(User.id).limit(1)
    )
    if admin is None:
        raise _FileProblems([(None, NO_ADMIN)])
    return admin


def _display_name(path: Path) -> str:
    """Name a file for notes: a Hugo bundle's index.md says which bundle it is."""
    return f"{path.absolute().parent.name}/{path.name}" if path.stem == "index" else path.name


def _read(path: Path) -> str:
    """Read a file as UTF-8 text, refusing what is not a regular file or is over the limit."""
    limit = current_app.config.get("IMPORT_MAX_FILE_BYTES") or MAX_FILE_BYTES
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            # A FIFO would block the import forever, a device (/dev/zero) would never end.
            raise _FileProblems([(None, "not a regular file; only Markdown files are read")])
        with path.open("rb") as handle:
            data = handle.read(limit + 1)  # the file may grow after stat(): read no more
    except OSError as error:
        raise _FileProblems([(None, f"cannot read the file: {error.strerror}")]) from None
    if len(data) > limit:
        size = max(info.st_size, len(data))
        raise _FileProblems(
            [(None, f"too large: {size:,} bytes, over the limit of {limit:,} per file")]
        )
    try:
        # Universal newlines, as read_text would give: \r\n must not make a re-import "changed".
        return data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise _FileProblems([(line, "the file is not UTF-8 text")]) from None


def _key_lines(text: str, document: Document) -> dict[str, int]:
    """Map each front matter key to the file line it is on (top-level keys win over nested)."""
    if document.body_line == 1:  # no front matter
        return {}
    lines = text.lstrip("\ufeff").splitlines()[1 : document.body_line - 2]
    found: dict[str, int] = {}
    for nested in (False, True):
        for number, line in enumerate(lines, start=2):
            match = _KEY_LINE.match(line)
            if match and bool(match["indent"]) == nested:
                found.setdefault(match["key"].lower(), number)
    return found


def _fields(path: Path, document: Document, lines: dict[str, int]) -> _Fields:
    """Check and convert the front matter and body; raise with every problem found."""
    meta = document.meta
    problems: list[tuple[int | None, str]] = []

    def problem(key: str, message: str) -> None:
        problems.append((lines.get(key), f"`{key}` {message}"))

    def wrong(key: str, expected: str) -> None:
        problem(key, f"must be {expected}, not {_kind(meta[key])}")

    title = ""
    if meta.get("title") is None:
        problems.append((lines.get("title", 1), "missing `title` in the front matter"))
    elif (text := _text(meta["title"])) is None:
        wrong("title", "text")
    elif not text.strip():
        problem("title", "is empty")
    else:
        title = text

    summary_key = next((k for k in ("summary", "description") if meta.get(k) is not None), "")
    summary = _text(meta[summary_key]) if summary_key else ""
    if summary is None:
        wrong(summary_key, "text")

    category_key = next((k for k in ("category", "categories") if meta.get(k) is not None), "")
    category = _category(meta[category_key]) if category_key else ""
    if category is None:
        wrong(category_key, "a name or a list of names")

    tags = _tags(meta.get("tags"))
    if tags is None:
        wrong("tags", "a list of names or a comma-separated string")

    # Jekyll keeps unfinished posts in _drafts and hides others with `published: false`.
    is_draft = "_drafts" in path.parts[:-1]
    if meta.get("draft") is not None:
        if isinstance(meta["draft"], bool):
            is_draft = meta["draft"]
        else:
            wrong("draft", "true or false")
    if meta.get("published") is not None:
        if isinstance(meta["published"], bool):
            is_draft = is_draft or not meta["published"]
        else:
            wrong("published", "true or false")

    ai_generated = False
    if meta.get("ai_generated") is not None:
        if isinstance(meta["ai_generated"], bool):
            ai_generated = meta["ai_generated"]
        else:
            wrong("ai_generated", "true or false")
    ai_model = None
    if meta.get("ai_model") is not None:
        ai_model = _text(meta["ai_model"])
        if ai_model is None:
            wrong("ai_model", "text")
        elif len(ai_model) > AI_MODEL_MAX:
            problem("ai_model", f"is longer than {AI_MODEL_MAX} characters")

    # The file name: a bundle is named by its folder, a Jekyll post after its date.
    stem = path.absolute().parent.name if path.stem == "index" else path.stem
    name_date = None
    if (jekyll := _JEKYLL_NAME.match(stem)) and (name_date := _date(jekyll["date"])) is not None:
        stem = jekyll["rest"]

    published_at = name_date
    if meta.get("date") is not None:
        try:
            published_at = _date(meta["date"])
        except OverflowError:  # 0001-01-01T00:00:00+01:00 is in year 0 in UTC
            problem("date", NOT_UTC)
        else:
            if published_at is None:
                wrong("date", "a date such as 2025-04-20 or 2025-04-20T09:30:00+02:00")

    slug = ""
    if meta.get("slug") is not None:
        given = _text(meta["slug"])
        if given is None:
            wrong("slug", "text")
        elif not (slug := slugify(given)):
            problem("slug", "has no letters or digits to make a URL from")
    elif not (slug := slugify(stem) or slugify(title)):
        problems.append((lines.get("title", 1), "cannot make a URL slug; add a `slug`"))

    body = document.body.lstrip("\n")
    if not body.strip():
        problems.append((document.body_line, "the article has no text after the front matter"))

    draft = Draft(
        title=title,
        body=body,
        summary=summary or "",
        category=category or "",
        tags=tags or [],
        slug=slug,
    )
    if not problems:
        # The limits a form would enforce (lengths, the number of tags), on the right lines.
        where = {
            "title": lines.get("title"),
            "body": document.body_line,
            "slug": lines.get("slug"),
            "tags": lines.get("tags"),
            "category": lines.get(category_key),
        }
        problems.extend((where[key], message) for key, message in draft.problems().items())
    if problems:
        raise _FileProblems(sorted(problems, key=lambda p: (p[0] is None, p[0] or 0)))

    author = meta.get("author")
    return _Fields(
        draft=draft,
        date=published_at,
        is_draft=is_draft,
        ai_generated=ai_generated,
        ai_model=ai_model,
        author_email=author.strip() if isinstance(author, str) and "@" in author else "",
        slug_line=lines.get("slug"),
    )


def _text(value: object) -> str | None:
    """Return text for a string or a number (YAML reads `title: 1984` as a number), else None."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _category(value: object) -> str | None:
    """Return the category: a list's first item, or a string (its first comma-separated item)."""
    if isinstance(value, list):
        return _text(value[0]) if value else ""
    text = _text(value)
    return None if text is None else text.split(",")[0].strip()


def _tags(value: object) -> list[str] | None:
    """Return the tags from a list or a comma-separated string, None for anything else."""
    if value is None:
        return []
    if isinstance(value, str):
        return split_tags(value)
    if isinstance(value, list):
        names = [_text(item) for item in value]
        return None if any(name is None for name in names) else split_tags(names)
    return None  # `tags: 5` is a mistake, not a tag named "5"


def _date(value: object) -> datetime | None:
    """Read a front matter date as aware UTC (a naive time is UTC, a bare date is midnight).

    Return None for what is not a date; raise OverflowError for one with no UTC equivalent.
    """
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(_ZONE_AFTER_SPACE.sub(r"\g<zone>", value.strip()))
        except ValueError:
            return None
    else:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _kind(value: object) -> str:
    """Name a value's type the way a front matter author would."""
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        odd = next((item for item in value if _text(item) is None), None)
        if odd is None:
            return "a list"
        # One level only: a list may hold itself, or lists nested a thousand deep.
        return "a list holding a list" if isinstance(odd, list) else f"a list holding {_kind(odd)}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, datetime | date):
        return "a date"
    if isinstance(value, str):
        return "text"
    return type(value).__name__
