#!/usr/bin/env python3
"""A minimal nsfd worker in Python, standard library only: echoes lines.

nsfd hands the worker its listening socket as fd 3 (LISTEN_FDS, LISTEN_PID)
and a datagram socket for status words (NOTIFY_SOCKET); docs/protocol.md has
the whole contract. This worker serves one connection at a time, the
Net::Server::PreFork way: while it is busy it does not accept, so the kernel
hands new connections to an idle worker, and the master starts spares.

On SIGTERM it stops accepting, answers the lines it has already read on the
current connection, closes it and exits 0.

    command = python3 ../examples/python/echo.py
    port    = 127.0.0.1:7002
    type    = notify
"""
import os
import select
import signal
import socket
import sys

# sd_notify in five lines: one datagram per message; "@name" is an abstract socket.
NOTIFY_ADDR = os.environ.get("NOTIFY_SOCKET", "")
if NOTIFY_ADDR.startswith("@"):
    NOTIFY_ADDR = "\0" + NOTIFY_ADDR[1:]
notify_sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
notify_sock.settimeout(1)  # never hang on a master that does not read


def notify(state):
    if NOTIFY_ADDR:
        try:
            notify_sock.sendto(state.encode(), NOTIFY_ADDR)
        except OSError as e:
            print(f"echo.py: notify {state}: {e}", file=sys.stderr, flush=True)


def inherited_listener():
    """The first listener nsfd passed us (sd_listen_fds), or exit."""
    pid_ok = os.environ.get("LISTEN_PID", str(os.getpid())) == str(os.getpid())
    nfds = int(os.environ.get("LISTEN_FDS", "0")) if pid_ok else 0
    for key in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"):
        os.environ.pop(key, None)  # not for our children
    if nfds < 1:
        sys.exit("echo.py: no listener: run me under nsfd (LISTEN_FDS)")
    for fd in range(3, 3 + nfds):
        os.set_inheritable(fd, False)
    sock = socket.socket(fileno=3)
    # Every worker shares this socket: wait with select, and expect accept
    # to find nothing when another worker was quicker.
    sock.setblocking(False)
    return sock


def main():
    listener = inherited_listener()
    stopping = False

    def on_term(signum, frame):
        nonlocal stopping
        if not stopping:
            stopping = True
            notify("STOPPING=1")

    # A signal also writes a byte to wake_w, which wakes any select below.
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_term)

    notify("READY=1")
    print(f"python echo worker {os.getpid()} ready", flush=True)
    while not stopping:
        readable, _, _ = select.select([listener, wake_r], [], [])
        if listener not in readable:
            continue
        try:
            conn, _ = listener.accept()
        except BlockingIOError:
            continue  # another worker took it
        notify("BUSY=1")
        try:
            serve(conn, wake_r, lambda: stopping)
        finally:
            conn.close()
            notify("BUSY=0")


def serve(conn, wake_r, stopping):
    """Echo each line unchanged until the client leaves or we are told to stop."""
    conn.setblocking(True)
    buf = b""
    while not stopping():
        readable, _, _ = select.select([conn, wake_r], [], [])
        if conn not in readable:
            continue
        try:
            data = conn.recv(65536)
        except ConnectionError:
            return
        if not data:
            if buf:
                conn.sendall(buf)  # a last line without newline
            return
        buf += data
        *lines, buf = buf.split(b"\n")
        for line in lines:
            conn.sendall(line + b"\n")


if __name__ == "__main__":
    main()
