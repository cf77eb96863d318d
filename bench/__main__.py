"""Run the bench: `python -m bench [--sizes 1000,10000] [--budget 2] [--rebuild] ...`."""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
from pathlib import Path

from . import corpus, load, postgres, worst
from .judged import judge
from .measure import (
    BenchFailure,
    Scenario,
    Settings,
    count_matches,
    floor,
    measure,
    scenarios,
)
from .report import SizeResult, code_fingerprint, render

DEFAULT_SIZES = (1_000, 10_000, 100_000)
RESULTS = corpus.BENCH_DIR / "results" / "latest.txt"


def parse_sizes(value: str) -> list[int]:
    """Read "1000,10k,100000" as sizes in articles."""
    sizes = []
    for item in value.split(","):
        item = item.strip().lower().replace("_", "")
        if not item:
            continue
        multiplier = 1000 if item.endswith("k") else 1
        try:
            size = int(item.removesuffix("k")) * multiplier
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a size: {item!r}") from None
        if size < 100:
            raise argparse.ArgumentTypeError("a corpus needs at least 100 articles")
        sizes.append(size)
    if not sizes:
        raise argparse.ArgumentTypeError("no sizes given")
    return sorted(set(sizes))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Time the public pages on generated corpora, as ratios to /healthz.",
    )
    parser.add_argument(
        "--sizes",
        type=parse_sizes,
        default=list(DEFAULT_SIZES),
        help="corpus sizes, comma-separated (1000,10k,...); default 1000,10000,100000",
    )
    parser.add_argument(
        "--budget", type=float, default=Settings.budget, help="seconds per scenario (default 2)"
    )
    parser.add_argument("--min-reps", type=int, default=Settings.min_reps)
    parser.add_argument("--max-reps", type=int, default=Settings.max_reps)
    parser.add_argument("--warmup", type=int, default=Settings.warmup)
    parser.add_argument(
        "--only", default="", help="time only scenarios whose name contains one of these (a,b)"
    )
    parser.add_argument("--rebuild", action="store_true", help="rebuild the cached corpora")
    parser.add_argument(
        "--import-sizes",
        type=parse_sizes,
        default=[1_000, 10_000],
        help="files for the import phase (flask import vs plain sqlite3); default 1000,10k",
    )
    parser.add_argument("--no-import", action="store_true", help="skip the import phase")
    parser.add_argument(
        "--cache-dir", type=Path, default=corpus.CACHE_DIR, help="where corpora are kept"
    )
    parser.add_argument(
        "--output", type=Path, default=RESULTS, help=f"report file (default {RESULTS.name})"
    )
    parser.add_argument("--no-save", action="store_true", help="print the report only")
    parser.add_argument(
        "--worst",
        action="store_true",
        help="time only the worst inputs at the body limit (no corpora; saved to worst.txt)",
    )
    parser.add_argument(
        "--load",
        action="store_true",
        help="run only the load phase: gunicorn driven by wrk on the 10k corpus (load.txt)",
    )
    parser.add_argument("--no-load", action="store_true", help="skip the load phase")
    parser.add_argument(
        "--load-seconds", type=float, default=10.0, help="seconds per wrk run (default 10)"
    )
    return parser.parse_args(argv)


def run_size(size: int, path: Path | str, settings: Settings, only: list[str]) -> SizeResult:
    """Measure the floor and every scenario on one corpus (an SQLite file or a database URL)."""
    from blog import create_app
    from blog.extensions import db

    with tempfile.TemporaryDirectory(prefix="bench-instance-") as instance:
        app = create_app(corpus.app_config(path), instance_path=instance)
        try:
            client = app.test_client()
            chosen = _select(scenarios(app), only)
            before = floor(client, size, settings)
            result = SizeResult(size, before, chosen)
            for scenario in chosen:
                started = time.perf_counter()
                timing = measure(client, scenario, size, settings)
                timing.matches = count_matches(app, scenario)
                corpus.progress(
                    f"{size:>7,}  {scenario.name:<28} median {timing.median * 1000:9,.1f} ms"
                    f"  ({time.perf_counter() - started:.1f} s)"
                )
                result.timings[scenario.name] = timing
            after = floor(client, size, settings)
            result.floor.samples += after.samples
            if isinstance(path, str):
                result.backend = "postgresql"
                result.database_bytes = postgres.database_bytes(path)
            else:
                result.database_bytes = path.stat().st_size
            if any(s.name.startswith("q=") for s in chosen):
                result.judged = judge(app)
        finally:
            with app.app_context():
                db.engine.dispose()
    gc.collect()
    return result


def run_worst(args: argparse.Namespace) -> int:
    """Time only the worst inputs (render and diff at the body limit), print and save them."""
    _print_and_save(worst.measure_worst(), args, "worst.txt")
    return 0


def run_load(args: argparse.Namespace) -> int:
    """Run only the load phase, print and save it; 2 when it cannot run (no wrk)."""
    lines = load.measure_load(args.load_seconds, args.cache_dir)
    _print_and_save(lines, args, "load.txt")
    return 2 if lines[0].startswith("load: not measured") else 0


def _print_and_save(lines: list[str], args: argparse.Namespace, name: str) -> None:
    """Print a phase's report, and save it beside the main report unless --no-save."""
    report = "\n".join(lines) + "\n"
    sys.stdout.write(report)
    if not args.no_save:
        path = args.output.with_name(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(report, encoding="utf-8")
        corpus.progress(f"saved to {path}")


def _select(found: list[Scenario], only: list[str]) -> list[Scenario]:
    """Keep the scenarios named by --only (all when it is empty)."""
    if not only:
        return found
    return [s for s in found if any(word in s.name for word in only)]


def main(argv: list[str] | None = None) -> int:
    """Build or reuse the corpora, measure, print and save the report; 1 if a request failed."""
    args = parse_args(argv)
    settings = Settings(
        budget=args.budget, min_reps=args.min_reps, max_reps=args.max_reps, warmup=args.warmup
    )
    only = [word.strip() for word in args.only.split(",") if word.strip()]
    if args.worst:
        return run_worst(args)
    if args.load:
        return run_load(args)
    fingerprint = code_fingerprint()
    problems = corpus.check_sample()
    for problem in problems:
        corpus.progress(f"warning: the corpus no longer matches the app's renderer: {problem}")
    try:
        paths = {size: corpus.ensure(size, args.cache_dir, args.rebuild) for size in args.sizes}
    except RuntimeError as error:
        print(f"bench: cannot build the corpus: {error}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    results = []
    try:
        for size in args.sizes:
            results.append(run_size(size, paths[size], settings, only))
    except BenchFailure as failure:
        print(f"bench: FAILED, this is a bug: {failure}", file=sys.stderr)
        return 1
    others = []
    server = postgres.server_url()
    if server:  # the same corpora and scenarios on PostgreSQL, reported beside SQLite's
        try:
            for size in args.sizes:
                url = postgres.ensure(size, paths[size], server, args.rebuild)
                others.append(run_size(size, url, settings, only))
        except BenchFailure as failure:
            print(f"bench: FAILED on PostgreSQL, this is a bug: {failure}", file=sys.stderr)
            return 1
    elapsed = time.perf_counter() - started
    changed = code_fingerprint() != fingerprint
    report = render(settings, results[0].scenarios, results, elapsed, fingerprint, changed, others)
    corpus.progress("timing the worst inputs at the body limit")
    report += "\n" + "\n".join(worst.measure_worst()) + "\n"
    # The import before the load phase: after 50 connections, gunicorn and wrk, the machine
    # stays busy for a while, and an import right after cost 40 % more CPU than on its own.
    if not args.no_import:
        from .importing import import_lines

        corpus.progress("the import phase: flask import vs plain sqlite3")
        report += "\n" + "\n".join(import_lines(args.import_sizes)) + "\n"
    if not args.no_load:
        corpus.progress("the load phase: gunicorn and wrk")
        report += "\n" + "\n".join(load.measure_load(args.load_seconds, args.cache_dir)) + "\n"
    sys.stdout.write(report)
    if changed:
        corpus.progress("warning: the code changed during the run; the numbers may mix versions")
    if not args.no_save:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(report, encoding="utf-8")
        corpus.progress(f"saved to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
