"""Keeping the cyclic garbage collector's full passes out of a server's requests.

CPython's oldest-generation pass walks every tracked object that is not frozen, holding
the GIL throughout. A server process holds a quarter of a million of them before its
first request (the libraries, the app, the decision snapshot), and its cache of
customers adds about thirty a customer. Measured on the 1,000,000-customer bench, such
passes took 40–140 ms, every second or few under load, and every request waiting in that
time was late by it: p99 at 200 decisions/s 20–150 ms with a p50 of 2 ms
(docs/benchmarks.md, 4 December 2026).

So a server (``serve``) no longer lets the collector start full passes on its own: the
young generations are still collected as usual (that is where a request's cycles die),
and ``settle`` runs a full pass at moments the process chooses (at start and after each
full reload of the decision snapshot, at least every ten minutes), then freezes the
survivors (``gc.freeze``) so the next pass walks only what came since. Frozen objects
are still freed by their reference counts (an evicted customer, a replaced snapshot;
neither holds cycles, measured); a cycle that forms among them after freezing stays
until ``settle(thaw=True)``, which the server runs at every sixth full reload.
"""

from __future__ import annotations

import gc
import logging
import time

log = logging.getLogger("relata.heap")

# Young generations as CPython's defaults; the third threshold counts second-generation
# passes before a full one: this many is "never" for a server settling every ten minutes.
THRESHOLDS = (700, 10, 1_000_000)


def serve(periodic: bool = True) -> None:
    """This process is a long-running server: full passes only through ``settle``, if
    something settles ``periodic``-ally (else the collector keeps its own schedule, so
    that cycles never pile up without end)."""
    if periodic:
        gc.set_threshold(*THRESHOLDS)
    settle()


def settle(thaw: bool = False) -> float:
    """A full pass over what is not frozen (with ``thaw``, over everything), then freeze
    the survivors; returns the pause in ms."""
    started = time.perf_counter()
    if thaw:
        gc.unfreeze()
    gc.collect()
    gc.freeze()
    pause = (time.perf_counter() - started) * 1000
    log.info("heap settled: %d objects frozen, %.0f ms", gc.get_freeze_count(), pause)
    return pause
