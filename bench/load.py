"""The load phase: the site served as `make run` serves it (gunicorn), driven over HTTP by wrk.

What it measures, on a copy of the 10k corpus:
- throughput (requests/s) of the home page, an article and a 20-card search fragment, each
  against a bare Flask "hello" app served with the same gunicorn settings (the floor);
- readers' latency (p50/p95) with 50 concurrent readers over a mix of pages, alone and while
  writers autosave drafts in the studio and send drafts through the API;
- the bytes a browser receives: the home page's first load (HTML and everything it pulls in)
  and a 20-card search fragment, asking for compression as browsers do.

wrk (https://github.com/wg/wrk) is the load generator; its Lua hooks pick the paths and report
the latency percentiles as JSON. Everything here runs on the same machine as the server, so the
load generator and the writers take their share of the CPUs too (as they did in issue 8).
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from html.parser import HTMLParser
from http.cookiejar import CookieJar
from pathlib import Path

from . import corpus

LOAD_SIZE = 10_000
CONNECTIONS = 50  # concurrent readers
WRK_THREADS = 2
BROWSER_ENCODING = "gzip, deflate, br, zstd"  # what Chromium sends
WRK_INSTALL = "apt-get install -y wrk (Debian, Ubuntu) or brew install wrk (macOS)"
PASSWORD = "bench-load-password"
AUTOSAVE_WRITERS = 2
API_WRITERS = 2
WRITE_INTERVAL = 0.5  # seconds between one writer's requests: 8 writes/s with 4 writers
START_TIMEOUT = 90

# Goals of issue 8 ("Serve readers like a static site"), with the figures measured before.
GOAL_THROUGHPUT = 0.60
GOAL_P95_MS = 100
GOAL_HOME_BYTES = 30_000
GOAL_FRAGMENT_BYTES = 8_000

# wrk's Lua side: each connection walks the list of "H|path" / "-|path" lines (H: an htmx
# request); at the end, one JSON line with the totals and the latency percentiles (µs).
WRK_SCRIPT = r"""
local paths = {}
local counter = 0
local threads = {}
hits, misses = 0, 0
function setup(thread)
  table.insert(threads, thread)
end
function init(args)
  for line in io.lines(args[1]) do
    local kind, path = line:match("^(.)|(.*)$")
    paths[#paths + 1] = {kind, path}
  end
  counter = math.random(#paths)
end
function request()
  counter = counter % #paths + 1
  local entry = paths[counter]
  local headers = {}
  if entry[1] == "H" then headers["HX-Request"] = "true" end
  return wrk.format("GET", entry[2], headers)
end
function response(status, headers, body)
  local cache = headers["X-Cache"]
  if cache == "HIT" then hits = hits + 1 elseif cache == "MISS" then misses = misses + 1 end
end
function done(summary, latency, requests)
  local e = summary.errors
  local all_hits, all_misses = 0, 0
  for _, thread in ipairs(threads) do
    all_hits = all_hits + thread:get("hits")
    all_misses = all_misses + thread:get("misses")
  end
  io.write(string.format(
    '\nWRKJSON {"requests": %d, "duration_us": %d, "bytes": %d, "connect": %d, "read": %d, '
    .. '"write": %d, "status": %d, "timeout": %d, "p50": %d, "p95": %d, "p99": %d, '
    .. '"max": %d, "hits": %d, "misses": %d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(95), latency:percentile(99),
    latency.max, all_hits, all_misses))
end
"""


def hello_app():  # noqa: ANN201 - a Flask app, imported by gunicorn as bench.load:hello_app()
    """A bare Flask app that answers "Hello": the floor served with the same gunicorn settings."""
    from flask import Flask

    app = Flask("hello")
    app.add_url_rule("/", "hello", lambda: "Hello, World!")
    return app


class LoadFailure(Exception):
    """The load phase could not run (no wrk, a server that does not start)."""


@dataclass
class WrkRun:
    """What one wrk run reported."""

    requests: int
    seconds: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    errors: int  # socket errors and timeouts
    bad_status: int  # answers other than 2xx/3xx
    hits: int = 0  # answers the page cache served (X-Cache: HIT)
    misses: int = 0  # answers rendered by the app (X-Cache: MISS)

    @property
    def hit_share(self) -> str:
        """Say which share of the answers came from the page cache ("-" without X-Cache)."""
        labelled = self.hits + self.misses
        return f"{self.hits / labelled:.0%}" if labelled else "-"

    @property
    def rate(self) -> float:
        """Requests per second."""
        return self.requests / self.seconds if self.seconds else 0.0


@dataclass
class Writers:
    """Authors autosaving and AI tools sending drafts, in threads, while readers read."""

    base: str
    authors: list[str]
    tokens: list[str]
    stop: threading.Event = field(default_factory=threading.Event)
    latencies: list[float] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        """Sign the authors in and open their drafts (before the clock runs), then write."""
        for email in self.authors:
            session = _AuthorSession(self.base, email)
            try:
                session.open_draft()
            except (OSError, LoadFailure) as error:
                self.problems.append(f"{email}: {error}")
                continue
            self.threads.append(threading.Thread(target=self._autosaves, args=(session,)))
        for token in self.tokens:
            self.threads.append(threading.Thread(target=self._api_drafts, args=(token,)))
        for thread in self.threads:
            thread.start()

    def finish(self) -> None:
        """Stop writing and wait for the threads."""
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)

    def _record(self, started: float, kind: str, status: int) -> None:
        self.latencies.append(time.perf_counter() - started)
        # 0: the connection closed or timed out without an answer (bench/README.md, load phase).
        label = f"{kind} {status}" if status else f"{kind} NO ANSWER"
        self.statuses[label] = self.statuses.get(label, 0) + 1

    def _autosaves(self, session: _AuthorSession) -> None:
        """Autosave one draft again and again, as the editor does after each pause in typing."""
        words = 0
        while not self.stop.is_set():
            words += 1
            started = time.perf_counter()
            status = session.autosave(f"Still typing, word {words}. " * 40)
            self._record(started, "autosave", status)
            self.stop.wait(WRITE_INTERVAL)

    def _api_drafts(self, token: str) -> None:
        """Send AI drafts through the JSON API, one after another."""
        number = 0
        while not self.stop.is_set():
            number += 1
            body = "## A section\n\n" + "The writer measures the load on the site. " * 150
            payload = {
                "title": f"Load draft {token[-6:]} {number}",
                "summary": "Sent while readers read.",
                "category": "Backend",
                # Tags the corpus has: a new tag turns the page cache over, a new draft does not.
                "tags": corpus.tag_names()[:2],
                "body_markdown": body,
                "ai_model": "bench-model",
            }
            request = urllib.request.Request(
                f"{self.base}/api/drafts",
                data=json.dumps(payload).encode(),
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                method="POST",
            )
            started = time.perf_counter()
            self._record(started, "API draft", _status_of(request))
            self.stop.wait(WRITE_INTERVAL)


class _AuthorSession:
    """One author signed in through the login form, with the editor's hidden fields."""

    def __init__(self, base: str, email: str) -> None:
        self.base = base
        self.email = email
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
        self.fields: dict[str, str] = {}
        self.article_id = 0

    def _form(self, path: str, data: dict[str, str] | None = None) -> tuple[str, str]:
        """GET or POST a form (following redirects); return the final URL and the page."""
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        with self.opener.open(f"{self.base}{path}", data=body, timeout=30) as response:
            return response.url, response.read().decode()

    def open_draft(self) -> None:
        """Sign in and create a draft, keeping the editor's hidden fields for the autosaves."""
        _, page = self._form("/login")
        self._form(
            "/login",
            {"csrf_token": _hidden(page, "csrf_token"), "email": self.email, "password": PASSWORD},
        )
        _, page = self._form("/studio/new")
        fields = {name: _hidden(page, name) for name in ("csrf_token", "editing_session")}
        url, page = self._form(
            "/studio/new",
            {**fields, "base_revision": "0", "title": f"Autosaved by {self.email}", "body": "."},
        )
        found = re.search(r"/studio/(\d+)/edit", url)
        if not found:
            raise LoadFailure(f"creating a draft as {self.email} ended on {url}")
        self.article_id = int(found.group(1))
        self.fields = {
            "csrf_token": _hidden(page, "csrf_token"),
            "editing_session": _hidden(page, "editing_session"),
            "base_revision": _hidden(page, "base_revision"),
            "title": f"Autosaved by {self.email}",
        }

    def autosave(self, body: str) -> int:
        """Post the editor's text to the autosave endpoint, as htmx does; return the status."""
        request = urllib.request.Request(
            f"{self.base}/studio/{self.article_id}/autosave",
            data=urllib.parse.urlencode({**self.fields, "body": body}).encode(),
            headers={"HX-Request": "true", "X-CSRFToken": self.fields["csrf_token"]},
            method="POST",
        )
        try:
            with self.opener.open(request, timeout=30) as response:
                response.read()
                return response.status
        except urllib.error.HTTPError as error:
            return error.code
        except OSError:  # as _status_of: a lost connection is an answer to count, not a crash
            return 0


def _hidden(page: str, name: str) -> str:
    """Read a hidden input's value from a form."""
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    if not found:
        raise LoadFailure(f"no {name} field in the form")
    return found.group(1)


def _status_of(request: urllib.request.Request) -> int:
    """Send a request and return its status (an error status included)."""
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


class Server:
    """gunicorn with blog/gunicorn_conf.py in its own process, as `make run` starts it."""

    def __init__(self, app: str, folder: Path, env: dict[str, str] | None = None) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = folder / f"gunicorn-{self.port}.log"
        environment = {**os.environ, **(env or {}), "HOST": "127.0.0.1", "PORT": str(self.port)}
        for name in ("DATABASE_URL", "SITE_URL", "GUNICORN_CMD_ARGS"):
            if name not in (env or {}):
                environment.pop(name, None)
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", "python:blog.gunicorn_conf", app],
                cwd=corpus.BENCH_DIR.parent,
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def __enter__(self) -> Server:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise LoadFailure(f"gunicorn exited:\n{self.log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(self.url + "/", timeout=5):
                    return self
            except urllib.error.HTTPError:
                return self
            except OSError:
                time.sleep(0.2)
        self.__exit__()
        raise LoadFailure(f"gunicorn did not answer on {self.url} in {START_TIMEOUT} s")

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def workers(self) -> str:
        """Say how many workers and threads the server runs, from its log and settings."""
        booted = self.log_path.read_text().count("Booting worker")
        from blog import gunicorn_conf

        return f"{booted} workers x {gunicorn_conf.threads} threads (gthread)"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wrk(
    url: str,
    paths: list[str],
    folder: Path,
    seconds: float,
    connections: int = CONNECTIONS,
) -> WrkRun:
    """Run wrk against `url` over `paths` ("H|/path" for htmx requests); return its figures."""
    script = folder / "paths.lua"
    script.write_text(WRK_SCRIPT)
    listing = folder / f"paths-{len(paths)}-{abs(hash(tuple(paths)))}.txt"
    listing.write_text("\n".join(paths) + "\n")
    command = ["wrk", "-t", str(WRK_THREADS), "-c", str(connections), "-d", f"{seconds:g}s"]
    command += ["--timeout", "10s", "-H", f"Accept-Encoding: {BROWSER_ENCODING}"]
    command += ["-s", str(script), url, "--", str(listing)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    found = re.search(r"^WRKJSON (.*)$", done.stdout, re.MULTILINE)
    if done.returncode != 0 or not found:
        raise LoadFailure(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    data = json.loads(found.group(1))
    return WrkRun(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50"] / 1000,
        p95_ms=data["p95"] / 1000,
        p99_ms=data["p99"] / 1000,
        max_ms=data["max"] / 1000,
        errors=data["connect"] + data["read"] + data["write"] + data["timeout"],
        bad_status=data["status"],
        hits=data["hits"],
        misses=data["misses"],
    )


# -- bytes over the wire ------------------------------------------------------------------------


class _Assets(HTMLParser):
    """Collect what a browser fetches to show a page: styles, scripts, icons, images, sprites."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.icon = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        rel = values.get("rel", "").lower().split()
        if tag == "link" and {"stylesheet", "icon", "preload", "modulepreload"} & set(rel):
            self.icon = self.icon or "icon" in rel
            self.urls.append(values.get("href", ""))
        elif tag in ("script", "img") and values.get("src"):
            self.urls.append(values["src"])
        elif tag == "use":
            reference = values.get("href") or values.get("xlink:href") or ""
            if not reference.startswith("#"):  # an external sprite file
                self.urls.append(reference)


@dataclass
class Transfer:
    """One response of a page load, as counted on the wire."""

    path: str
    status: int
    header_bytes: int
    body_bytes: int
    encoding: str

    @property
    def total(self) -> int:
        """Headers and body, as a browser's network panel counts a transfer."""
        return self.header_bytes + self.body_bytes


def wire_bytes(url: str, headers: dict[str, str]) -> Transfer:
    """Fetch a URL as a browser does and count the bytes received, headers and body."""
    parts = urllib.parse.urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = [f"GET {target} HTTP/1.1", f"Host: {parts.netloc}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as connection:
        connection.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        received = bytearray()
        while chunk := connection.recv(65536):
            received += chunk
    head, _, body = bytes(received).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    fields = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        fields[name.strip().lower()] = value.strip()
    return Transfer(
        path=target,
        status=int(lines[0].split(" ", 2)[1]),
        header_bytes=len(head) + 4,
        body_bytes=len(body),
        encoding=fields.get("content-encoding", "identity"),
    )


def first_load(base: str, path: str = "/") -> list[Transfer]:
    """Fetch a page and everything it pulls in, as a first visit (empty cache) does."""
    accept = {"Accept-Encoding": BROWSER_ENCODING, "Accept": "text/html,*/*"}
    with urllib.request.urlopen(base + path, timeout=30) as response:  # identity, to parse it
        html = response.read().decode()
    parser = _Assets()
    parser.feed(html)
    wanted = [path]
    for url in parser.urls:
        absolute = urllib.parse.urljoin(base + path, url.split("#")[0])
        if absolute.startswith(base) and absolute[len(base) :] not in wanted:
            wanted.append(absolute[len(base) :])
    if not parser.icon:
        wanted.append("/favicon.ico")  # what browsers ask for when the page names no icon
    transfers = []
    for item in wanted:
        transfer = wire_bytes(base + item, accept)
        transfers.append(transfer)
        if item.endswith(".css") and transfer.status == 200:
            for found in re.findall(r"url\(\s*['\"]?([^'\")]+)", _plain(base + item)):
                absolute = urllib.parse.urljoin(base + item, found.split("#")[0])
                path = absolute[len(base) :]
                if absolute.startswith(base) and path not in wanted:
                    wanted.append(path)  # fetched in its turn by this same loop
    return transfers


def _plain(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read().decode(errors="replace")


# -- the phase ----------------------------------------------------------------------------------


@dataclass
class LoadResult:
    """Everything the load phase measured, for the report."""

    server: str = ""
    seconds: float = 0.0
    throughput: dict[str, WrkRun] = field(default_factory=dict)
    floor_rates: list[float] = field(default_factory=list)  # before and after the pages
    urls: dict[str, str] = field(default_factory=dict)
    readers_alone: WrkRun | None = None
    readers_writing: WrkRun | None = None
    writes: list[float] = field(default_factory=list)
    write_statuses: dict[str, int] = field(default_factory=dict)
    load_before: tuple[float, ...] = ()
    load_after: tuple[float, ...] = ()
    writer_problems: list[str] = field(default_factory=list)
    home_load: list[Transfer] = field(default_factory=list)
    fragment: Transfer | None = None
    fragment_cards: int = 0
    notes: list[str] = field(default_factory=list)


def prepare(database: Path, instance: Path) -> tuple[list[str], list[str], str]:
    """Give some corpus authors a password and API tokens; return emails, tokens, an article."""
    from sqlalchemy import select

    from blog import create_app
    from blog.api import create_token
    from blog.extensions import db
    from blog.models import Article, User

    app = create_app(corpus.app_config(database), instance_path=str(instance))
    try:
        with app.app_context():
            authors = db.session.scalars(
                select(User).filter_by(role="author").order_by(User.id)
            ).all()
            emails = []
            for user in authors[:AUTOSAVE_WRITERS]:
                user.set_password(PASSWORD)
                emails.append(user.email)
            tokens = [create_token(user, "bench")[1] for user in authors[-API_WRITERS:]]
            count = db.session.scalar(select(db.func.count(Article.id)))
            slug = db.session.scalar(
                select(Article.slug).order_by(Article.published_at).offset(count // 2).limit(1)
            )
            db.session.commit()
            return emails, tokens, f"/articles/{slug}"
    finally:
        with app.app_context():
            db.engine.dispose()


def reader_mix(article: str, slugs: list[str]) -> list[str]:
    """The readers' paths: list pages, many articles, live-search fragments, shuffled."""
    vocab = corpus.vocabulary()
    paths = ["-|/"] * 40 + [f"-|/?page={n}" for n in range(2, 12)]
    paths += [f"-|/?category={c}" for c in ("backend", "database", "devops", "security")]
    paths += [f"-|/articles/{slug}" for slug in slugs]
    paths += [f"H|/?q={word}" for word in vocab.tech[:20]]
    paths.append(f"-|{article}")
    random.Random("readers").shuffle(paths)
    return paths


def _fetch(base: str, entry: str) -> None:
    """Request one "H|path" or "-|path" entry once and wait for the answer."""
    kind, _, path = entry.partition("|")
    headers = {"Accept-Encoding": BROWSER_ENCODING}
    if kind == "H":
        headers["HX-Request"] = "true"
    request = urllib.request.Request(base + path, headers=headers)
    with urllib.request.urlopen(request, timeout=60) as response:
        response.read()


def _server_errors(log: Path, limit: int = 12) -> list[str]:
    """Quote the server's errors (a 500's exception, a worker timeout or crash) for the report."""
    lines = log.read_text(errors="replace").splitlines()
    # A worker killed by a signal other than the SIGTERM of shutdown: gunicorn logs it as a
    # WARNING ("Worker (pid:…) was sent SIGSEGV!") and starts another one at once.
    crashes = tuple(f"was sent {name}" for name in ("SIGSEGV", "SIGABRT", "SIGBUS", "SIGILL"))
    marks = ("ERROR", "CRITICAL", "WORKER TIMEOUT", "Error:", "Exception:", *crashes)
    return [line[:200] for line in lines if any(mark in line for mark in marks)][:limit]


def _slugs(database: Path, count: int) -> list[str]:
    import sqlite3

    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
        rows = connection.execute(
            "SELECT slug FROM articles WHERE status = 'published' ORDER BY id LIMIT ?", (count,)
        ).fetchall()
    return [row[0] for row in rows]


def run(seconds: float = 10.0, cache_dir: Path = corpus.CACHE_DIR) -> LoadResult:
    """Run the whole load phase on a copy of the 10k corpus; raise LoadFailure if it cannot."""
    if shutil.which("wrk") is None:
        raise LoadFailure(f"the load phase needs wrk: {WRK_INSTALL}")
    started = time.perf_counter()
    result = LoadResult(load_before=os.getloadavg())
    source = corpus.ensure(LOAD_SIZE, cache_dir)
    with tempfile.TemporaryDirectory(prefix="bench-load-") as scratch:
        folder = Path(scratch)
        database = folder / "blog.sqlite3"
        corpus.progress(f"load: copying the {LOAD_SIZE:,} corpus and starting gunicorn")
        shutil.copyfile(source, database)
        instance = folder / "instance"
        instance.mkdir()
        emails, tokens, article = prepare(database, instance)
        # Writers write faster than the studio's and the API's per-person limits allow.
        (instance / "config.py").write_text(
            'AUTOSAVE_RATE_LIMIT = "100000 per minute"\n'
            'API_DRAFT_RATE_LIMIT = "100000 per minute;1000000 per day"\n'
        )
        env = {"BLOG_INSTANCE_PATH": str(instance), "DATABASE_URL": f"sqlite:///{database}"}
        fragment = f"/?q={corpus.COMMON_WORD}"
        pages = {"home": "-|/", "article": f"-|{article}", "search fragment": f"H|{fragment}"}
        result.urls = {name: path[2:] for name, path in pages.items()}

        with (
            Server("bench.load:hello_app()", folder) as hello,
            Server("app:app", folder, env) as site,
        ):
            corpus.progress("load: the floor, a bare Flask app under the same settings")
            wrk(hello.url, ["-|/"], folder, 2)  # warm-up
            floors = [wrk(hello.url, ["-|/"], folder, seconds)]
            result.server = site.workers()
            for name, path in pages.items():
                corpus.progress(f"load: {name} throughput")
                _fetch(site.url, path)  # one render fills the page cache, not fifty at once
                wrk(site.url, [path], folder, 2)  # warms every worker
                result.throughput[name] = wrk(site.url, [path], folder, seconds)
            corpus.progress("load: the floor again, after the pages")
            floors.append(wrk(hello.url, ["-|/"], folder, seconds))
            # The faster of the two: a busy moment during one run cannot flatter the ratios.
            result.floor_rates = [run.rate for run in floors]
            result.throughput = {
                "floor": max(floors, key=lambda run: run.rate),
                **result.throughput,
            }
            mix = reader_mix(article, _slugs(database, 100))
            corpus.progress(f"load: {CONNECTIONS} readers over {len(mix)} paths, alone")
            for entry in dict.fromkeys(mix):  # every page rendered once, into the page cache
                _fetch(site.url, entry)
            wrk(site.url, mix, folder, 2)  # warms every worker
            result.readers_alone = wrk(site.url, mix, folder, seconds)
            corpus.progress(f"load: {CONNECTIONS} readers while {len(emails) + len(tokens)} write")
            writers = Writers(site.url, emails, tokens)
            writers.start()
            try:
                result.readers_writing = wrk(site.url, mix, folder, seconds)
            finally:
                writers.finish()
            result.writes = writers.latencies
            result.write_statuses = writers.statuses
            result.writer_problems = writers.problems
            corpus.progress("load: bytes over the wire")
            result.home_load = first_load(site.url, "/")
            headers = {"Accept-Encoding": BROWSER_ENCODING, "HX-Request": "true"}
            result.fragment = wire_bytes(site.url + fragment, headers)
            request = urllib.request.Request(site.url + fragment, headers={"HX-Request": "true"})
            with urllib.request.urlopen(request, timeout=30) as response:
                result.fragment_cards = response.read().decode().count("<article")
        result.notes = _server_errors(site.log_path)
    result.seconds = time.perf_counter() - started
    result.load_after = os.getloadavg()
    return result


# -- the report ---------------------------------------------------------------------------------


def _kb(size: int) -> str:
    return f"{size / 1000:,.1f} KB"


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def render(result: LoadResult, seconds: float) -> list[str]:
    """Tabulate the load phase in the bench's style, each figure beside its goal."""
    floor = result.throughput["floor"]
    lines = [
        f"load: gunicorn -c python:blog.gunicorn_conf ({result.server}), SQLite, "
        f"{LOAD_SIZE:,} articles; wrk -t{WRK_THREADS} -c{CONNECTIONS} -d{seconds:g}s with "
        f"Accept-Encoding: {BROWSER_ENCODING}; server, wrk and writers share the machine",
        "machine load (1-minute average, runnable processes on all cores): "
        f"{result.load_before[0]:.1f} before, {result.load_after[0]:.1f} after; "
        "anything else running takes CPU from the server",
        "floor: the faster of two runs, before and after the pages ("
        + " and ".join(f"{rate:,.0f}" for rate in result.floor_rates)
        + " req/s)",
        "",
    ]
    head = f"{'throughput':<34} {'req/s':>9} {'vs floor':>9} {'p50 ms':>8} {'p95 ms':>8}"
    head += f" {'cached':>6}  {'goal':<10} {'':<6}  url"
    lines += [head, "-" * len(head)]
    for name, run in result.throughput.items():
        label = "floor: bare Flask hello" if name == "floor" else name
        share = run.rate / floor.rate if floor.rate else 0.0
        goal = "" if name == "floor" else f">= {GOAL_THROUGHPUT:.0%}"
        verdict = "" if name == "floor" else _verdict(share >= GOAL_THROUGHPUT)
        lines.append(
            f"{label:<34} {run.rate:>9,.0f} {share:>9.1%} {run.p50_ms:>8,.1f} {run.p95_ms:>8,.1f}"
            f" {run.hit_share:>6}  {goal:<10} {verdict:<6}  {result.urls.get(name, '/')}"
            + _problems(run)
        )
    lines.append("")
    head = f"{'readers (50 concurrent, mixed pages)':<34} {'req/s':>9} {'p50 ms':>9} "
    head += f"{'p95 ms':>8} {'p99 ms':>8} {'cached':>6}  {'goal':<10}"
    lines += [head, "-" * len(head)]
    for label, run in (
        ("alone", result.readers_alone),
        ("while writers write", result.readers_writing),
    ):
        if run is None:
            continue
        goal = f"<= {GOAL_P95_MS} ms" if run is result.readers_writing else ""
        verdict = _verdict(run.p95_ms <= GOAL_P95_MS) if goal else ""
        lines.append(
            f"{label:<34} {run.rate:>9,.0f} {run.p50_ms:>9,.1f} {run.p95_ms:>8,.1f} "
            f"{run.p99_ms:>8,.1f} {run.hit_share:>6}  {goal:<10} {verdict}" + _problems(run)
        )
    if result.writes:
        ordered = sorted(result.writes)
        p50 = ordered[len(ordered) // 2] * 1000
        p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))] * 1000
        statuses = ", ".join(f"{n} x {label}" for label, n in sorted(result.write_statuses.items()))
        lines.append(
            f"{'  the writers':<34} {len(ordered) / seconds:>9,.1f} {p50:>9,.1f} {p95:>8,.1f}"
            f"{'':18}({AUTOSAVE_WRITERS} autosaving, {API_WRITERS} API; answers: {statuses})"
        )
    for problem in result.writer_problems:
        lines.append(f"  writer problem: {problem}")
    lines.append("")
    head = f"{'bytes over the wire':<34} {'total':>10} {'goal':>10}  {'':<6}  what"
    lines += [head, "-" * len(head)]
    total = sum(t.total for t in result.home_load)
    lines.append(
        f"{'home page, first load':<34} {_kb(total):>10} {'<= 30 KB':>10}  "
        f"{_verdict(total <= GOAL_HOME_BYTES):<6}  {len(result.home_load)} requests, headers "
        "included"
    )
    for transfer in result.home_load:
        lines.append(
            f"{'  ' + transfer.path[:32]:<34} {_kb(transfer.total):>10} {'':>10}  {'':<6}  "
            f"{transfer.status} {transfer.encoding}, body {_kb(transfer.body_bytes)}"
        )
    if result.fragment is not None:
        fragment = result.fragment
        lines.append(
            f"{'search fragment':<34} {_kb(fragment.total):>10} {'<= 8 KB':>10}  "
            f"{_verdict(fragment.total <= GOAL_FRAGMENT_BYTES):<6}  {fragment.path} "
            f"(HX-Request), {result.fragment_cards} cards, {fragment.status} {fragment.encoding}, "
            f"body {_kb(fragment.body_bytes)}"
        )
    for note in result.notes:
        lines.append(f"server log: {note}")
    lines.append(f"(load phase took {result.seconds:.0f} s)")
    return lines


def _problems(run: WrkRun) -> str:
    """Flag errors and non-2xx answers, which make a throughput figure meaningless."""
    found = []
    if run.errors:
        found.append(f"{run.errors} socket errors/timeouts")
    if run.bad_status:
        found.append(f"{run.bad_status} non-2xx/3xx")
    return f"  !! {', '.join(found)}" if found else ""


def measure_load(seconds: float = 10.0, cache_dir: Path = corpus.CACHE_DIR) -> list[str]:
    """Run the load phase and return the report's lines (one line saying why, if it cannot)."""
    try:
        return render(run(seconds, cache_dir), seconds)
    except LoadFailure as failure:
        return [f"load: not measured: {failure}"]
