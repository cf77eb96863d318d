"""The plain-text report: machine and corpus facts on top, then the tables."""

from __future__ import annotations

import hashlib
import os
import platform
import sqlite3
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime

from . import corpus
from .measure import FLOOR, Scenario, Settings, Timing


@dataclass
class SizeResult:
    """Everything measured on one corpus."""

    size: int
    floor: Timing
    scenarios: list[Scenario] = field(default_factory=list)
    timings: dict[str, Timing] = field(default_factory=dict)
    backend: str = "sqlite"
    database_bytes: int = 0  # the database's size on disk, for the size per article
    judged: list[str] = field(default_factory=list)  # bench.judged's lines


def short_size(size: int) -> str:
    """Write 1000 as 1k and 100000 as 100k."""
    return f"{size // 1000}k" if size % 1000 == 0 else str(size)


def _commit() -> str:
    """Describe the checked-out commit, and whether the tree has changes."""
    try:
        described = subprocess.run(
            ["git", "describe", "--always", "--dirty=+changes"],
            capture_output=True,
            text=True,
            check=True,
            cwd=corpus.BENCH_DIR.parent,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return described.stdout.strip()


def code_fingerprint() -> str:
    """Hash the code being measured (blog/, templates/, migrations/) to notice edits mid-run."""
    root = corpus.BENCH_DIR.parent
    digest = hashlib.sha256()
    for folder in ("blog", "templates", "migrations"):
        for path in sorted((root / folder).rglob("*")):
            if path.is_file() and path.suffix in {".py", ".html", ".xml", ".txt", ".md", ".ini"}:
                digest.update(str(path.relative_to(root)).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


def header(settings: Settings, sizes: list[int]) -> list[str]:
    """Say when, on what, and how the numbers were made."""
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count() or 0
    vocab = corpus.vocabulary()
    return [
        f"make bench, {now}",
        f"python {platform.python_version()} · sqlite {sqlite3.sqlite_version} · "
        f"{os.cpu_count()} cpus ({usable} usable) · {platform.platform(terse=True)} · "
        f"{platform.machine()} · commit {_commit()}",
        f"corpus v{corpus.CORPUS_VERSION} (schema {corpus.schema_key()}): "
        f"{', '.join(f'{size:,}' for size in sizes)} published articles, bodies 300-1500 words, "
        f"{corpus.TAG_COUNT} tags; common word {corpus.COMMON_WORD!r}, rare word "
        f"{vocab.rare_word!r}",
        f"timing: Flask test client in process; up to {settings.warmup} warm-up requests, then "
        f"repeated for ~{settings.budget:g} s ({settings.min_reps} to {settings.max_reps} times); "
        f"the floor, {FLOOR.url}, before and after each corpus",
        "ratio: median time / median floor time on the same corpus; growth: the ratio on the "
        "largest corpus / on the smallest",
    ]


def _ratio(value: float) -> str:
    """Write a ratio as x12.3 (x1,234 when large)."""
    return f"x{value:,.1f}" if value < 1000 else f"x{value:,.0f}"


def _ms(seconds: float) -> str:
    """Write seconds as milliseconds, with decimals only when they matter."""
    milliseconds = seconds * 1000
    return f"{milliseconds:,.2f}" if milliseconds < 100 else f"{milliseconds:,.0f}"


def timing_table(scenarios: list[Scenario], results: list[SizeResult]) -> list[str]:
    """Tabulate ratio, median and p95 per scenario and corpus, with the growth across sizes."""
    name_width = max(len(s.name) for s in [FLOOR, *scenarios])
    cell = "{:>8} {:>9} {:>9}"
    width = len(cell.format("", "", ""))
    grow = len(results) > 1
    growth_label = f"{short_size(results[0].size)}->{short_size(results[-1].size)}"
    top = (
        " " * name_width + "  " + "   ".join(f"{f'{r.size:,} articles':^{width}}" for r in results)
    )
    sub = f"{'scenario':<{name_width}}  " + "   ".join(
        cell.format("ratio", "median ms", "p95 ms") for _ in results
    )
    if grow:
        top += f"   {'growth':>9}"
        sub += f"   {growth_label:>9}"
    lines = [top, sub, "-" * len(sub)]

    def row(name: str, timings: list[Timing], floors: list[Timing]) -> str:
        """Format one scenario's line across the corpora."""
        ratios = [t.median / f.median for t, f in zip(timings, floors, strict=True)]
        cells = "   ".join(
            cell.format(_ratio(ratio), _ms(t.median), _ms(t.p95))
            for ratio, t in zip(ratios, timings, strict=True)
        )
        line = f"{name:<{name_width}}  {cells}"
        if grow:
            line += f"   {_ratio(ratios[-1] / ratios[0]):>9}"
        return line

    floors = [r.floor for r in results]
    lines.append(row(FLOOR.name, floors, floors))
    for scenario in scenarios:
        lines.append(row(scenario.name, [r.timings[scenario.name] for r in results], floors))
    return lines


def detail_table(scenarios: list[Scenario], results: list[SizeResult]) -> list[str]:
    """Tabulate, per scenario, the URL, the matching articles and the repetitions timed."""
    name_width = max(len(s.name) for s in [FLOOR, *scenarios])
    url_width = max(len(s.shown or s.url) for s in [FLOOR, *scenarios])
    sizes = "  ".join(f"{short_size(r.size) + ' matches':>13} {'n':>4}" for r in results)
    lines = [f"{'scenario':<{name_width}}  {'url':<{url_width}}  {sizes}  what it shows"]
    lines.append("-" * len(lines[0]))
    for scenario in [FLOOR, *scenarios]:
        cells = []
        for result in results:
            timing = result.floor if scenario is FLOOR else result.timings[scenario.name]
            matches = "-" if timing.matches is None else f"{timing.matches:,}"
            cells.append(f"{matches:>13} {len(timing.samples):>4}")
        url = f"{scenario.shown or scenario.url:<{url_width}}"
        lines.append(f"{scenario.name:<{name_width}}  {url}  {'  '.join(cells)}  {scenario.what}")
    return lines


# Searches matching most articles: whole words, prefixes being typed, the live-search fragment.
BROAD = ("q=query", "q=query word", "q=co", "q=quer", "q=a", "q=query htmx fragment")


def search_table(results: list[SizeResult], others: list[SizeResult]) -> list[str]:
    """Tabulate the searches on SQLite and, when it ran, PostgreSQL side by side (median/p95)."""
    runs = results + others
    names = [s.name for s in results[0].scenarios if s.name.startswith("q=")]
    if not names:
        return []
    width = max(len(name) for name in names)
    heads = [f"{r.backend} {short_size(r.size)}" for r in runs]
    lines = [
        f"{'search (median / p95 ms)':<{width}}  " + "  ".join(f"{h:>17}" for h in heads),
    ]
    lines.append("-" * len(lines[0]))
    for name in names:
        cells = []
        for run in runs:
            timing = run.timings.get(name)
            cells.append(
                f"{_ms(timing.median):>8} {_ms(timing.p95):>8}" if timing else f"{'-':>17}"
            )
        lines.append(f"{name:<{width}}  " + "  ".join(cells))
    worst = []
    for run in runs:
        broad = [run.timings[n].p95 for n in BROAD if n in run.timings]
        worst.append(f"{_ms(max(broad)):>17}" if broad else f"{'-':>17}")
    lines.append(f"{'broad, worst p95':<{width}}  " + "  ".join(worst))
    sizes = [
        f"{r.database_bytes / r.size / 1024:>12.1f} KiB" if r.database_bytes else f"{'-':>17}"
        for r in runs
    ]
    lines.append(f"{'database / article':<{width}}  " + "  ".join(sizes))
    return lines


def judged_lines(runs: list[SizeResult]) -> list[str]:
    """List the judged queries' verdicts per corpus and backend."""
    lines = []
    for run in runs:
        for line in run.judged:
            lines.append(f"{run.backend} {short_size(run.size):>4}  {line}")
    return lines


def render(
    settings: Settings,
    scenarios: list[Scenario],
    results: list[SizeResult],
    elapsed: float,
    fingerprint: str,
    code_changed: bool,
    others: list[SizeResult] | None = None,
) -> str:
    """Put the whole report together."""
    lines = header(settings, [r.size for r in results])
    lines[1] += f" · code {fingerprint}"
    if code_changed:
        lines.append(
            "WARNING: blog/, templates/ or migrations/ changed during the run: "
            "the numbers may mix two versions of the code; run again"
        )
    lines += ["", *timing_table(scenarios, results), ""]
    for other in others or []:
        if other is (others or [])[0]:
            lines += [f"on PostgreSQL ({other.backend}):", *timing_table(scenarios, others), ""]
    lines += [*search_table(results, others or []), ""]
    judged = judged_lines(results + (others or []))
    if judged:
        lines += [
            "judged queries (bench/judged.py): is the first page still what a reader means?",
            *judged,
            "",
        ]
    lines += [
        "matches: public articles the filters match (counted in SQL; the list shows at most "
        "1,000+); n: timed repetitions",
        "",
        *detail_table(scenarios, results),
        "",
        f"measured in {elapsed:.0f} s (corpus building excluded)",
    ]
    return "\n".join(lines) + "\n"
