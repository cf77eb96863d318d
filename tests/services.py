"""Throwaway PostgreSQL and Redis servers from the system's binaries, for the test suite.

`python -m tests.services COMMAND…` starts both on free ports (a cluster `initdb`-ed into a
temporary folder, a Redis that keeps nothing on disk), runs COMMAND with TEST_DATABASE_URL and
TEST_REDIS_URL pointing at them, then stops both and removes the folder, whatever happened.
`make test-postgres` runs the whole suite this way. The binaries come from Debian's `postgresql`
and `redis-server` packages; PostgreSQL refuses to run as root, so under root the cluster belongs
to the `postgres` account and its commands run through `runuser`.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT = 60  # seconds for a server to accept connections on a busy machine


class MissingServer(RuntimeError):
    """A server's binaries are not installed; the message says which package to install."""


def free_port() -> int:
    """Ask the kernel for a TCP port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def postgres_bindir() -> Path:
    """Find PostgreSQL's server binaries (initdb, pg_ctl): Debian keeps them off the PATH."""
    candidates = []
    if shutil.which("pg_config"):
        found = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
        candidates.append(Path(found.stdout.strip()))
    # Newest major version first: /usr/lib/postgresql/15/bin, ...
    installed = Path("/usr/lib/postgresql").glob("*/bin")
    candidates += sorted(installed, key=lambda p: int(p.parent.name), reverse=True)
    if shutil.which("initdb"):
        candidates.append(Path(shutil.which("initdb")).resolve().parent)
    for folder in candidates:
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    raise MissingServer("PostgreSQL is not installed: apt-get install -y postgresql")


@contextmanager
def postgres_server() -> Iterator[str]:
    """Run a throwaway PostgreSQL cluster; yield the SQLAlchemy URL of its `postgres` database."""
    bindir = postgres_bindir()
    folder = Path(tempfile.mkdtemp(prefix="blog-postgres-"))
    as_owner: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
        as_owner = ["runuser", "-u", "postgres", "--"]
    data, log = folder / "data", folder / "postgres.log"
    try:
        subprocess.run(
            [*as_owner, str(bindir / "initdb"), "-D", str(data), "-U", "postgres"]
            + ["--auth=trust", "--encoding=UTF8", "--no-locale", "--no-sync"],
            check=True,
            capture_output=True,
        )
        port = free_port()
        # Durability is worth nothing for a cluster deleted in a few minutes; speed is.
        options = (
            f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
            " -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        pg_ctl = [*as_owner, str(bindir / "pg_ctl"), "-D", str(data)]
        started = subprocess.run(
            [*pg_ctl, "-l", str(log), "-o", options, "-w", "-t", str(START_TIMEOUT), "start"],
            capture_output=True,
            text=True,
        )
        if started.returncode != 0:
            detail = log.read_text() if log.exists() else started.stderr
            raise RuntimeError(f"PostgreSQL did not start:\n{detail}")
        try:
            yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
        finally:
            subprocess.run([*pg_ctl, "-m", "immediate", "-w", "stop"], capture_output=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def redis_server() -> Iterator[str]:
    """Run a throwaway redis-server that keeps nothing on disk; yield its redis:// URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise MissingServer("redis-server is not installed: apt-get install -y redis-server")
    folder = Path(tempfile.mkdtemp(prefix="blog-redis-"))
    port = free_port()
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir"]
    command += [str(folder), "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_for_port(port, process)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        _stop(process, timeout=10)
        if process.stderr:
            process.stderr.close()
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def gunicorn_server(instance: Path, env: dict[str, str], app: str = "app:app") -> Iterator[str]:
    """Serve `app` as `make run` does (gunicorn, blog/gunicorn_conf.py) on a free port.

    Yields the base URL once /healthz answers; the log is `gunicorn.log` in the instance
    folder, quoted in the error if the server does not come up. `env` is the whole environment.
    """
    port = free_port()
    log_path = instance / "gunicorn.log"
    env = {**env, "BLOG_INSTANCE_PATH": str(instance), "HOST": "127.0.0.1", "PORT": str(port)}
    command = [sys.executable, "-m", "gunicorn", "-c", "python:blog.gunicorn_conf"]
    if app != "app:app":  # another WSGI app, found in the instance folder
        command += ["--pythonpath", str(instance)]
    command.append(app)
    url = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while not _answers(f"{url}/healthz"):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"gunicorn did not answer on {url}:\n{log_path.read_text()}")
                time.sleep(0.1)  # gunicorn has no readiness signal but the port answering
            yield url
        finally:
            _stop(process, timeout=30)


def _stop(process: subprocess.Popen[bytes], timeout: float) -> None:
    """Ask a server to stop, and kill it if it has not within `timeout` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def _wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    """Wait until a server we started accepts connections, or fail with its own words."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            error = process.stderr.read().decode() if process.stderr else ""
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode}: {error}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)  # no readiness event to wait on: the port is the signal
    raise RuntimeError(f"{process.args[0]} did not listen on port {port} in {START_TIMEOUT}s")


def main(command: list[str]) -> int:
    """Run `command` with a throwaway PostgreSQL and Redis; return its exit code."""
    if not command:
        print("usage: python -m tests.services COMMAND [ARGS…]", file=sys.stderr)
        return 2

    # `kill` (SIGTERM) should clean up like Ctrl-C does: unwind through the `finally` blocks.
    def stop(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    try:
        with postgres_server() as database_url, redis_server() as redis_url:
            print(f"PostgreSQL at {database_url}, Redis at {redis_url}", flush=True)
            env = {**os.environ, "TEST_DATABASE_URL": database_url, "TEST_REDIS_URL": redis_url}
            child = subprocess.Popen(command, env=env)
            try:
                return child.wait()
            finally:
                if child.poll() is None:
                    child.terminate()
                    child.wait()
    except MissingServer as error:
        print(f"make test-postgres: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
