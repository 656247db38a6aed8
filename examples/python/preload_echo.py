#!/usr/bin/env python3
"""echo.py forked from a preloaded fork-server (preload = true).

The fork-server imports echo (and whatever else the application needs)
once; each worker nsfd asks for is forked from it (nsfd_preload). Without
preload it runs as echo.py does.

    command = python3 ../examples/python/preload_echo.py
    port    = 127.0.0.1:7002
    type    = notify
    preload = true
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import echo  # noqa: E402  (the application, loaded once)
import nsfd_preload  # noqa: E402


def serve_connection(conn, wake_r, stopping):
    """Echo lines until the client leaves, even after SIGTERM: a rolling
    restart then fails no request (echo.serve cuts the connection)."""
    conn.setblocking(True)
    with conn.makefile("rb") as r:
        for line in r:
            conn.sendall(line)


def serve():
    addr = os.environ.get("NOTIFY_SOCKET", "")  # the worker's, set at fork
    echo.NOTIFY_ADDR = "\0" + addr[1:] if addr.startswith("@") else addr
    print(f"worker {os.getpid()}: LISTEN_PID={os.environ.get('LISTEN_PID')} slot={os.environ.get('NSFD_WORKER')}", flush=True)
    echo.serve = serve_connection
    echo.main()


if __name__ == "__main__":
    print(f"preload_echo.py {os.getpid()}: application loaded", flush=True)
    nsfd_preload.preload(serve)
