"""Gunicorn settings for `make run` and production: `gunicorn -c python:blog.gunicorn_conf app:app`.

Every setting can be overridden on the command line (`--workers 1`) or through the environment:
HOST and PORT (the address, as for `make run`), WEB_CONCURRENCY (workers), GUNICORN_THREADS
(threads per worker) and GUNICORN_CMD_ARGS (any other gunicorn flag, e.g. "--access-logfile -").

Why these values:
- Threaded workers (gthread). A request spends part of its time in SQLite and in socket writes,
  which release the GIL, and a worker keeps idle keep-alive connections without tying up a
  thread, so a few threads per process serve a crowd of readers that sync workers would queue.
- Workers from the CPU count, capped. Rendering is Python and holds the GIL, so processes are
  what use the cores; beyond a few per core they only add memory and context switches, and on
  SQLite every writer waits for the one write lock however many processes there are.
- The app is loaded once in the master (preload) and the workers are forked from it: faster to
  start, less memory. A connection opened before the fork must never be used by two processes
  (SQLite's locks are per process, and a shared socket to PostgreSQL interleaves replies), so
  each worker drops its inherited pool after the fork and opens its own connections.
- Garbage collected between requests (Python before 3.12). Those Pythons run the cyclic
  collector inside whichever allocation crosses its threshold, in the middle of C code, with
  finalizers that may hand the GIL to another request's thread. Workers here died of SIGSEGV
  under concurrent requests, their heaps corrupted, about once in seven 8-second load rounds
  on 3.11.7. The crashes stopped with the collector off (42 rounds), on 3.12, which collects
  only between bytecodes (30 rounds), and with what follows (40 rounds); the exact CPython bug
  is not identified. So a worker there turns the automatic collector off, and once a request
  is answered runs the one collection its thresholds call for, if any. Garbage waits until a
  request on that worker ends.
- The preloaded app is frozen before each fork (Python's idiom for fork without exec): the
  workers' collections neither walk it nor write to the pages they share with the master.
"""

from __future__ import annotations

import gc
import os
import sys
from typing import Any

MAX_WORKERS = 8  # more processes add memory and lock waits, not throughput, on one machine


def _usable_cores() -> int:
    """Count the CPUs this process may run on (a container's limit, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _positive(name: str, default: int) -> int:
    """Read a positive whole number from the environment, or the default when unset."""
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    number = int(value)
    if number < 1:
        raise ValueError(f"{name} must be at least 1, not {value!r}")
    return number


def _address(host: str, port: str) -> str:
    """Join a host and port as gunicorn binds them (an IPv6 address goes in brackets)."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{port}"


cores = _usable_cores()
bind = [_address(os.environ.get("HOST") or "127.0.0.1", os.environ.get("PORT") or "5000")]
workers = _positive("WEB_CONCURRENCY", min(2 * cores + 1, MAX_WORKERS))
worker_class = "gthread"
threads = _positive("GUNICORN_THREADS", 4)
preload_app = True
wsgi_app = "app:app"  # the default when the command line names no application
keepalive = 5  # seconds an idle browser connection stays open for its next request
timeout = 60  # a worker silent this long is restarted (a request may wait 10 s for SQLite's lock)
graceful_timeout = 20
# The heartbeat file in memory, not on a disk that may stall (containers' overlay filesystems).
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
accesslog = None  # off: one line per request costs throughput; GUNICORN_CMD_ARGS can turn it on
errorlog = "-"
loglevel = "info"
proc_name = "tech-blog"
# Gunicorn 25.1+ opens a control socket at one path per account ($HOME/.gunicorn/gunicorn.ctl):
# a second server (the tests', the bench's) would take it over. Older versions ignore the name.
control_socket_disable = True


def when_ready(server: Any) -> None:
    """Turn the shared page cache over once per start, before any worker answers.

    A start may follow a restore (README: stop the site, put the backup in place, start it):
    the pages stored from the replaced database would otherwise be served until they expire.
    Any other start costs one render of each page.
    """
    app = server.app.wsgi()  # preloaded: the app the workers will be forked from
    if "pagecache" not in getattr(app, "extensions", {}):  # another WSGI app (the bench's floor)
        return
    from blog import pagecache

    with app.app_context():
        try:
            pagecache.new_generation()
        except Exception:  # an unreachable Redis must not stop the site from starting
            server.log.exception("could not turn the page cache over at start")


COLLECT_BETWEEN_REQUESTS = sys.version_info < (3, 12)  # see "Garbage collected" above


def collect_if_due() -> None:
    """Collect the oldest generation whose threshold is crossed, if any: one collection a call.

    As 3.11's allocator would, but for its rule that delays full collections while few objects
    became long-lived: here one runs every 11 × 11 young collections. Cheap enough, since the
    preloaded app is frozen and never walked.
    """
    counts, thresholds = gc.get_count(), gc.get_threshold()
    if not thresholds[0] or counts[0] <= thresholds[0]:
        return
    generation = max(g for g in range(3) if counts[g] > thresholds[g])
    gc.collect(generation)


def pre_fork(server: Any, worker: Any) -> None:
    """Move the preloaded app's objects out of the collector's sight before each fork.

    The master's own garbage is collected first, or it would stay frozen, and so for ever.
    """
    gc.collect()
    gc.freeze()


def post_request(worker: Any, req: Any, environ: dict, resp: Any) -> None:
    """Collect garbage at a safe point, between requests, where the interpreter needs it."""
    if COLLECT_BETWEEN_REQUESTS:
        collect_if_due()


def post_fork(server: Any, worker: Any) -> None:
    """Give each worker its own database connections, and on Python < 3.12 its collector off."""
    if COLLECT_BETWEEN_REQUESTS:
        gc.disable()  # post_request collects instead
    app = server.app.wsgi()  # preloaded: the app the master created, now in this worker
    extension = getattr(app, "extensions", {}).get("sqlalchemy")
    if extension is None:  # another WSGI app served with these settings (the bench's floor)
        return
    with app.app_context():
        for engine in extension.engines.values():
            # close=False: the connections belong to the master; closing them here would close
            # them under it. The worker simply forgets them and connects afresh.
            engine.dispose(close=False)
