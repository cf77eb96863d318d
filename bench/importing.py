"""The import phase of `make bench`: `flask import` against the database's own speed.

N generated articles (the corpus' own, see corpus.generate) are written as Markdown files with
Hugo front matter, then imported with the real `import` command into a freshly migrated
database. The floor is what SQLite does with the same text on the same schema: the same rows
(articles with their HTML, revisions, tags) inserted with plain `executemany` in one
transaction, then the search index filled in one statement, as a rebuild does. The ratio
floor / import is the share of the database's speed the importer reaches (1.0 would be
"import at the speed of the database"); both are timed in the same run, on the same machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sqlite3
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import corpus, words

DEFAULT_SIZES = (1_000, 10_000)
GOAL = 0.5  # the goal: at least half the database's own speed


@dataclass
class ImportTiming:
    """One size: the import's and the raw insert's wall and CPU times, and what the import said.

    CPU time (the import's worker processes included) is the steadier measure on a machine
    shared with other work: wall time there depends on what else runs.
    """

    size: int
    import_seconds: float
    raw_seconds: float
    summary: str
    import_cpu: float = 0.0
    raw_cpu: float = 0.0
    # The 1-minute load average as the raw insert and the import started: on a shared machine
    # wall times compare only at a similar load (CPU times are steadier).
    raw_load: float = 0.0
    import_load: float = 0.0
    # Every round's ratio, lowest first, when the size was timed more than once.
    ratios: list[float] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        """The share of the database's speed the import reaches."""
        return self.raw_seconds / self.import_seconds

    @property
    def cpu_ratio(self) -> float:
        """The same share in CPU time."""
        return self.raw_cpu / self.import_cpu if self.import_cpu else 0.0

    @property
    def spread(self) -> str:
        """The rounds' ratios as a range ("36-50% of 5"), or "-" for a single round."""
        if len(self.ratios) < 2:
            return "-"
        return f"{self.ratios[0]:.0%}-{self.ratios[-1]:.0%} of {len(self.ratios)}"


def cpu_seconds() -> float:
    """CPU time used so far by this process and its finished children (the import's workers)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def front_matter(article: corpus.GeneratedArticle) -> str:
    """Write a generated article as a Hugo Markdown file (JSON strings are YAML scalars)."""
    names = corpus.tag_names()
    lines = [
        "---",
        f"title: {json.dumps(article.title)}",
        f"date: {article.published_at.replace(' ', 'T')}Z",
        f"summary: {json.dumps(article.summary)}",
        f"categories: [{json.dumps(words.CATEGORIES[article.category])}]",
        f"tags: {json.dumps([names[tag] for tag in article.tags])}",
        f"slug: {article.slug}",
        "---",
        "",
    ]
    return "\n".join(lines) + article.body


def _write_chunk(task: tuple[int, int, int, str]) -> None:
    """Generate articles start..stop-1 and write them as files (in a worker process)."""
    start, stop, size, folder = task
    for article_id in range(start, stop):
        article = corpus.generate(article_id, size)
        path = Path(folder) / f"{article_id:06d}-{article.slug[:60]}.md"
        path.write_text(front_matter(article), encoding="utf-8")


def write_files(size: int, folder: Path) -> None:
    """Write the corpus of `size` as Markdown files into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    step = 500
    tasks = [(s, min(s + step, size + 1), size, str(folder)) for s in range(1, size + 1, step)]
    with ProcessPoolExecutor(max_workers=2) as pool:
        list(pool.map(_write_chunk, tasks))


def migrated_template(folder: Path) -> Path:
    """Create an empty migrated database with one admin, to copy for each measurement."""
    path = folder / "template.sqlite3"
    corpus._migrate(path)
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute(
            "INSERT INTO users (id, email, name, role, password_hash, active, session_token,"
            " created_at) VALUES (1, 'importer@example.com', 'Importer', 'admin',"
            " 'bench:no-login', 1, ?, ?)",
            ("0" * 32, corpus.sqlite_time(corpus.FIRST_DAY)),
        )
    finally:
        connection.close()
    return path


def raw_insert(database: Path, articles: list[corpus.GeneratedArticle]) -> float:
    """Insert the articles' rows with plain sqlite3 and fill the index; return the seconds."""
    names = corpus.tag_names()
    started = time.perf_counter()
    connection = sqlite3.connect(database, isolation_level=None)
    try:
        # The app's own connection settings (blog/sqlite.py): WAL, normal sync, foreign keys.
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = NORMAL")
        connection.execute("PRAGMA foreign_keys = ON")
        connection.execute("BEGIN IMMEDIATE")
        connection.executemany(
            "INSERT INTO categories (id, slug, name, position) VALUES (?, ?, ?, ?)",
            [(n, f"c{n}", name, n) for n, name in enumerate(words.CATEGORIES, start=1)],
        )
        connection.executemany(
            "INSERT INTO tags (id, slug, name) VALUES (?, ?, ?)",
            [(n, f"t{n}", name) for n, name in enumerate(names, start=1)],
        )
        connection.executemany(
            "INSERT INTO articles (id, slug, author_id, status, ai_generated, title, summary,"
            " category_id, body, body_html, reading_minutes, published_at,"
            " reviewed_by_id, reviewed_at, created_at, updated_at, version)"
            " VALUES (?, ?, 1, 'published', 0, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, 2)",
            [
                (
                    a.id,
                    a.slug,
                    a.title,
                    a.summary,
                    a.category + 1,
                    a.body,
                    a.body_html,
                    a.reading_minutes,
                    a.published_at,
                    a.published_at,
                    a.published_at,
                    a.published_at,
                )
                for a in articles
            ],
        )
        connection.executemany(
            "INSERT INTO revisions (id, article_id, number, title, summary, category_name, tags,"
            " body, kind, note, created_by_id, created_at)"
            " VALUES (?, ?, 1, ?, ?, ?, ?, ?, 'import', '', 1, ?)",
            [
                (
                    a.id,
                    a.id,
                    a.title,
                    a.summary,
                    words.CATEGORIES[a.category],
                    ", ".join(names[t] for t in a.tags),
                    a.body,
                    a.published_at,
                )
                for a in articles
            ],
        )
        connection.executemany(
            "INSERT INTO article_tags (article_id, tag_id, position) VALUES (?, ?, ?)",
            [(a.id, tag + 1, position) for a in articles for position, tag in enumerate(a.tags)],
        )
        # An article points at its revision, which points at its article: link them afterwards.
        connection.execute("UPDATE articles SET published_revision_id = id")
        # The search index filled in bulk, as blog.search's rebuild does.
        connection.execute(
            "INSERT INTO articles_fts_entries (revision_id, article_id)"
            " SELECT published_revision_id, id FROM articles"
        )
        connection.execute(
            "INSERT INTO articles_fts (rowid, title, summary, tags, body)"
            " SELECT r.id, r.title, r.summary, r.tags, r.body FROM revisions r"
            " JOIN articles_fts_entries e ON e.revision_id = r.id"
        )
        connection.execute("COMMIT")
    finally:
        connection.close()
    return time.perf_counter() - started


def run_import(database: Path, folder: Path) -> tuple[float, str]:
    """Run the real `import` command on the folder; return the seconds and its summary line."""
    from blog import create_app
    from blog.extensions import db

    with tempfile.TemporaryDirectory(prefix="bench-instance-") as instance:
        app = create_app(corpus.app_config(database), instance_path=instance)
        try:
            runner = app.test_cli_runner()
            started = time.perf_counter()
            result = runner.invoke(args=["import", str(folder)])
            seconds = time.perf_counter() - started
        finally:
            with app.app_context():
                db.engine.dispose()
    if result.exit_code != 0:
        raise RuntimeError(f"the import failed ({result.exit_code}): {result.output[-2000:]}")
    summary = result.output.strip().splitlines()[-1] if result.output.strip() else ""
    return seconds, summary


def rounds_for(size: int) -> int:
    """How many times to time a size: one import of 1,000 files swung between 36 % and 50 % of
    the floor from run to run on an idle machine, so small sizes are timed five times."""
    return min(5, max(1, 5_000 // size))


def measure_size(size: int, work: Path, template: Path) -> ImportTiming:
    """Write the files, then time the raw insert and the import of the same articles.

    Each round times both, one after the other, on fresh copies of the empty database; the
    round with the median ratio is the one reported, with the range of all rounds beside it.
    """
    folder = work / f"files-{size}"
    corpus.progress(f"import: writing {size:,} Markdown files")
    write_files(size, folder)
    articles = [corpus.generate(article_id, size) for article_id in range(1, size + 1)]
    raw_db, import_db = work / f"raw-{size}.sqlite3", work / f"import-{size}.sqlite3"
    timings = []
    rounds = rounds_for(size)
    for round_number in range(1, rounds + 1):
        shutil.copyfile(template, raw_db)
        raw_load = os.getloadavg()[0]
        cpu = cpu_seconds()
        raw_seconds = raw_insert(raw_db, articles)
        raw_cpu = cpu_seconds() - cpu
        shutil.copyfile(template, import_db)
        corpus.progress(f"import: importing {size:,} files (round {round_number} of {rounds})")
        import_load = os.getloadavg()[0]
        cpu = cpu_seconds()
        import_seconds, summary = run_import(import_db, folder)
        import_cpu = cpu_seconds() - cpu
        timing = ImportTiming(
            size, import_seconds, raw_seconds, summary, import_cpu, raw_cpu, raw_load, import_load
        )
        corpus.progress(
            f"import: {size:,} files in {import_seconds:.1f} s "
            f"({size / import_seconds:,.0f}/s); raw insert {raw_seconds:.2f} s; "
            f"ratio {timing.ratio:.0%}, in CPU {timing.cpu_ratio:.0%}"
        )
        timings.append(timing)
        for database in (raw_db, import_db):
            for leftover in database.parent.glob(f"{database.name}*"):  # -wal, -shm
                leftover.unlink()
    shutil.rmtree(folder)
    timings.sort(key=lambda t: t.ratio)
    return replace(timings[len(timings) // 2], ratios=[t.ratio for t in timings])


def measure_import(sizes: list[int]) -> list[ImportTiming]:
    """Time the import of each size against the raw insert of the same text."""
    with tempfile.TemporaryDirectory(prefix="bench-import-") as work:
        template = migrated_template(Path(work))
        return [measure_size(size, Path(work), template) for size in sizes]


def report(timings: list[ImportTiming]) -> list[str]:
    """The import phase's lines for the report."""
    lines = [
        "import: `flask import` of N generated Markdown files (Hugo front matter, published) vs",
        "the same rows inserted with plain sqlite3 executemany in one transaction + an FTS fill",
        f"ratio: raw insert time / import time (goal >= {GOAL:.0%}); both measured in this run;",
        "rounds: a small import is timed several times (5 at 1,000 files, once from 5,000); the",
        "round with the median ratio is shown, the range of all of them beside it",
        "cpu: the same in CPU seconds (the import's worker processes included)",
        f"load: 1-minute load average as the raw insert / the import started ({os.cpu_count()} "
        "cores)",
        "",
        f"{'articles':>10}  {'import s':>9}  {'per s':>7}  {'raw s':>7}  {'raw per s':>9}  "
        f"{'ratio':>6}  {'rounds':>13}  {'cpu s':>7}  {'raw cpu':>7}  {'cpu ratio':>9}  "
        f"{'load':>9}  import said",
        "-" * 146,
    ]
    for t in timings:
        lines.append(
            f"{t.size:>10,}  {t.import_seconds:>9.2f}  {t.size / t.import_seconds:>7,.0f}  "
            f"{t.raw_seconds:>7.2f}  {t.size / t.raw_seconds:>9,.0f}  {t.ratio:>6.0%}  "
            f"{t.spread:>13}  "
            f"{t.import_cpu:>7.2f}  {t.raw_cpu:>7.2f}  {t.cpu_ratio:>9.0%}  "
            f"{f'{t.raw_load:.1f}/{t.import_load:.1f}':>9}  {t.summary}"
        )
    return lines


def import_lines(sizes: list[int]) -> list[str]:
    """Measure the import phase and return its report lines (what `make bench` appends)."""
    return report(measure_import(sizes))


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.importing [--sizes 1000,10k]`: only the import phase."""
    from .__main__ import parse_sizes

    parser = argparse.ArgumentParser(prog="python -m bench.importing")
    parser.add_argument("--sizes", type=parse_sizes, default=list(DEFAULT_SIZES))
    args = parser.parse_args(argv)
    sys.stdout.write("\n".join(import_lines(args.sizes)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
