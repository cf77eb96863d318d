"""Import Markdown files with Hugo or Jekyll front matter as articles (`flask --app app import`).

Files are read, checked and rendered (in worker processes when there are many), then written
BATCH_SIZE to a transaction. A bad file is left out of its batch and reported as `path:line:
message`, so one broken file never stops or undoes the rest. The slug is the file's identity:
importing the same file again adds a revision instead of a duplicate.

Trees come from elsewhere (a clone, an archive), so the walk trusts nothing in them: links that
lead out of the folder given are reported and not followed, files over IMPORT_MAX_FILE_BYTES
(2 MB by default) and anything that is not a regular file are reported and not read.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import re
import signal
import stat
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from contextlib import closing, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from flask import current_app
from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from . import clock, pagecache
from .articles import (
    SLUG_MAX,
    Draft,
    add_revision,
    create_article,
    get_category,
    get_tags,
    latest_revision,
    name_as_approved,
    revision_values,
    same_text,
    split_tags,
)
from .content import image_hashes, render, slugify, term_slug, universal_newlines
from .database import in_chunks
from .extensions import db
from .frontmatter import Document, FrontMatterError, parse
from .media import MediaError, Processed, max_bytes, process, save
from .models import (
    Article,
    ArticleTag,
    ReviewEvent,
    Revision,
    RevisionImage,
    Role,
    Status,
    Tag,
    User,
    stored_tag_names,
)
from .search import search_index
from .storage import StorageUnavailable
from .workflow import back_to_draft, enter_review, publish_without_review

MARKDOWN_SUFFIXES = frozenset({".md", ".markdown"})
NO_ACCOUNT = (
    "no account to own the articles, so nothing was imported; create one with "
    "`flask --app app user create EMAIL --name NAME --role admin`"
)
NO_ADMIN_NOTE = (
    "no admin account: only files whose `author` is an account's e-mail can be imported; "
    "create an admin with `flask --app app user create EMAIL --name NAME --role admin`, "
    "or name the owner with --author"
)
NO_ADMIN = "no owner: no `author` with an account here, and no admin (see the note above)"
STORAGE_STOPPED = (
    "the media storage failed ({error}), so the import stopped with {done} of {total} files "
    "done, before the batch that begins with {path}; once it works, run the import again: the "
    "files already imported are skipped"
)
# One transaction per batch: a commit per file was most of the time of a large import, and a
# batch of 200 keeps a writer's lock short (well under a second) for the site running beside it.
BATCH_SIZE = 200
# The last files are written after the workers are done, while a core idles: a short batch.
LAST_BATCH = BATCH_SIZE // 4
# PostgreSQL's lock table holds 64 locks a connection by default (max_locks_per_transaction).
PICTURES_PER_COMMIT = 32
# Below this many files a pool of workers costs more to start than it saves (measured: bench/).
POOL_THRESHOLD = 64
# Workers take files PREPARE_CHUNK at a time, and run about PREPARED_AHEAD files ahead of the
# writer (whole chunks, and a chunk per worker at least): enough to keep them busy while a batch
# is written, and a bound on the memory prepared files hold when the writer is the slower (a slow
# disk, a machine with many cores).
PREPARE_CHUNK = 16
PREPARED_AHEAD = 2 * BATCH_SIZE
# Pictures are prepared in the workers too, and a post's can weigh tens of megabytes (a photo
# is 3-4 MB written again, with its copies): 400 photo posts ahead of the writer, and 200 in a
# batch, would hold gigabytes. So once a file has pictures, workers run only as far ahead as
# PREPARED_PICTURE_BYTES allows (a file per task), and a batch ends at BATCH_PICTURE_BYTES.
PREPARED_PICTURE_BYTES = 128 * 2**20
BATCH_PICTURE_BYTES = 64 * 2**20
# Workers run this much nicer than the import: the writer is its critical path and should not
# wait for a core while workers already ahead of it take one, and a site served from the same
# machine keeps its readers first. An idle core is still the workers': niceness only decides who
# waits when cores are short (bench/README.md, "The import phase").
WORKER_NICENESS = 10
# While an import runs, its writer and workers collect cyclic garbage every this many new
# objects, not 700 (_fewer_collections). A worker's parse makes ~100 tokens a file: collecting
# every 700 cost 5-17 % of preparing a file in one process (timings here vary that much), every
# 20,000 a few %. Reference counting frees the tokens anyway; the collector is for cycles.
IMPORT_GC_THRESHOLD = 20_000
# From this many files the search index is set for bulk writes (search_index().bulk_loading):
# below it, the few segments written merge as cheaply either way.
BULK_THRESHOLD = 1_000
AI_MODEL_MAX = 120  # the column's length
# A long article is 100 kB of Markdown; 2 MB is a mistake (a log, a data dump), never a post.
MAX_FILE_BYTES = 2 * 1024 * 1024
NOT_UTC = "cannot be converted to UTC (it falls outside the years 1 to 9999 there)"
NOTE_MAX = 300
CTRL_C_NOTE = "Ctrl-C: stopping once the batch being written is saved"

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
    live: bool = False  # readers still have an approved text while `status` is another

    @property
    def where(self) -> str:
        return f"{self.path} ({self.slug or '-'})"

    def __str__(self) -> str:
        said = self.reason or self.status
        if self.live:
            said += " (the published version stays live)"
        return f"{self.where}: {said}"


@dataclass
class ImportFailure:
    """A problem that stopped a file from being imported."""

    path: Path
    line: int | None
    message: str

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}" if self.line is not None else str(self.path)

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass
class ImportReport:
    """What an import did, file by file."""

    created: list[ImportedFile] = field(default_factory=list)
    updated: list[ImportedFile] = field(default_factory=list)
    skipped: list[ImportedFile] = field(default_factory=list)
    errors: list[ImportFailure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # said once, before any file was read
    warnings: list[str] = field(default_factory=list)  # "path: message"; the file was imported
    stopped: str = ""  # why the import stopped before the end (a problem every file would meet)

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
    # Said about the file without stopping it (a date taken from the name, a missing image).
    warnings: list[str] = field(default_factory=list)
    # The pictures the post shows, read and re-encoded (by _post_images), stored by the writer.
    images: list[tuple[str, Processed]] = field(default_factory=list)


class ImportBlocked(Exception):
    """A problem that stops every file (no account to own them): said once, before any is read."""


@dataclass
class _Stored:
    """A new article's first revision as create_article stores it, and the names it refers to.

    Computed where the file is prepared (a worker), so the writer only looks up ids.
    """

    revision: dict[str, Any]  # its columns (revision_values), digest included
    tags: list[tuple[str, str]]  # each tag's (slug, name), in order
    category_key: str  # the category's slug ("" for none): one lookup per name in a run
    images: list[str] = field(default_factory=list)  # the image hashes the body names


@dataclass
class _Prepared:
    """A file read, checked and rendered outside the database (possibly in a worker process)."""

    path: Path
    fields: _Fields | None = None
    html: str = ""
    minutes: int = 1
    problems: list[tuple[int | None, str]] = field(default_factory=list)
    stored: _Stored | None = None  # None when the body changed since (its pictures were stored)

    @property
    def picture_bytes(self) -> int:
        """Return the bytes its pictures hold, written again with their copies."""
        if self.fields is None:
            return 0
        return sum(
            len(picture.data) + sum(map(len, picture.variants.values()))
            for _src, picture in self.fields.images
        )


Progress = Callable[[int, int, "ImportReport"], None]


def import_paths(
    paths: list[Path],
    author: User | None = None,
    *,
    progress: Progress | None = None,
    notes: Callable[[str], None] | None = None,
) -> ImportReport:
    """Import Markdown files and folders of them, BATCH_SIZE files per transaction.

    A problem that affects every file is said once, before any file is read: ImportBlocked
    when nothing could be imported, `notes` for what stops some files. `progress(done, total,
    report)` is called before the first file and after each batch is written.
    """
    report = ImportReport()
    if author is not None and author not in db.session:
        # A rollback expires the author, so it must belong to this session to be reloaded.
        author = db.session.get(User, author.id)
        if author is None:
            raise ValueError("the author given is not in the database")
    for note in _preflight(author):
        report.notes.append(note)
        if notes is not None:
            notes(note)
    files = list(_markdown_files([Path(p) for p in paths], report))
    if progress is not None:
        progress(0, len(files), report)
    run = _Run(author, report)
    done = 0
    with (
        _fewer_collections(),
        _bulk_loading(len(files) >= BULK_THRESHOLD),
        closing(_prepare_all(files)) as prepared,
    ):
        for batch in _batches(prepared, BATCH_SIZE, last=LAST_BATCH, total=len(files)):
            # Ctrl-C waits for the batch, and its count: cut off mid-statement, a batch's
            # connection kept the write lock.
            with _ctrl_c_held(notes):
                try:
                    run.import_batch(batch)
                except StorageUnavailable as error:  # the next picture would fail the same way
                    db.session.rollback()
                    report.stopped = STORAGE_STOPPED.format(
                        error=error, done=done, total=len(files), path=batch[0].path
                    )
                    break
                done += len(batch)
                if progress is not None:  # once a batch is written: the counts are the bar's
                    progress(done, len(files), report)
    return report


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """Spare the import most of the cyclic GC's work, and give the process its settings back.

    The objects alive before it (the app, its metadata) are frozen: the full collections an
    import triggers walked them again and again, in this process and in the workers it forks.
    And the import allocates steadily and frees little before a batch is written (the files
    prepared ahead, a batch's rows), so a collection every 700 new objects found next to
    nothing: every IMPORT_GC_THRESHOLD instead. Each saved 2-3 % of a serial import's
    instructions (callgrind), and more of its time: a walk misses the cache. A process that
    froze objects already (a server before it forks) keeps them frozen.
    """
    thresholds = gc.get_threshold()
    gc.set_threshold(IMPORT_GC_THRESHOLD)
    frozen_here = not gc.get_freeze_count()
    if frozen_here:
        gc.freeze()
    try:
        yield
    finally:
        if frozen_here:
            gc.unfreeze()
        gc.set_threshold(*thresholds)


@contextmanager
def _bulk_loading(large: bool) -> Iterator[None]:
    """Make the search index cheaper to write for a large import, and put it back after.

    Each change is committed on its own: a batch rolled back never takes the setting with it,
    and an import that stops halfway (an error, Ctrl-C) still leaves the index as it was.
    """
    if not large:
        yield
        return
    index = search_index()
    index.bulk_loading(True)
    db.session.commit()
    try:
        yield
    finally:
        with _ctrl_c_held():
            db.session.rollback()  # whatever an interrupted batch left unfinished
            index.bulk_loading(False)
            db.session.commit()


def _preflight(author: User | None) -> list[str]:
    """Check who will own the articles before reading any file; raise when nobody can."""
    if author is not None:
        return []
    if db.session.scalar(select(User.id).where(User.active.is_(True)).limit(1)) is None:
        raise ImportBlocked(NO_ACCOUNT)
    if _first_admin() is None:
        return [NO_ADMIN_NOTE]
    return []


def _batches(
    items: Iterator[_Prepared],
    size: int,
    picture_bytes: int = BATCH_PICTURE_BYTES,
    *,
    last: int = 0,
    total: int = 0,
) -> Iterator[list[_Prepared]]:
    """Group prepared files into lists of `size`, or fewer files once their pictures hold
    `picture_bytes`; the last `last` of `total` files make a batch of their own.

    The last batch is written after the workers are done, on one core while the other idles:
    a short one ends the import sooner.
    """
    batch: list[_Prepared] = []
    held = 0
    tail = total - last if 0 < last < total else -1  # the count after which the tail starts
    for seen, item in enumerate(items, start=1):
        batch.append(item)
        held += item.picture_bytes
        if len(batch) == size or held >= picture_bytes or seen == tail:
            yield batch
            batch, held = [], 0
    if batch:
        yield batch


class _Lookahead:
    """How far workers may prepare files ahead of the writer: a bound on the memory held.

    Files of text are small: chunks of PREPARE_CHUNK, and PREPARED_AHEAD files ahead. Pictures
    are not, and nothing says which files have them before they are read: the first tasks are a
    chunk per worker of a file or two, and once a file has pictures, a file per task and only
    as many ahead as PREPARED_PICTURE_BYTES holds of the heaviest file seen (a task per worker
    at least, so none of them waits). The tasks given out for text by then are taken back or
    cut short (_prepare_all): photo posts after 400 text posts were all prepared ahead.
    """

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.chunks_most = max(workers, -(-PREPARED_AHEAD // PREPARE_CHUNK))
        self.heaviest: int | None = None  # picture bytes of the heaviest file seen; None yet

    @property
    def chunk_size(self) -> int:
        """Return how many files the next task takes."""
        if self.heaviest is None:
            return 2
        return 1 if self.heaviest else PREPARE_CHUNK

    def room(self, chunks: int, files: int) -> bool:
        """Say whether another task may start, with `chunks` tasks of `files` under way."""
        if chunks < self.workers:
            return True
        if self.heaviest is None or chunks >= self.chunks_most:
            return False
        return (files + self.chunk_size) * self.heaviest <= PREPARED_PICTURE_BYTES

    def saw(self, prepared: list[_Prepared]) -> bool:
        """Note a task's files: the heaviest one sets how far ahead the workers may run.

        Return whether these are the first pictures seen: the tasks already given out were
        sized for text.
        """
        heaviest = max((item.picture_bytes for item in prepared), default=0)
        first = heaviest > 0 and not self.heaviest
        self.heaviest = max(self.heaviest or 0, heaviest)
        return first


def _prepare_all(files: list[Path]) -> Iterator[_Prepared]:
    """Read, check and render the files, in order; in worker processes when there are many.

    Parsing YAML and rendering Markdown are most of an import's CPU time and need no database,
    so workers do them while this process writes (IMPORT_WORKERS, by default one per core, at
    most 4; 0 for none); a pool costs its start-up, so a few files are prepared here.
    """
    limit = current_app.config.get("IMPORT_MAX_FILE_BYTES") or MAX_FILE_BYTES
    workers = current_app.config.get("IMPORT_WORKERS")
    if workers is None:  # this process mostly waits for them: a batch's writes take little
        workers = min(4, os.cpu_count() or 1)
    if len(files) < POOL_THRESHOLD or workers < 1:
        for path in files:
            yield _prepare(path, limit)
        return
    waiting = deque(files)
    lookahead = _Lookahead(workers)
    in_flight: deque[tuple[Future[list[_Prepared]], list[Path]]] = deque()  # tasks, in order
    guard = threading.RLock()  # in_flight, between this thread and the pool's (finished())
    context = multiprocessing.get_context()
    stop, pictures_seen = context.Event(), context.Event()
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=_start_worker, initargs=(stop, pictures_seen)
    ) as pool:

        def finished(task: Future[list[_Prepared]]) -> None:
            # In the pool's thread, as soon as a task is done (the writer may be busy): the
            # first pictures take back the tasks not started, and cut short those under way;
            # their files go again, a file a task, as far ahead as their bytes allow.
            if task.cancelled() or task.exception() is not None:
                return
            if lookahead.saw(task.result()):
                with guard:
                    waiting_tasks = list(in_flight)
                for later, _files in reversed(waiting_tasks):  # the unstarted ones are last
                    if not later.cancel():
                        break

        def give_out(chunk: list[Path], first: bool = False) -> None:
            # A task, noted in order (first: ahead of those given out already), and watched.
            task = pool.submit(_prepare_chunk, _prepare, chunk, limit)
            (in_flight.appendleft if first else in_flight.append)((task, chunk))
            task.add_done_callback(finished)

        def start_tasks() -> None:
            while in_flight and in_flight[-1][0].cancelled():  # taken back: in order again
                waiting.extendleft(reversed(in_flight.pop()[1]))
            # Not Executor.map: it hands every file out at once (Python 3.14 adds `buffersize`).
            while waiting and lookahead.room(len(in_flight), sum(len(f) for _t, f in in_flight)):
                size = min(lookahead.chunk_size, len(waiting))
                give_out([waiting.popleft() for _ in range(size)])

        try:
            with _ctrl_c_deferred(), guard:  # the first tasks start the workers
                start_tasks()
            while True:
                with guard:
                    start_tasks()
                    if not in_flight:
                        break
                    task = in_flight[0][0]
                try:
                    prepared = task.result()
                except CancelledError:  # taken back before it started: start_tasks has it
                    continue
                with guard:
                    chunk = in_flight.popleft()[1]
                    for path in reversed(chunk[len(prepared) :]):  # left once pictures showed
                        give_out([path], first=True)  # next, before the later tasks
                yield from prepared
        finally:  # stopped early (closed, an error, Ctrl-C): files not yet started are dropped
            stop.set()  # and the rest of each chunk under way (_prepare_chunk)
            with _ctrl_c_held():
                pool.shutdown(cancel_futures=True)


def _prepare_chunk(
    prepare: Callable[[Path, int], _Prepared], paths: list[Path], limit: int
) -> list[_Prepared]:
    """Prepare a few files in a worker: one task, and one answer to unpickle, for several.

    `prepare` is _prepare (or a test's stand-in), sent by name with each task: a worker started
    by spawn or forkserver (macOS, Python 3.14's Linux default) imports this module afresh, where
    a stand-in set in this process is not. Once the import stops, the rest of the chunk is left:
    a chunk of posts with large pictures takes many seconds, and stopping waits for it. Once a
    worker has prepared a file with pictures, every chunk stops after the file it is on (one
    file, for a chunk not begun), and the import gives the rest out again a file a task.
    """
    prepared: list[_Prepared] = []
    for path in paths:
        if _stopped is not None and _stopped.is_set():
            break
        if prepared and _pictures_seen is not None and _pictures_seen.is_set():
            break
        prepared.append(prepare(path, limit))
        if prepared[-1].picture_bytes and _pictures_seen is not None:
            _pictures_seen.set()  # every worker's chunk stops after its file under way
    return prepared


_stopped: Any = None  # in a worker: the import's stop event (_start_worker)
_pictures_seen: Any = None  # in a worker: set once a prepared file had pictures


def _start_worker(stopped: Any, pictures_seen: Any = None) -> None:
    """Leave Ctrl-C to the import, note its stop event, and lower this worker's priority.

    A terminal sends Ctrl-C to the whole process group, workers included; the import decides
    what stops and when (_ctrl_c_held), and an interrupted worker only printed a traceback.
    Niceness goes up by WORKER_NICENESS. The collector's threshold is the import's (a forked
    worker has it already; one started by spawn or forkserver starts from Python's default).
    """
    global _stopped, _pictures_seen  # noqa: PLW0603 - one per worker, set as it starts
    _stopped, _pictures_seen = stopped, pictures_seen
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):  # started with Ctrl-C blocked (_ctrl_c_deferred):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # a press meanwhile is dropped
    if hasattr(os, "nice"):
        os.nice(WORKER_NICENESS)
    gc.set_threshold(IMPORT_GC_THRESHOLD)


@contextmanager
def _ctrl_c_deferred() -> Iterator[None]:
    """Block Ctrl-C while the pool starts its workers; a press meanwhile arrives after.

    A press that broke into the pool's start left it half started: its shutdown failed, or
    hung. Blocked, not handled, because a worker inherits the mask (fork and exec keep it): one
    that spawn or forkserver starts imports the app before its initializer (_start_worker) can
    ignore Ctrl-C, and a press then ended it with a traceback; now the press waits, and the
    initializer drops it. multiprocessing starts its resource tracker the same way. The pool's
    threads, started here too, keep Ctrl-C blocked: it is the main thread's to handle.
    """
    if not hasattr(signal, "pthread_sigmask"):  # Windows: no signal masks
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


@contextmanager
def _ctrl_c_held(notes: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold Ctrl-C off while a step runs whole, then raise it, unless the step raised already.

    Cut off halfway, these steps leave worse than an interrupted import. A batch stopped in the
    middle of a statement kept its connection, and SQLite's write lock, until its traceback was
    gone: the cleanup waited 10 s for the lock, failed, and left the search index's bulk
    setting. A pool's shutdown cut short can hang the exit for ever (CPython 3.11), leaving the
    workers behind. No press breaks in, however many: a database that stops answering holds the
    import until its own timeout (SQLite's busy timeout; PostgreSQL's statement_timeout, where
    set), or until the command is killed. `notes` is told of the first press.

    Only the main thread may set a signal handler; in another one (a test's) this holds
    nothing, nor where Ctrl-C is ignored already (a job started with `&` or nohup).
    """
    main = threading.current_thread() is threading.main_thread()
    if not main or signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        yield
        return
    pressed: list[int] = []

    def press(number: int, _frame: object) -> None:
        pressed.append(number)  # first: a press while the note is written runs this again
        if len(pressed) == 1 and notes is not None:
            notes(CTRL_C_NOTE)

    held = signal.signal(signal.SIGINT, press)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_DFL if held is None else held)
    if pressed:
        raise KeyboardInterrupt


def _prepare(path: Path, limit: int) -> _Prepared:
    """Read, check and render one file; never touches the database (it runs in a worker)."""
    try:
        text = _read(path, limit)
        try:
            document = parse(text)
        except FrontMatterError as error:
            raise _FileProblems([(error.line, error.message)]) from None
        fields = _post_images(path, _fields(path, document, _key_lines(text, document)))
        rendered = render(fields.draft.body)
        return _Prepared(path, fields, rendered.html, rendered.minutes, stored=_stored(fields))
    except _FileProblems as problems:
        return _Prepared(path, problems=problems.problems)
    except Exception as error:  # noqa: BLE001 - a bug met in one file must not stop the rest
        return _Prepared(path, problems=[(None, _unexpected(error))])


def _stored(fields: _Fields) -> _Stored:
    """Compute what a new article's first revision stores, as create_article would."""
    draft = replace(
        fields.draft,
        ai_generated=fields.ai_generated,
        ai_model=(fields.ai_model or "") if fields.ai_generated else "",
    )
    values = revision_values(draft)
    tags = [(term_slug(name), name) for name in stored_tag_names(values["tags"])]
    category = term_slug(values["category_name"])
    return _Stored(values, tags, category, image_hashes(values["body"]))


def _unexpected(error: Exception) -> str:
    """Say that a bug stopped one file, in a message the user can report."""
    message = (
        f"could not be imported: an unexpected error ({type(error).__name__}: {error}); "
        "please report it with this file"
    )
    return message[:500]


class _Run:
    """One import: the slugs taken so far, the owners and names looked up, the batches written."""

    def __init__(self, author: User | None, report: ImportReport) -> None:
        self.author = author
        self.report = report
        self.claimed: dict[str, Path] = {}  # slug -> the file that took it in this run
        self.owners: dict[str, User] = {}
        self.categories: dict[str, int | None] = {}
        self.tags: dict[str, int] = {}

    def import_batch(self, batch: list[_Prepared]) -> None:
        """Write a batch in one transaction: new articles in bulk, the rest file by file.

        When the bulk write fails (a database error, a bug), the batch is rolled back and
        written again file by file, each in its own savepoint, so only the bad file is lost.
        """
        _store_post_images(batch, self.report)
        claimed = dict(self.claimed)
        entries: list[tuple[str, ImportedFile] | ImportFailure] = []
        try:
            fresh = self._classify(batch, entries)
            if fresh:
                _create_in_bulk(fresh, self)
            db.session.commit()
        except Exception as error:  # noqa: BLE001 - retried file by file, which names the file
            db.session.rollback()
            current_app.logger.exception("batch write failed (%s); retrying file by file", error)
            self.claimed, self.categories, self.tags = claimed, {}, {}
            entries = [entry for item in batch for entry in self._one_by_one(item)]
            db.session.commit()
        for entry in entries:
            if isinstance(entry, ImportFailure):
                self.report.errors.append(entry)
            else:
                getattr(self.report, entry[0]).append(entry[1])

    def _classify(
        self, batch: list[_Prepared], entries: list[tuple[str, ImportedFile] | ImportFailure]
    ) -> list[_New]:
        """Write updates one by one (in savepoints); return the new articles to write in bulk."""
        existing = _existing_slugs([item.fields.draft.slug for item in batch if item.fields])
        fresh: list[_New] = []
        for item in batch:
            if item.fields is None:
                entries.extend(ImportFailure(item.path, line, msg) for line, msg in item.problems)
                continue
            slug = item.fields.draft.slug
            if slug in self.claimed or slug in existing or len(slug) > SLUG_MAX:
                entries.extend(self._one_by_one(item))
                continue
            try:
                owner = self._owner(item.fields.author_email)
            except _FileProblems as problems:
                entries.extend(
                    ImportFailure(item.path, line, msg) for line, msg in problems.problems
                )
                continue
            self.claimed[slug] = item.path
            new = _New(item, owner)
            fresh.append(new)
            entries.append(("created", new.entry))
        return fresh

    def _one_by_one(self, item: _Prepared) -> list[tuple[str, ImportedFile] | ImportFailure]:
        """Import one file through the domain functions, in a savepoint of its own."""
        if item.fields is None:
            return [ImportFailure(item.path, line, message) for line, message in item.problems]
        savepoint = db.session.begin_nested()
        try:
            bucket, entry = _import_file(item.path, item.fields, self.author, self.claimed)
            savepoint.commit()
        except _FileProblems as problems:
            savepoint.rollback()
            return [ImportFailure(item.path, line, msg) for line, msg in problems.problems]
        except SQLAlchemyError as error:
            savepoint.rollback()
            cause = getattr(error, "orig", None) or error
            return [ImportFailure(item.path, None, f"database error: {cause}")]
        except Exception as error:  # noqa: BLE001 - a bug met in one file must not stop the rest
            savepoint.rollback()
            current_app.logger.exception("importing %s failed", item.path)
            return [ImportFailure(item.path, None, _unexpected(error))]
        self.claimed[entry.slug] = item.path
        return [(bucket, entry)]

    def _owner(self, email: str) -> User:
        """Find a file's owner once per e-mail for the whole run."""
        if self.author is not None:
            return self.author
        if email.lower() not in self.owners:
            self.owners[email.lower()] = _owner(email)
        return self.owners[email.lower()]

    def category_id(self, name: str, key: str | None = None) -> int | None:
        """Find or create a category once per name (its slug, `key`) for the whole run."""
        if key is None:
            key = term_slug(" ".join(name.split()))
        if key not in self.categories:
            category = get_category(name)
            if category is not None and category.id is None:
                db.session.flush()
            self.categories[key] = category.id if category is not None else None
        return self.categories[key]

    def tag_ids(self, tags: list[tuple[str, str]]) -> None:
        """Look up a batch's tags, (slug, name) pairs, in one query; create those the blog lacks."""
        wanted: dict[str, str] = {}
        for slug, name in tags:  # a new tag is named as its first file says, as one at a time
            wanted.setdefault(slug, name)
        unknown = [slug for slug in wanted if slug not in self.tags]
        for chunk in in_chunks(unknown):
            found = select(Tag.slug, Tag.id).where(Tag.slug.in_(chunk))
            self.tags.update((slug, tag_id) for slug, tag_id in db.session.execute(found))
        missing = [wanted[slug] for slug in unknown if slug not in self.tags]
        if missing:  # created together: one statement for the batch, not one per tag
            self.tags.update((tag.slug, tag.id) for tag in get_tags(missing))

    def tag_id(self, slug: str) -> int:
        """Return a tag's id (tag_ids has looked it up)."""
        return self.tags[slug]


@dataclass
class _New:
    """A file that creates an article, with everything its rows need."""

    item: _Prepared
    owner: User
    entry: ImportedFile = field(init=False)

    def __post_init__(self) -> None:
        assert self.item.fields is not None
        self.entry = ImportedFile(self.item.path, self.item.fields.draft.slug)


def _existing_slugs(slugs: list[str]) -> set[str]:
    """Return which of these slugs articles already have."""
    found: set[str] = set()
    for chunk in in_chunks(slugs):
        found.update(db.session.scalars(select(Article.slug).where(Article.slug.in_(chunk))))
    return found


def _create_in_bulk(fresh: list[_New], run: _Run) -> None:
    """Write new articles with a few multi-row statements instead of a dozen per file.

    The rows are those create_article, enter_review and publish_without_review write for one
    file (revision 1, its digest, seal and image hashes, the review event of an AI file, the
    public copy with the HTML rendered beforehand), and the published ones are indexed in one
    go. They go through the tables, not the ORM: the ORM's bulk insert costs more per row than
    SQLite's.
    """
    now = clock.now()
    article_rows: list[dict[str, Any]] = []
    revision_rows: list[dict[str, Any]] = []
    stores: list[_Stored] = []
    for new in fresh:
        item, fields = new.item, new.item.fields
        assert fields is not None
        stored = item.stored or _stored(fields)
        revision = stored.revision
        stores.append(stored)
        published = not fields.ai_generated and not fields.is_draft
        if fields.ai_generated:
            status = Status.IN_REVIEW
        elif fields.is_draft:
            status = Status.DRAFT
        else:
            status = Status.SCHEDULED if (fields.date or now) > now else Status.PUBLISHED
        new.entry.status = status
        article_rows.append(
            {
                "slug": fields.draft.slug,
                "author_id": new.owner.id,
                "status": status,
                "ai_generated": revision["ai_generated"],
                "ai_model": revision["ai_model"],
                "title": revision["title"],
                "summary": revision["summary"],
                "category_id": run.category_id(revision["category_name"], stored.category_key),
                "body": revision["body"],
                "body_html": item.html,
                "reading_minutes": item.minutes,
                "published_at": (fields.date or now) if published else None,
                "reviewed_by_id": new.owner.id if published else None,
                "reviewed_at": now if published else None,
                "created_at": fields.date or now,
                "updated_at": now,
                "version": 3 if published else 2,
            }
        )
        revision_rows.append(
            {
                **revision,
                "number": 1,
                "kind": "ai_original" if fields.ai_generated else "import",
                "note": f"imported from {_display_name(item.path)}"[:NOTE_MAX],
                "created_by_id": new.owner.id,
                "created_at": now,
                "sealed_at": now if published or fields.ai_generated else None,
            }
        )
    articles, revisions = Article.__table__, Revision.__table__
    # RETURNING the slug (and a revision's article) to match the new ids: asking for them in
    # the order given makes SQLAlchemy send SQLite one INSERT per row.
    by_slug = dict(
        db.session.execute(
            insert(articles).returning(articles.c.slug, articles.c.id), article_rows
        ).all()
    )
    article_ids = [by_slug[row["slug"]] for row in article_rows]
    for article_id, row in zip(article_ids, revision_rows, strict=True):
        row["article_id"] = article_id
    by_article = dict(
        db.session.execute(
            insert(revisions).returning(revisions.c.article_id, revisions.c.id), revision_rows
        ).all()
    )
    run.tag_ids([pair for stored in stores for pair in stored.tags])
    images = [
        {"revision_id": by_article[article_id], "sha256": digest}
        for article_id, stored in zip(article_ids, stores, strict=True)
        for digest in stored.images
    ]
    links, events, public = [], [], []
    # Categories and tags by slug, as the first public file spells them (name_as_approved).
    categories: dict[str, str] = {}
    tag_names: dict[str, str] = {}
    for new, article_id, row, stored in zip(fresh, article_ids, revision_rows, stores, strict=True):
        revision_id = by_article[article_id]
        links += [
            {"article_id": article_id, "tag_id": run.tag_id(slug), "position": position}
            for position, (slug, _name) in enumerate(stored.tags)
        ]
        if new.entry.status == Status.IN_REVIEW:
            events.append(
                {
                    "article_id": article_id,
                    "revision_id": revision_id,
                    "actor_id": new.owner.id,
                    "action": "submit",
                    "comment": f"Imported from {_display_name(new.item.path)}",
                    "created_at": now,
                    "digest": row["digest"],
                }
            )
        elif new.entry.status != Status.DRAFT:
            public.append({"article": article_id, "revision": revision_id})
            if stored.category_key:  # slugs worked out once, when the file was prepared
                categories.setdefault(stored.category_key, row["category_name"])
            for slug, name in stored.tags:
                tag_names.setdefault(slug, name)
    if images:
        db.session.execute(insert(RevisionImage.__table__), images)
    if links:
        db.session.execute(insert(ArticleTag.__table__), links)
    if events:
        db.session.execute(insert(ReviewEvent.__table__), events)
    if public:
        db.session.execute(
            update(articles)
            .where(articles.c.id == bindparam("article"))
            .values(published_revision_id=bindparam("revision")),
            public,
        )
        name_as_approved(categories, tag_names, [row["article"] for row in public])
        search_index().add_new([row["article"] for row in public])
        pagecache.public_changed()


OUTSIDE = "outside the folder given, not followed"
TAKEN_DOWN = (
    "unchanged, and taken down by an admin: it comes back only through review (a changed file "
    "is submitted for it)"
)


def _inside(link: Path, root: Path) -> bool:
    """Say whether a link leads to somewhere inside root (a loop of links leads nowhere)."""
    try:
        return link.resolve().is_relative_to(root)
    except (OSError, RuntimeError):  # Python 3.11 raises RuntimeError for a symlink loop
        return False


def _markdown_files(paths: list[Path], report: ImportReport) -> Iterator[Path]:
    """Yield the files to import, in order and once each; note missing paths and section pages.

    A folder's files are judged by name with string operations, and a Path is made only for
    those kept: a Path per file and per check took 15 ms of 1,000 files, before any worker
    could start.
    """
    seen: set[str] = set()  # real paths, as strings: a Path hashes far slower

    def wanted(file: Path, key: str | None = None) -> bool:
        key = key or str(file.resolve())
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
                real_folder = os.path.realpath(folder)  # once, not for each file (not links)
                # Hidden folders (.git, .obsidian) hold no articles; Jekyll's _posts does.
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in dirs:
                    link = Path(folder) / name
                    if link.is_symlink() and not _inside(link, root):
                        report.skipped.append(
                            ImportedFile(link, "", reason=f"a link to a folder {OUTSIDE}")
                        )
                for name in sorted(files):
                    stem, suffix = os.path.splitext(name)
                    if suffix.lower() not in MARKDOWN_SUFFIXES:
                        continue
                    if name.startswith(".") or (name.startswith("_") and stem != "_index"):
                        continue  # partials and editor files, not posts
                    where_found = os.path.join(folder, name)
                    file = Path(where_found)
                    if os.path.islink(where_found):
                        # A link in a downloaded tree could read any file this account can; one
                        # inside it would import its target a second time, under another slug.
                        where = "in the folder given" if _inside(file, root) else OUTSIDE
                        reason = f"a link to a file {where}"
                        if where != OUTSIDE:
                            reason += "; the file itself is imported under its own name"
                        report.skipped.append(ImportedFile(file, "", reason=reason))
                        continue
                    if wanted(file, os.path.join(real_folder, name)):  # not a link: real folder
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
    path: Path, fields: _Fields, author: User | None, claimed: dict[str, Path]
) -> tuple[str, ImportedFile]:
    """Create or update the article for one checked file; return the report bucket and entry."""
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
        if article.taken_down_at is not None:
            return "skipped", ImportedFile(path, article.slug, reason=TAKEN_DOWN)
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
    elif article.taken_down_at is not None:
        # An admin took it down: it is public again only once an admin approves this text.
        enter_review(article, revision, owner, f"Imported from {name}")
    else:
        _publish(article, revision, owner, None if article.published_at else fields.date)
    live = article.approved_behind_newer_text and article.is_public()
    return "updated", ImportedFile(path, article.slug, status=article.status, live=live)


def _publish(article: Article, revision: Revision, owner: User, at: datetime | None) -> None:
    """Publish a human-written revision at `at` (now when None; kept when already published)."""
    publish_without_review(article, revision, owner, at)


def _owner(email: str) -> User:
    """Find who owns a file's article: the front matter's author by e-mail, else the first admin."""
    if email:
        user = db.session.scalar(select(User).where(func.lower(User.email) == email.lower()))
        if user is not None:
            return user
    admin = _first_admin()
    if admin is None:
        raise _FileProblems([(None, NO_ADMIN)])
    return admin


def _first_admin() -> User | None:
    """Return the first active admin, who owns files that name no known author."""
    return db.session.scalar(
        select(User).filter_by(role=Role.ADMIN, active=True).order_by(User.id).limit(1)
    )


def _display_name(path: Path) -> str:
    """Name a file for notes: a Hugo bundle's index.md says which bundle it is."""
    return f"{path.absolute().parent.name}/{path.name}" if path.stem == "index" else path.name


def _read(path: Path, limit: int) -> str:
    """Read a file as UTF-8 text, refusing what is not a regular file or is over `limit` bytes."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            # A FIFO would block the import forever, a device (/dev/zero) would never end.
            raise _FileProblems([(None, "not a regular file; only Markdown files are read")])
        with path.open("rb") as handle:
            # As many bytes as stat() saw, and one more to notice a file that grew since: a
            # read of limit + 1 would allocate 2 MB for every 6 kB post. Only a file that grew
            # is read on, and never past limit + 1.
            data = handle.read(min(info.st_size, limit) + 1)
            if len(data) > info.st_size:
                data += handle.read(limit + 1 - len(data))
    except OSError as error:
        raise _FileProblems([(None, f"cannot read the file: {error.strerror}")]) from None
    if len(data) > limit:
        size = max(info.st_size, len(data))
        raise _FileProblems(
            [(None, f"too large: {size:,} bytes, over the limit of {limit:,} per file")]
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise _FileProblems([(line, "the file is not UTF-8 text")]) from None
    # As read_text would give it: \r\n must not make a re-import "changed".
    return universal_newlines(text)


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
    warnings: list[str] = []
    if meta.get("date") is not None:
        try:
            published_at = _date(meta["date"])
        except OverflowError:  # 0001-01-01T00:00:00+01:00 is in year 0 in UTC
            problem("date", NOT_UTC)
        else:
            if published_at is None and name_date is not None:
                # Jekyll itself would fall back on the file name's date.
                published_at = name_date
                warnings.append(
                    f"line {lines.get('date', '?')}: `date` {str(meta['date'])[:60]!r} is not a "
                    f"date; used the file name's, {name_date:%Y-%m-%d}"
                )
            elif published_at is None:
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
        warnings=warnings,
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
            found = _loose_date(value)
            if found is None:
                return None
            moment = found
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


# -- dates as Jekyll reads them ------------------------------------------------------------------

# Jekyll parses dates with Ruby's Time.parse, which skips what it does not understand: its own
# news posts carry `date: 2023-01-29 18:30:22 2023 -0800` (a stray year before the zone).
_LOOSE_DATE = re.compile(
    r"^(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})"
    r"(?:[T\s]+(?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.\d+)?)?)?"
    r"(?:\s+\d{4})?"
    r"\s*(?P<zone>Z|UTC|GMT|[+-]\d{2}:?\d{2})?$",
    re.IGNORECASE,
)


def _loose_date(value: str) -> datetime | None:
    """Read the date forms Jekyll accepts beyond ISO 8601; None when it is not one."""
    match = _LOOSE_DATE.match(value.strip())
    if match is None:
        return None
    zone = (match["zone"] or "").upper()
    tz = None
    if zone in ("Z", "UTC", "GMT"):
        tz = UTC
    elif zone:
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    try:
        return datetime(
            int(match["y"]),
            int(match["m"]),
            int(match["d"]),
            int(match["H"] or 0),
            int(match["M"] or 0),
            int(match["S"] or 0),
            tzinfo=tz,
        )
    except ValueError:  # 2023-02-30, 25:00
        return None


# -- the pictures a post shows ---------------------------------------------------------------------

# ![alt](src "title"): src may hold Liquid ({{ site.baseurl }}/assets/a.png), which has spaces.
_IMAGE_REF = re.compile(
    r"!\[(?P<alt>(?:[^\]\\\n]|\\.)*)\]\(\s*"
    r"(?P<src><[^>\n]*>|(?:\{\{[^}\n]*\}\}|[^\s()])+)"
    r"(?P<rest>(?:\s+(?:\"[^\"\n]*\"|'[^'\n]*'))?\s*)\)"
)
_LIQUID_FILTER = re.compile(
    r"\{\{\s*['\"](?P<path>[^'\"]+)['\"]\s*\|\s*(?:relative_url|absolute_url)\s*\}\}"
)
_LIQUID_SITE = re.compile(r"\{\{\s*site\.(?:baseurl|url)\s*\}\}")
# Files that mark the top of a Jekyll or Hugo site: `/assets/a.png` is found from there.
SITE_MARKERS = (
    "_config.yml", "_config.yaml", "_config.toml", "hugo.toml", "hugo.yaml", "hugo.json",
    "config.toml", "config.yaml",
)  # fmt: skip
MAX_IMAGES_PER_POST = 50


def _site_root(post: Path) -> Path:
    """Find the site a post belongs to (the nearest folder with a Jekyll or Hugo config).

    Without one, the post's own folder (a Hugo page bundle holds its pictures beside it).
    """
    folder = post.absolute().parent
    for candidate in (folder, *folder.parents):
        if any((candidate / marker).is_file() for marker in SITE_MARKERS):
            return candidate
    return folder


def _image_path(src: str) -> str | None:
    """Reduce an image reference to a path in the tree, or None for another site's (or data:)."""
    src = src.strip()
    if src.startswith("<") and src.endswith(">"):
        src = src[1:-1]
    src = _LIQUID_FILTER.sub(lambda m: m["path"], src)
    src = _LIQUID_SITE.sub("", src).strip()
    parts = urlsplit(src)
    if parts.scheme or parts.netloc or not parts.path or "{{" in parts.path:
        return None
    return unquote(parts.path)


def _find_image(post: Path, root: Path, reference: str) -> Path | None:
    """Return the file an image reference names, if it is a regular file inside the site."""
    root = root.resolve()
    if reference.startswith("/"):
        # Jekyll serves the site's root; Hugo serves static/ there (and assets/ through pipes).
        candidates = [root / reference.lstrip("/"), root / "static" / reference.lstrip("/")]
    else:
        candidates = [post.absolute().parent / reference, root / reference]
    for candidate in candidates:
        try:
            resolved = candidate.resolve()
        except (OSError, RuntimeError):
            continue
        # Never outside the site: `../../.ssh/id_rsa`, or a link pointing out of the tree.
        if resolved.is_relative_to(root) and resolved.is_file():
            return resolved
    return None


def _post_images(path: Path, fields: _Fields) -> _Fields:
    """Read and re-encode the pictures a post shows from the tree it came from.

    Runs where the file is prepared (perhaps a worker process): no database here. The writer
    stores them and points the Markdown at /media/ (_store_post_images). A picture that cannot
    be found or is not an image is a warning naming the post and the path; the post imports.
    """
    refs = list(dict.fromkeys(m["src"] for m in _IMAGE_REF.finditer(fields.draft.body)))
    if not refs:
        return fields
    root = _site_root(path)
    images: list[tuple[str, Processed]] = []
    warnings = list(fields.warnings)
    for src in refs[:MAX_IMAGES_PER_POST]:
        reference = _image_path(src)
        if reference is None or reference.startswith("/media/"):
            continue  # another site's picture, or one already uploaded here
        found = _find_image(path, root, reference)
        if found is None:
            warnings.append(f"image {src!r} not found under {root}; its link is kept as it was")
            continue
        try:
            if found.stat().st_size > max_bytes():
                raise MediaError(413, f"larger than {max_bytes():,} bytes")
            images.append((src, process(found.read_bytes())))
        except MediaError as error:
            warnings.append(f"image {src!r} ({found}) was not imported: {error.message}")
        except OSError as error:
            warnings.append(f"image {src!r} ({found}) cannot be read: {error.strerror}")
    if len(refs) > MAX_IMAGES_PER_POST:
        warnings.append(f"only the first {MAX_IMAGES_PER_POST} images were imported")
    return replace(fields, images=images, warnings=warnings)


def _store_post_images(batch: list[_Prepared], report: ImportReport) -> None:
    """Store a batch's pictures, point each post's Markdown at them, and report warnings.

    The images are committed before the batch's articles, so a batch that is retried file by
    file still finds them; and every PICTURES_PER_COMMIT of them, as each holds a lock until the
    commit (blog.media.picture_rows) and PostgreSQL's lock table is a fixed size. They are
    stored in the order of their hashes, as any other import stores them: in the order of the
    posts, two imports holding one picture each and waiting for the other's deadlocked.
    """
    warnings = []  # reported once the batch's pictures are all stored (else it is not written)
    pictures: dict[str, Processed] = {}
    for item in batch:
        if item.fields is not None:
            warnings += [f"{item.path}: {warning}" for warning in item.fields.warnings]
            pictures.update((p.sha256, p) for _src, p in item.fields.images)
    urls = {}
    for stored, sha256 in enumerate(sorted(pictures), start=1):
        media = save(pictures[sha256], None)
        urls[sha256] = f"/media/{media.key}"  # the route's fixed path (CONTRACT.md)
        if stored % PICTURES_PER_COMMIT == 0:
            db.session.commit()
    if pictures:
        db.session.commit()
    for item in batch:
        fields = item.fields
        if fields is None or not fields.images:
            continue
        mine = {src: urls[processed.sha256] for src, processed in fields.images}

        def point(match: re.Match[str], mine: dict[str, str] = mine) -> str:
            url = mine.get(match["src"])
            return match.group(0) if url is None else f"![{match['alt']}]({url}{match['rest']})"

        body = _IMAGE_REF.sub(point, fields.draft.body)
        item.fields = replace(fields, draft=replace(fields.draft, body=body), images=[])
        item.stored = None  # computed again from the new body, as is its digest
        rendered = render(body)  # now with each picture's size and srcset
        item.html, item.minutes = rendered.html, rendered.minutes
    report.warnings.extend(warnings)
