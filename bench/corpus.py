"""Generated corpora of published articles, built by bulk SQL on the real migrated schema, cached.

Every article is drawn from its own seeded random generator, so a corpus is the same on every
machine and every run, and the first 1,000 articles of the 100,000 corpus are those of the 1,000
one (only their dates differ: every corpus spans the same years). Words are drawn by rank with a
Zipf law from `words`, so "the" is in every article, `COMMON_WORD` in most and the tail words in
a few. The text stored for the search index is what `blog.content.plain_text` makes of the body,
and the stored HTML what `blog.content.render` makes of it; `check_sample` verifies both.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path

from . import words

# Bump when the generated content changes, so cached corpora are rebuilt.
CORPUS_VERSION = "1"
SEED = "tech-blog-bench"
BENCH_DIR = Path(__file__).resolve().parent
CACHE_DIR = BENCH_DIR / ".cache"
MIGRATIONS = BENCH_DIR.parent / "migrations" / "versions"

TAG_COUNT = 300
TAIL_WORDS = 15_000
BODY_WORDS = (300, 1500, 600)  # triangular: low, high, mode (a mean of 800 words)
FIRST_DAY = datetime(2019, 1, 1)
LAST_DAY = datetime(2025, 12, 31)  # every article is in the past, so all of them are public
CHUNK = 2_000  # articles per generated batch and per executemany

COMMON_WORD = words.TECH_WORDS[0]
TAIL_SHARE = 0.08  # of all words drawn, the share of made-up tail words
RARE_RANK = 1_000  # the tail rank of the rare query word (in 0.6-0.7% of articles)


@dataclass(frozen=True)
class Vocabulary:
    """The ranked words and their cumulative Zipf weights."""

    words: list[str]
    cum_weights: list[float]
    tech: list[str]
    tech_cum_weights: list[float]
    rare_word: str


@dataclass
class GeneratedArticle:
    """One generated article: the columns of its rows in articles, revisions, tags and FTS."""

    id: int
    slug: str
    title: str
    summary: str
    body: str
    body_html: str
    plain: str
    reading_minutes: int
    category: int
    tags: list[int]
    author: int
    reviewer: int
    ai_model: str | None
    published_at: str
    created_at: str


def _zipf(count: int, offset: float = 2.7, total: float = 1.0) -> list[float]:
    """Return cumulative Zipf-Mandelbrot weights for `count` ranks, adding up to `total`."""
    weights = [1.0 / (rank + offset) for rank in range(1, count + 1)]
    scale = total / sum(weights)
    return list(itertools.accumulate(weight * scale for weight in weights))


def _tail(rng: random.Random, taken: set[str], count: int) -> list[str]:
    """Make up `count` distinct pronounceable words that are not in `taken`."""
    made: list[str] = []
    seen = set(taken)
    while len(made) < count:
        syllables = rng.choice((2, 2, 2, 3))
        word = "".join(
            rng.choice(words.ONSETS) + rng.choice(words.VOWELS) for _ in range(syllables)
        ) + rng.choice(words.CODAS)
        if len(word) >= 4 and word not in seen:
            seen.add(word)
            made.append(word)
    return made


@lru_cache(maxsize=1)
def vocabulary() -> Vocabulary:
    """Build the ranked vocabulary: function words, technical words, then a made-up tail."""
    head = list(dict.fromkeys(words.FUNCTION_WORDS + words.TECH_WORDS))
    tech = [word for word in dict.fromkeys(words.TECH_WORDS) if word not in words.FUNCTION_WORDS]
    tail = _tail(random.Random(f"{SEED}:tail"), set(head), TAIL_WORDS)
    head_weights = _zipf(len(head), total=1 - TAIL_SHARE)
    tail_weights = [head_weights[-1] + w for w in _zipf(len(tail), 1.0, total=TAIL_SHARE)]
    return Vocabulary(
        head + tail, head_weights + tail_weights, tech, _zipf(len(tech), 1.0), tail[RARE_RANK]
    )


@lru_cache(maxsize=1)
def tag_names() -> list[str]:
    """Return the 300 tag names, the most used first."""
    from blog.content import slugify

    pairs = [f"{topic} {aspect}" for topic in words.TAG_TOPICS for aspect in words.TAG_ASPECTS]
    random.Random(f"{SEED}:tags").shuffle(pairs)
    names: dict[str, str] = {}
    for name in words.TAG_NAMES + pairs:
        names.setdefault(slugify(name), name)
    return list(names.values())[:TAG_COUNT]


def sqlite_time(moment: datetime) -> str:
    """Format a naive UTC datetime the way SQLAlchemy's DateTime stores it in SQLite."""
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def _sentence(rng: random.Random, vocab: Vocabulary, length: int) -> tuple[str, str]:
    """Return a sentence as Markdown and as plain text (an inline code span now and then)."""
    drawn = rng.choices(vocab.words, cum_weights=vocab.cum_weights, k=length)
    plain = " ".join(drawn)
    plain = plain[0].upper() + plain[1:] + "."
    if rng.random() < 0.08:
        word = rng.choice(vocab.tech)
        return f"{plain[:-1]} with `{word}`.", f"{plain[:-1]} with {word}."
    return plain, plain


def _heading_id(text: str) -> str:
    """Make a heading's id the way the app's Markdown renderer does."""
    from blog.content import HEADING_ID_PREFIX, slugify

    return HEADING_ID_PREFIX + slugify(text)


def _body(rng: random.Random, vocab: Vocabulary) -> tuple[str, str, str]:
    """Write a body of 300-1500 words in sections: Markdown, its HTML, and its plain text."""
    target = int(rng.triangular(*BODY_WORDS))
    sections = max(2, min(8, target // 180))
    markdown: list[str] = []
    html: list[str] = []
    plain: list[str] = []
    headings: set[str] = set()
    written = 0
    for section in range(sections):
        if section:
            heading = " ".join(
                rng.choices(vocab.tech, cum_weights=vocab.tech_cum_weights, k=rng.randint(2, 5))
            ).capitalize()
            while heading in headings:  # heading ids must be unique within the page
                heading += " " + rng.choice(vocab.tech)
            headings.add(heading)
            anchor = _heading_id(heading)
            markdown.append(f"## {heading}")
            html.append(
                f'<h2 id="{anchor}">{heading} <a class="header-anchor" href="#{anchor}" '
                f'rel="noopener noreferrer nofollow">#</a></h2>'
            )
            plain.append(heading)
        budget = (target - written) // (sections - section)
        while budget > 0:
            paragraph_md: list[str] = []
            paragraph_plain: list[str] = []
            for _ in range(rng.randint(2, 6)):
                length = min(budget, rng.randint(6, 24))
                if length <= 0:
                    break
                md, text = _sentence(rng, vocab, length)
                paragraph_md.append(md)
                paragraph_plain.append(text)
                budget -= length
                written += length
            markdown.append(" ".join(paragraph_md))
            html.append("<p>" + " ".join(_code_html(s) for s in paragraph_md) + "</p>")
            plain.append(" ".join(paragraph_plain))
    return "\n\n".join(markdown) + "\n", "\n".join(html) + "\n", " ".join(plain)


def _code_html(sentence: str) -> str:
    """Render a sentence's one inline code span (if any) as markdown-it does."""
    if "`" not in sentence:
        return sentence
    before, code, after = sentence.split("`")
    return f"{before}<code>{code}</code>{after}"


def _title(rng: random.Random, vocab: Vocabulary, tags: list[str]) -> str:
    """Fill a title template with the article's first tag and a few technical words."""
    a, b = (
        word.capitalize()
        for word in rng.choices(vocab.tech, cum_weights=vocab.tech_cum_weights, k=2)
    )
    template = rng.choice(words.TITLE_TEMPLATES)
    other = tags[1] if len(tags) > 1 else "Everything Else"
    return template.format(topic=tags[0], other=other, a=a, b=b, n=rng.choice((10, 50, 100, 1000)))


def generate(article_id: int, size: int) -> GeneratedArticle:
    """Generate article `article_id` (1-based) of a corpus of `size`; the same every time."""
    from blog.content import slugify

    rng = random.Random(f"{SEED}:{CORPUS_VERSION}:{article_id}")
    vocab = vocabulary()
    names = tag_names()
    tag_weights = _tag_weights()
    chosen: list[int] = []
    wanted = rng.randint(3, 6)
    while len(chosen) < wanted:
        tag = rng.choices(range(len(names)), cum_weights=tag_weights)[0]
        if tag not in chosen:
            chosen.append(tag)
    title = _title(rng, vocab, [names[tag] for tag in chosen])
    summary, _ = _sentence(rng, vocab, rng.randint(18, 34))
    summary = summary.replace("`", "")
    body, body_html, plain = _body(rng, vocab)
    span = (LAST_DAY - FIRST_DAY).total_seconds()
    # Dates grow with the id, as on a real blog, with a few days' jitter.
    offset = span * (article_id - 0.5) / size + rng.uniform(-3, 3) * 86_400
    published = FIRST_DAY + timedelta(seconds=min(max(offset, 0), span))
    published += timedelta(microseconds=rng.randrange(1_000_000))
    ai = rng.random() < 0.85
    return GeneratedArticle(
        id=article_id,
        slug=f"{slugify(title)[:150]}-{article_id}",
        title=title,
        summary=summary,
        body=body,
        body_html=body_html,
        plain=plain,
        reading_minutes=max(1, math.ceil(len(body.split()) / 200)),
        category=rng.choices(range(len(words.CATEGORIES)), weights=words.CATEGORY_WEIGHTS)[0],
        tags=chosen,
        author=rng.randrange(len(words.AUTHORS)),
        reviewer=rng.choices(range(len(words.REVIEWERS)), weights=(6, 3, 1))[0],
        ai_model=rng.choice(words.AI_MODELS) if ai else None,
        published_at=sqlite_time(published),
        created_at=sqlite_time(published - timedelta(days=rng.uniform(0.5, 20))),
    )


@lru_cache(maxsize=1)
def _tag_weights() -> list[float]:
    """Return the cumulative Zipf weights of the tags (the first is the most used)."""
    return _zipf(TAG_COUNT, 1.0)


def _generate_chunk(task: tuple[int, int, int]) -> list[GeneratedArticle]:
    """Generate articles start..stop-1 of a corpus of `size` (runs in a worker process)."""
    start, stop, size = task
    return [generate(article_id, size) for article_id in range(start, stop)]


def check_sample(count: int = 25) -> list[str]:
    """Compare a few generated articles with what the app's own renderer makes of them."""
    from blog.content import plain_text, reading_minutes, render

    problems = []
    for article_id in range(1, count + 1):
        article = generate(article_id, 1000)
        if render(article.body).html != article.body_html:
            problems.append(f"article {article_id}: body_html differs from blog.content.render")
        if plain_text(article.body) != article.plain:
            problems.append(f"article {article_id}: indexed text differs from plain_text")
        if reading_minutes(article.body) != article.reading_minutes:
            problems.append(f"article {article_id}: reading time differs")
    return problems


@lru_cache(maxsize=1)
def schema_key() -> str:
    """Hash the migration scripts, so a schema change rebuilds the cached corpora (once a run)."""
    digest = hashlib.sha256()
    for script in sorted(MIGRATIONS.glob("*.py")):
        digest.update(script.name.encode())
        digest.update(script.read_bytes())
    return digest.hexdigest()[:10]


def corpus_path(size: int, cache_dir: Path = CACHE_DIR) -> Path:
    """Name the cached database of a corpus: size, corpus version and schema."""
    return cache_dir / f"corpus-{size}-v{CORPUS_VERSION}-{schema_key()}.sqlite3"


def app_config(database: Path | str) -> dict[str, object]:
    """The configuration the bench runs the app with, on an SQLite file or a database URL."""
    return {
        "SQLALCHEMY_DATABASE_URI": database
        if isinstance(database, str)
        else f"sqlite:///{database}",
        "SECRET_KEY": "bench",
        "TESTING": True,
        "WTF_CSRF_ENABLED": False,
        "RATELIMIT_ENABLED": False,
    }


def ensure(size: int, cache_dir: Path = CACHE_DIR, rebuild: bool = False) -> Path:
    """Return the path of a corpus of `size` articles, building it unless it is cached."""
    path = corpus_path(size, cache_dir)
    if path.exists() and not rebuild:
        return path
    cache_dir.mkdir(parents=True, exist_ok=True)
    for stale in cache_dir.glob(f"corpus-{size}-*"):  # older versions, an interrupted build
        stale.unlink()
    progress(f"building a corpus of {size:,} articles (cached for the next runs)")
    started = time.perf_counter()
    building = path.with_suffix(".building")
    _migrate(building)
    try:
        _fill(building, size)
    except sqlite3.Error as error:
        building.unlink(missing_ok=True)
        raise RuntimeError(
            f"could not fill the migrated schema ({error}); if a migration added a required "
            "column, bench/corpus.py must insert it too"
        ) from error
    building.rename(path)
    mib = path.stat().st_size / 2**20
    progress(f"built {size:,} articles in {time.perf_counter() - started:.0f} s ({mib:,.0f} MiB)")
    return path


def progress(message: str) -> None:
    """Tell the person waiting what is going on (on stderr: stdout is only for the report)."""
    print(f"bench: {message}", file=sys.stderr, flush=True)


def _migrate(database: Path) -> None:
    """Create the schema through the app's real Alembic migrations."""
    from flask_migrate import upgrade

    from blog import create_app
    from blog.extensions import db

    with tempfile.TemporaryDirectory(prefix="bench-instance-") as instance:
        app = create_app(app_config(database), instance_path=instance)
        with app.app_context():
            upgrade()
            db.engine.dispose()


def _fill(database: Path, size: int) -> None:
    """Insert users, categories, tags, then the articles with their revisions, tags and FTS rows."""
    from blog.content import slugify

    connection = sqlite3.connect(database, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode = OFF")
        connection.execute("PRAGMA synchronous = OFF")
        connection.execute("PRAGMA cache_size = -262144")
        connection.execute("PRAGMA foreign_keys = OFF")
        connection.execute("BEGIN")
        created = sqlite_time(FIRST_DAY - timedelta(days=30))
        people = [(name, "admin") for name in words.REVIEWERS]
        people += [(name, "author") for name in words.AUTHORS]
        connection.executemany(
            "INSERT INTO users (id, email, name, role, password_hash, active, session_token,"
            " created_at) VALUES (?, ?, ?, ?, 'bench:no-login', 1, ?, ?)",
            [
                (n, f"{slugify(name)}@example.com", name, role, f"{n:032x}", created)
                for n, (name, role) in enumerate(people, start=1)
            ],
        )
        connection.executemany(
            "INSERT INTO categories (id, slug, name, position) VALUES (?, ?, ?, ?)",
            [(n, slugify(name), name, n) for n, name in enumerate(words.CATEGORIES, start=1)],
        )
        names = tag_names()
        connection.executemany(
            "INSERT INTO tags (id, slug, name) VALUES (?, ?, ?)",
            [(n, slugify(name), name) for n, name in enumerate(names, start=1)],
        )
        done = 0
        for chunk in _chunks(size):
            _insert(connection, chunk, names)
            done += len(chunk)
            if done % 20_000 == 0 or done == size:
                progress(f"  {done:,} / {size:,} articles")
        # One merged index, as after a rebuild; a live index has a few segments more.
        connection.execute("INSERT INTO articles_fts (articles_fts) VALUES ('optimize')")
        connection.execute("COMMIT")
        broken = connection.execute("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise RuntimeError(f"generated rows break foreign keys: {broken[:5]}")
        connection.execute("PRAGMA journal_mode = WAL")  # what the app sets on every connection
    finally:
        connection.close()


def _chunks(size: int) -> Iterator[list[GeneratedArticle]]:
    """Generate the corpus in batches, in a worker process while this one inserts."""
    tasks = [(start, min(start + CHUNK, size + 1), size) for start in range(1, size + 1, CHUNK)]
    if len(tasks) == 1:
        yield _generate_chunk(tasks[0])
        return
    with ProcessPoolExecutor(max_workers=2) as pool:
        yield from pool.map(_generate_chunk, tasks)


def _insert(
    connection: sqlite3.Connection, chunk: Sequence[GeneratedArticle], names: list[str]
) -> None:
    """Write one batch of generated articles as rows."""
    authors = len(words.REVIEWERS)  # author user ids come after the reviewers'
    connection.executemany(
        "INSERT INTO articles (id, slug, author_id, status, ai_generated, ai_model, title, summary,"
        " category_id, body, body_html, reading_minutes, published_at, published_revision_id,"
        " reviewed_by_id, reviewed_at, created_at, updated_at, version)"
        " VALUES (?, ?, ?, 'published', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 2)",
        [
            (
                a.id,
                a.slug,
                authors + a.author + 1,
                a.ai_model is not None,
                a.ai_model,
                a.title,
                a.summary,
                a.category + 1,
                a.body,
                a.body_html,
                a.reading_minutes,
                a.published_at,
                a.id,
                a.reviewer + 1,
                a.published_at,
                a.created_at,
                a.published_at,
            )
            for a in chunk
        ],
    )
    connection.executemany(
        "INSERT INTO revisions (id, article_id, number, title, summary, category_name, tags, body,"
        " kind, note, created_by_id, created_at) VALUES (?, ?, 1, ?, ?, ?, ?, ?, ?, '', ?, ?)",
        [
            (
                a.id,
                a.id,
                a.title,
                a.summary,
                words.CATEGORIES[a.category],
                ", ".join(names[t] for t in a.tags),
                a.body,
                "ai_original" if a.ai_model else "edit",
                authors + a.author + 1,
                a.created_at,
            )
            for a in chunk
        ],
    )
    connection.executemany(
        "INSERT INTO article_tags (article_id, tag_id, position) VALUES (?, ?, ?)",
        [(a.id, tag + 1, position) for a in chunk for position, tag in enumerate(a.tags)],
    )
    # The index reads its text from the published revision (external content): what is indexed
    # must be exactly that revision's columns, and the entry says which revision it is.
    connection.executemany(
        "INSERT INTO articles_fts_entries (revision_id, article_id) VALUES (?, ?)",
        [(a.id, a.id) for a in chunk],
    )
    connection.executemany(
        "INSERT INTO articles_fts (rowid, title, summary, tags, body) VALUES (?, ?, ?, ?, ?)",
        [(a.id, a.title, a.summary, ", ".join(names[t] for t in a.tags), a.body) for a in chunk],
    )


def utc_now() -> datetime:
    """Return the current time, naive UTC, to compare with the corpus' dates."""
    return datetime.now(UTC).replace(tzinfo=None)
