#!/usr/bin/env python3
"""A framework daemon in Python, standard library only: called by name with
`nsfd call greet COMMAND [DATA-JSON]`, the Go client package, or call.py.

    command = python3 ../examples/python/greet.py
    port    = 127.0.0.1:7004
    type    = notify

Commands (data → result):

    hello {"name"}        → "hello, NAME"; 2003 without a name, 2004 for one over 64 bytes
    slow  {"ms"}          → {"slept_ms"} after ms milliseconds (0 to 60000, else 2004);
                            stops early, unanswered, when the client hangs up
    later {"name", "ms"}  asynchronous: puts a job into the spool through the
                          queue daemon and answers 1001 with its id at once; after
                          ms (default 100) the result, "hello later, NAME", lands
                          in the spool, where the caller waits for it
    info  {}              → {"pid", "worker", "node"}: who answered

docs/wire.md is the protocol; nsfd_wire.py, nsfd_worker.py and nsfd_client.py speak it.
"""
import os
import time

from nsfd_client import Client
from nsfd_wire import Error
from nsfd_worker import Pending, Server, log

MAX_NAME = 64
client = Client()  # finds the queue through NSFD_RESOLVER


def name_of(data):
    name = (data or {}).get("name") if isinstance(data, dict) else None
    if not name:
        raise Error(2003, "name")
    if not isinstance(name, str):
        raise Error(2005, "name must be a string")
    if len(name.encode()) > MAX_NAME:
        raise Error(2004, f"name over {MAX_NAME} bytes")
    return name


def millis(data, default):
    ms = (data or {}).get("ms", default) if isinstance(data, dict) else default
    if not isinstance(ms, int) or isinstance(ms, bool):
        raise Error(2005, "ms must be an integer")
    if not 0 <= ms <= 60_000:
        raise Error(2004, f"ms {ms} (0 to 60000)")
    return ms


def hello(data, call):
    return f"hello, {name_of(data)}"


def slow(data, call):
    ms = millis(data, 1000)
    log(f"slow: {ms} ms")
    if not call.sleep(ms / 1000):
        log(f"slow: the client left before {ms} ms")
        raise Error(2400, "the client left")  # nobody reads it
    return {"slept_ms": ms}


def later(data, call):
    name, ms = name_of(data), millis(data, 100)
    try:
        job = client.enqueue(os.environ.get("NSFD_DAEMON", "greet"), call.request)
    except (Error, OSError, LookupError) as e:
        raise Error(2400, f"no queue: {e}")

    def work():
        try:
            client.working(job)
            time.sleep(ms / 1000)  # not call.sleep: the caller has its answer and may be gone
            client.finish(job, data=f"hello later, {name}")
        except Exception as e:  # nobody to answer: say it in the log
            log(f"later {job}: {e}")

    call.background(work)  # the worker finishes it before it exits
    return Pending(job)


def info(data, call):
    return {"pid": os.getpid(), "worker": os.environ.get("NSFD_WORKER", ""),
            "node": os.environ.get("NSFD_NODE", "")}


if __name__ == "__main__":
    Server({"hello": hello, "slow": slow, "later": later, "info": info}).serve()
