"""Command-line tools: `flask --app app init-db | user | backup ...`."""

from __future__ import annotations

import os
import signal
import sqlite3
import sys
import threading
from collections.abc import Callable
from contextlib import ExitStack
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext
from flask_migrate import upgrade
from sqlalchemy import select

from . import clock
from .audit import record
from .copydb import copy_db
from .deploy import check_deploy, schema_problem
from .extensions import db
from .models import Role, User

F = TypeVar("F", bound=Callable[..., Any])


def needs_schema(command: F) -> F:
    """Run a command only on a database whose schema is this release's; else say so in a line.

    Without it, a database never initialised (or one an upgrade has not migrated yet) meets the
    command with a page of SQL traceback ("no such table: users").
    """

    @wraps(command)
    def checked(*args: Any, **kwargs: Any) -> Any:
        problem = schema_problem()
        if problem:
            raise click.ClickException(problem)
        return command(*args, **kwargs)

    return checked  # type: ignore[return-value]


def init_app(app: Flask) -> None:
    """Register the commands."""
    app.cli.add_command(init_db)
    app.cli.add_command(user_group)
    app.cli.add_command(backup)
    app.cli.add_command(check_deploy)
    app.cli.add_command(token_group)
    app.cli.add_command(import_command)
    app.cli.add_command(rerender)
    app.cli.add_command(copy_db)


@click.command("init-db")
@with_appcontext
@click.option("--demo", is_flag=True, help="Also load the demo articles and accounts.")
def init_db(demo: bool) -> None:
    """Create or upgrade the schema (safe to run again); optionally load the demo blog."""
    upgrade()
    click.echo(f"Database ready: {db.engine.url.render_as_string(hide_password=True)}")
    if demo:
        from .demo import demo_credentials, load_demo

        loaded = load_demo()
        if loaded:
            click.echo(f"Loaded {loaded} demo articles.")
        else:
            click.echo("The database has articles already, so the demo was not loaded.")
        credentials = demo_credentials()
        if credentials:
            click.echo("Demo sign-in (also in instance/demo-credentials.json):")
            for email, password in credentials.items():
                shown = password or "changed since the demo was loaded (not shown)"
                click.echo(f"  {email}  password: {shown}")


@click.group("user", cls=AppGroup)
def user_group() -> None:
    """Manage accounts."""


@user_group.command("create")
@click.argument("email")
@click.option("--name", required=True, help="The name readers see.")
@click.option("--role", type=click.Choice([r.value for r in Role]), default=Role.AUTHOR.value)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@needs_schema
def user_create(email: str, name: str, role: str, password: str) -> None:
    """Create an account."""
    email = email.strip().lower()
    if "@" not in email:
        raise click.BadParameter("that is not an e-mail address", param_hint="EMAIL")
    if len(password) < 8:
        raise click.BadParameter("use at least 8 characters", param_hint="--password")
    if db.session.scalar(select(User).filter_by(email=email)):
        raise click.ClickException(f"{email} already has an account")
    user = User(email=email, name=name.strip(), role=role)
    user.set_password(password)
    db.session.add(user)
    db.session.flush()
    record("user_created", None, f"{email} created as {role} from the command line")
    db.session.commit()
    click.echo(f"Created {role} {email}.")


@user_group.command("list")
@needs_schema
def user_list() -> None:
    """List the accounts."""
    for user in db.session.scalars(select(User).order_by(User.email)):
        state = "active" if user.active else "deactivated"
        click.echo(f"{user.email}\t{user.name}\t{user.role}\t{state}")


@user_group.command("deactivate")
@click.argument("email")
@needs_schema
def user_deactivate(email: str) -> None:
    """Deactivate an account; its open sessions end at once."""
    user = db.session.scalar(select(User).filter_by(email=email.strip().lower()))
    if user is None:
        raise click.ClickException(f"no account for {email}")
    user.active = False
    user.rotate_session_token()
    record("user_deactivated", None, f"{user.email} deactivated from the command line")
    db.session.commit()
    click.echo(f"Deactivated {user.email}.")


def _account(email: str) -> User:
    """Find an account by e-mail or stop with a clear message."""
    user = db.session.scalar(select(User).filter_by(email=email.strip().lower()))
    if user is None:
        raise click.ClickException(f"no account for {email}")
    return user


@user_group.command("set-password")
@click.argument("email")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@needs_schema
def user_set_password(email: str, password: str) -> None:
    """Set an account's password; its sessions end everywhere."""
    from .account import password_problem

    user = _account(email)
    problem = password_problem(password, password)
    if problem:
        raise click.BadParameter(problem, param_hint="--password")
    user.set_password(password)
    user.rotate_session_token()  # whoever knew the old password is signed out now
    record("password_set", None, f"password of {user.email} set from the command line")
    db.session.commit()
    state = "" if user.active else " (the account is deactivated: reactivate it to sign in)"
    click.echo(f"Set the password of {user.email}; its sessions have ended{state}.")


def _duration(seconds: int) -> str:
    """Say a lifetime the way a person would: "24 hours", "15 minutes"."""
    for unit, size in (("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return f"{seconds} seconds"


@user_group.command("reset-link")
@click.argument("email")
@needs_schema
def user_reset_link(email: str) -> None:
    """Print a one-time link that lets the person choose a new password (no mail server)."""
    from .account import DEFAULT_RESET_MAX_AGE, reset_link

    user = _account(email)
    if not user.active:
        raise click.ClickException(f"{user.email} is deactivated; reactivate the account first")
    link, absolute = reset_link(user)
    record("reset_link_created", None, f"reset link for {user.email} from the command line")
    db.session.commit()
    click.echo(link)
    seconds = int(current_app.config.get("PASSWORD_RESET_MAX_AGE", DEFAULT_RESET_MAX_AGE))
    click.echo(
        f"Give this link to {user.email} only. It works once, for {_duration(seconds)}, and "
        "stops working when the password changes.",
        err=True,
    )
    if not absolute:
        click.echo(
            "The link is relative to the site's address: put https://your-site in front of it "
            "(set SITE_URL to print a full link).",
            err=True,
        )


@click.group("token", cls=AppGroup)
def token_group() -> None:
    """Manage API tokens."""


@token_group.command("create")
@click.argument("email")
@click.option("--name", "label", default="", help="A label to recognise the token by.")
@needs_schema
def token_create(email: str, label: str) -> None:
    """Create an API token for an account and print it (once: only its digest is kept)."""
    from .api import create_token

    user = db.session.scalar(select(User).filter_by(email=email.strip().lower()))
    if user is None or not user.active:
        raise click.ClickException(f"no active account for {email}")
    token, secret = create_token(user, label)
    record("token_created", None, f"token {token.prefix}… for {user.email} from the command line")
    db.session.commit()
    click.echo(secret)
    click.echo(
        f"Token {token.prefix}… for {user.email}. Store it now: it cannot be shown again.", err=True
    )


@click.command("import")
@with_appcontext
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--author",
    "author_email",
    default="",
    help="Account that owns the articles (default: the front matter's author e-mail, "
    "else the first admin).",
)
@needs_schema
def import_command(paths: tuple[Path, ...], author_email: str) -> None:
    """Import Markdown files or folders of them (Hugo and Jekyll front matter).

    Point it at Hugo's content/ or Jekyll's _posts/ (and _drafts/). AI-generated files go to
    the review queue; re-importing a file updates its article instead of duplicating it.
    On a terminal a progress bar counts the files; otherwise each file gets a line.
    """
    from .importer import ImportBlocked, ImportReport, import_paths

    author = None
    if author_email:
        author = db.session.scalar(select(User).filter_by(email=author_email.strip().lower()))
        if author is None:
            raise click.ClickException(f"no account for {author_email}")
    on_terminal = _on_terminal()

    def note(message: str) -> None:
        click.echo(f"note: {message}", err=True)

    counts = [0, 0]  # files through (in the batches written), files found: where Ctrl-C stopped
    with ExitStack() as stack:
        bars: list[Any] = []  # click's progress bar, made on the first call

        def progress(done: int, total: int, report: ImportReport) -> None:
            counts[:] = done, total
            if not on_terminal:
                return
            if not bars:  # the total is known once the folders are walked
                bars.append(
                    stack.enter_context(
                        click.progressbar(
                            length=total,
                            label="Importing",
                            show_pos=True,
                            item_show_func=_import_counts,
                        )
                    )
                )
            bars[0].update(done - bars[0].pos, report)

        try:
            report = import_paths(list(paths), author, progress=progress, notes=note)
        except ImportBlocked as blocked:
            raise click.ClickException(str(blocked)) from None
        except KeyboardInterrupt:  # after a whole batch: what was written stays
            _ignore_ctrl_c()
            stack.close()  # the bar's last line first
            click.echo(IMPORT_STOPPED.format(done=counts[0], total=counts[1]), err=True)
            raise click.Abort() from None
    if not on_terminal:  # a log or a pipe gets one line per file; a person gets the bar
        lines = [f"created  {entry}" for entry in report.created]
        lines += [f"updated  {entry}" for entry in report.updated]
        if lines:  # one write, not one (and a flush) per file
            click.echo("\n".join(lines))
    skipped = [(entry.where, entry.reason) for entry in report.skipped]
    errors = [(error.where, error.message) for error in report.errors]
    if on_terminal:  # a person reads a problem once; a log keeps its line per file
        skipped, errors = _per_message(skipped), _per_message(errors)
    for where, reason in skipped:
        click.echo(f"skipped  {where}: {reason}")
    for warning in report.warnings:
        click.echo(f"warning  {warning}", err=True)
    for where, message in errors:
        click.echo(f"error    {where}: {message}", err=True)
    if report.stopped:
        click.echo(f"error    {report.stopped}", err=True)
    click.echo(report.summary())
    if report.errors or report.stopped:
        raise SystemExit(1)


IMPORT_STOPPED = (
    "Stopped after {done} of {total} files; the batches written are kept. Run the same import "
    "again to finish: the files already imported are skipped as unchanged."
)
# On a terminal, a message this many files share is said once, naming the first few of them.
SAID_ONCE_FROM, NAMED = 4, 3


def _per_message(lines: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Group (where, message) lines: a message many files share is one ("a, b, c and 9 more")."""
    by_message: dict[str, list[str]] = {}
    for where, message in lines:
        by_message.setdefault(message, []).append(where)
    grouped = []
    for message, places in by_message.items():
        if len(places) < SAID_ONCE_FROM:
            grouped += [(where, message) for where in places]
        else:
            more = len(places) - NAMED
            named = ", ".join(places[:NAMED])
            grouped.append((f"{named} and {more} more file{'' if more == 1 else 's'}", message))
    return grouped


def _on_terminal() -> bool:
    """Say whether a person is watching (stdout is a terminal), not a log or a pipe."""
    return sys.stdout.isatty()


def _ignore_ctrl_c() -> None:
    """Let no further Ctrl-C break in: the import has stopped, and the command only ends.

    Two quick presses are how people stop a command. The second one, arriving after the
    import had stopped, broke into whatever Python ran next: once a weak reference's callback
    as the command ended, which printed a traceback under the stop message.
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def _import_counts(report: object) -> str | None:
    """Show the running counts beside the import's progress bar."""
    from .importer import ImportReport

    if not isinstance(report, ImportReport):
        return None
    return report.summary()


@click.command("rerender")
@with_appcontext
@needs_schema
def rerender() -> None:
    """Render every article's HTML again and rebuild the search index (after an upgrade).

    A published article's category and tags are found again from its approved revision too,
    as the release that gave "C++" and "C#" slugs of their own needs (migration 0011), and
    every revision's image hashes from its text (what where_used and the delete check read).
    """
    from .articles import copy_terms, refresh_revision_images
    from .content import render
    from .models import Article, Revision
    from .search import rebuild_index

    count = terms = 0
    for article in db.session.scalars(select(Article)).unique().all():
        rendered = render(article.body)
        article.body_html, article.reading_minutes = rendered.html, rendered.minutes
        approved = db.session.get(Revision, article.published_revision_id or 0)
        if approved is not None and copy_terms(article, approved):
            terms += 1
        count += 1
    images = refresh_revision_images()
    indexed = rebuild_index()
    db.session.commit()
    click.echo(
        f"Rendered {count} articles again; {terms} had their category or tags set again from "
        f"the approved text; {images} revisions had their images listed again; {indexed} in "
        "the search index."
    )


@click.command("backup")
@with_appcontext
@click.argument("path", type=click.Path(path_type=Path))
def backup(path: Path) -> None:
    """Copy the live SQLite database consistently while the site runs, then check the copy.

    PATH is a new file, or a folder to write blog-<UTC time>.sqlite3 in. Restore: stop the
    site, put the copy in place of the database file, delete the database's stale -wal and
    -shm files, start the site. On PostgreSQL it says how to use pg_dump instead.
    """
    url = db.engine.url
    if url.get_backend_name() != "sqlite":
        raise click.ClickException(
            f"backup copies SQLite databases; this site uses {url.get_backend_name()}. Use its own "
            'tools, e.g. pg_dump --format=custom --file=blog.dump "$DATABASE_URL" (drop the '
            "+psycopg from the URL), restored with pg_restore --clean --dbname=URL blog.dump"
        )
    if not url.database or url.database == ":memory:":
        raise click.ClickException("the database is in memory: there is no file to back up")
    if path.is_dir():  # sorts by time, and a run from cron never meets the last one's file
        path /= f"blog-{clock.now():%Y-%m-%dT%H%M%SZ}.sqlite3"
    elif not path.parent.is_dir():
        raise click.ClickException(
            f"the folder {path.parent} does not exist; create it first (mkdir -p {path.parent})"
        )
    try:
        # Created empty and readable by its owner only before a byte is written: the copy holds
        # password hashes and token digests.
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        raise click.ClickException(f"{path} exists already; choose a new file") from None
    except OSError as error:
        raise click.ClickException(f"cannot create {path}: {error.strerror}") from None
    try:
        summary = _copy_sqlite(Path(url.database), path)
    except BaseException:
        path.unlink(missing_ok=True)  # a partial or broken copy must not pass for a backup
        raise
    click.echo(f"Backed up {url.database} to {path} ({summary}; integrity ok).")
    current_app.logger.info("backup written to %s", path)


def _copy_sqlite(database: Path, path: Path) -> str:
    """Copy the database into the empty file at path in one step; check it; describe it."""
    source = sqlite3.connect(database, timeout=30)
    target = sqlite3.connect(path)
    try:
        # One step (pages=-1) copies everything inside a single read transaction. In steps, every
        # write by another connection restarts the copy, so on a busy site it never finished.
        # WAL lets the site keep writing meanwhile; the copy is the moment the step began.
        source.backup(target, pages=-1)
        result = target.execute("PRAGMA integrity_check").fetchone()[0]
        if result != "ok":
            raise click.ClickException(f"the copy failed its integrity check: {result}")
        counts = [
            f"{target.execute(f'SELECT count(*) FROM {table}').fetchone()[0]} {table}"
            for table in ("articles", "revisions", "users")
            if target.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
            ).fetchone()
        ]
    finally:
        target.close()
        source.close()
    size = path.stat().st_size
    return ", ".join([f"{size / 1_048_576:.1f} MB", *counts])
