"""How a gunicorn worker collects garbage: between requests, never inside C code (Python < 3.12).

Python 3.11 runs the cyclic collector inside whichever allocation crosses its threshold, with
finalizers that may hand the GIL to another request's thread. Threaded workers here died of
SIGSEGV under load with it, and no longer do with this (blog/gunicorn_conf.py says more). The
crash takes minutes of load to show, so these tests pin the mechanism instead: the automatic
collector is off in a worker, and garbage cycles are still freed, by the collection each
answered request runs when due.
"""

from __future__ import annotations

import gc
import json
import os
import time
import urllib.request
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

from blog import gunicorn_conf

from .conftest import collector_off
from .services import gunicorn_server

# Python 3.12+ collects between bytecodes itself, and 3.14's incremental collector counts
# otherwise: a worker there keeps its own collector, and these tests do not apply.
pytestmark = pytest.mark.skipif(
    not gunicorn_conf.COLLECT_BETWEEN_REQUESTS, reason="Python 3.12+ collects between bytecodes"
)

PROBE = '''
"""A WSGI app that makes garbage cycles and says whether they are still alive."""
import gc, json, weakref

class Node:
    pass

kept = []  # weak references only: the cycles are garbage as soon as a request ends
freed = [0]
# Each other request keeps some objects, as a real one allocates: the worker's collections are
# due by allocations, so a cycle that lands in an older generation is reached in a few hundred
# requests instead of whenever the probe's small answers add up to a threshold.
ballast = []

def gone(_ref):
    freed[0] += 1

def app(environ, start_response):
    if environ["PATH_INFO"] == "/cycles":
        for _ in range(5000):
            node = Node()
            node.me = node
            kept.append(weakref.ref(node, gone))
    else:
        ballast.append([[] for _ in range(800)])
    # Counted by the references' callbacks, never by calling them: a call holds its node for a
    # moment, and a collection in the other thread (after the previous answer) then keeps it.
    alive = len(kept) - freed[0]
    state = {"collector_on": gc.isenabled(), "frozen": gc.get_freeze_count() > 0}
    body = json.dumps({**state, "alive": alive, "made": len(kept)})
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body.encode()]
'''


class Cycle:
    """An object only a reference cycle keeps alive."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture(name="collector_off")
def _collector_off() -> Iterator[None]:
    """Turn the automatic collector off for one test, as a worker does; restore it after."""
    with collector_off():
        yield


def test_a_collection_runs_only_once_the_thresholds_call_for_it(collector_off):
    gc.set_threshold(10_000, 10, 10)
    garbage = weakref.ref(Cycle())
    gunicorn_conf.collect_if_due()
    assert garbage() is not None  # one new object: nothing due yet
    _ = [Cycle() for _ in range(10_001)]
    del _
    gunicorn_conf.collect_if_due()
    assert garbage() is None
    assert gc.get_count()[0] == 0


def test_the_oldest_generation_is_collected_once_its_threshold_is_crossed(collector_off):
    gc.set_threshold(100, 1, 1)
    survivor = Cycle()
    gc.collect(1)  # the survivor moves to the oldest generation, whose count is now 1
    old_garbage = weakref.ref(survivor)
    del survivor
    freed_after = None
    for young in range(1, 6):
        _ = [Cycle() for _ in range(150)]
        del _
        gunicorn_conf.collect_if_due()
        if old_garbage() is None:
            freed_after = young
            break
    # Two young collections make the middle one due; the middle one's second makes the oldest.
    assert freed_after == 4


def test_a_collector_with_threshold_zero_stays_off(collector_off):
    gc.set_threshold(0)  # Python's own way to say "never collect automatically"
    garbage = weakref.ref(Cycle())
    _ = [Cycle() for _ in range(1000)]
    del _
    gunicorn_conf.collect_if_due()
    assert garbage() is not None


def test_a_worker_frees_garbage_between_requests_with_its_automatic_collector_off(tmp_path: Path):
    (tmp_path / "gcprobe.py").write_text(PROBE)
    env = dict(os.environ, WEB_CONCURRENCY="1", GUNICORN_THREADS="2")
    with gunicorn_server(tmp_path, env, app="gcprobe:app") as url:
        made = _state(f"{url}/cycles")
        assert made["made"] == 5000 and not made["collector_on"]
        deadline = time.monotonic() + 10
        state = _state(f"{url}/")
        while state["alive"] and time.monotonic() < deadline:
            time.sleep(0.05)  # the collection runs once the answer is sent, maybe after ours
            state = _state(f"{url}/")
    assert state == {"collector_on": False, "frozen": True, "alive": 0, "made": 5000}


def _state(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)
