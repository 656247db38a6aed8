"""The daemon side of nsfd's framework protocol, standard library only.

Server serves the listeners nsfd hands a worker (LISTEN_FDS), says READY=1,
BUSY, REQUESTS and STOPPING on NOTIFY_SOCKET (docs/protocol.md), and answers
framework requests (docs/wire.md): a handler takes (data, call) and returns
the result's data, a Pending for an asynchronous call (1001), or raises
Error for an error code. On SIGTERM it stops accepting, closes idle
connections, finishes the requests in progress and the background jobs, and
returns.

Not here: TLS and tokens (docs/wire.md, "Authentication and TLS"): a Server
refuses to start for a daemon that has tls_cert or tokens rather than serve
it in clear or unchecked.
"""
import json
import os
import random
import select
import signal
import socket
import sys
import threading
import time
import traceback

from nsfd_wire import OK, PENDING, DecodedTooLarge, Error, FrameTooLarge, decode, encode, message, read_frame, write_frame


class Pending:
    """What a handler returns for an asynchronous call: 1001 with the job id."""

    def __init__(self, job_id):
        self.job_id = job_id


def notify(*words):
    """Sends status words to NOTIFY_SOCKET (docs/protocol.md), if there is one."""
    addr = os.environ.get("NOTIFY_SOCKET", "")
    if not addr:
        return
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.settimeout(1)  # never hang on a master that does not read
            s.sendto("\n".join(words).encode(), addr)
    except OSError as e:
        log(f"notify {words}: {e}")


def log(text):
    """A line into nsfd's central log (stderr is a pipe: flush each line)."""
    print(f"{os.path.basename(sys.argv[0])}[{os.getpid()}]: {text}", file=sys.stderr, flush=True)


def inherited_listeners():
    """The listening sockets nsfd passed (LISTEN_FDS), or exit."""
    pid_ok = os.environ.get("LISTEN_PID", str(os.getpid())) == str(os.getpid())
    nfds = int(os.environ.get("LISTEN_FDS", "0")) if pid_ok else 0
    for key in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"):
        os.environ.pop(key, None)  # not for our children
    if nfds < 1:
        sys.exit("no listener: run me under nsfd (LISTEN_FDS)")
    socks = []
    for fd in range(3, 3 + nfds):
        os.set_inheritable(fd, False)
        s = socket.socket(fileno=fd)
        s.setblocking(False)  # shared: another worker may win the accept
        socks.append(s)
    return socks


class Call:
    """What a handler gets beside the request's data."""

    def __init__(self, server, conn, request):
        self.server, self.conn, self.request = server, conn, request
        self.user = request.get("user", "")

    def sleep(self, seconds):
        """Waits for seconds; False at once if the client hung up meanwhile.
        The protocol carries no timeout: a client that gives up closes the
        connection, and this is how a handler notices."""
        deadline = time.monotonic() + seconds
        watch = [self.conn]
        while (left := deadline - time.monotonic()) > 0:
            if not watch:
                time.sleep(left)
                break
            readable, _, _ = select.select(watch, [], [], left)
            if readable:
                try:
                    if not self.conn.recv(1, socket.MSG_PEEK):
                        return False  # EOF: the client left
                except OSError:
                    return False
                watch = []  # the client sent more: it is still there
        return True

    def background(self, fn):
        """Runs fn in a thread that the worker waits for before it exits."""
        self.server.background(fn)


class Server:
    """Serves a framework daemon on the listeners nsfd passed.

    handlers maps a command to fn(data, call) → the result's data (a
    Pending for 1001), raising Error for an error code. Each connection
    gets a thread, at most `concurrency` at once: the worker reports BUSY=1
    when full and does not accept until one ends (docs/protocol.md)."""

    def __init__(self, handlers, concurrency=16, idle_timeout=300.0, codec=None):
        self.handlers = handlers
        self.concurrency = concurrency
        self.idle_timeout = idle_timeout
        self.codec = codec or os.environ.get("NSFD_ENCODING") or "json"
        self.lock = threading.Lock()
        self.active = 0
        self.requests = 0
        self.threads = set()
        self.stop_r, self.stop_w = os.pipe()  # readable for everyone once stopping
        self.stopping = False
        self.tx_prefix = f"{random.getrandbits(48):x}-"
        self.tx_seq = 0

    def serve(self):
        if os.environ.get("NSFD_TLS_CERT") or os.environ.get("NSFD_TOKENS"):
            sys.exit("this daemon has tls_cert or tokens, which nsfd_worker.py does not implement")
        encode({}, self.codec)  # an unknown codec fails now
        listeners = inherited_listeners()
        # Python runs a handler between two bytecodes, so a signal that comes
        # just before select's system call would wait for the next
        # connection: the wakeup fd makes any signal wake select itself.
        wake_r, wake_w = os.pipe()
        for fd in (wake_r, wake_w):
            os.set_blocking(fd, False)
        signal.set_wakeup_fd(wake_w)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._on_term)
        notify("READY=1")
        log(f"ready, {self.codec}, {self.concurrency} connections at a time")
        room = threading.Condition(self.lock)
        while not self.stopping:
            with room:
                while self.active >= self.concurrency and not self.stopping:
                    room.wait(0.5)
            if self.stopping:
                break
            readable, _, _ = select.select(listeners + [self.stop_r, wake_r], [], [])
            for lsock in readable:
                if lsock is wake_r:
                    os.read(wake_r, 512)  # its handler runs at the loop's next turn
                    continue
                if lsock is self.stop_r or self.stopping:
                    continue
                try:
                    conn, _ = lsock.accept()
                except (BlockingIOError, InterruptedError):
                    continue  # another worker was quicker
                self._start(conn, room)
        # Stopping: no more accepts; idle connections close at once, the
        # requests in progress and the background jobs finish first.
        for lsock in listeners:
            lsock.close()
        while True:  # a request finishing may start a background job
            with self.lock:
                threads = list(self.threads)
            if not threads:
                break
            for t in threads:
                t.join()
        log("stopped")

    def _on_term(self, signum, frame):
        if not self.stopping:
            self.stopping = True
            os.write(self.stop_w, b"x")  # wakes every select, and stays readable
            # No lock here: the handler runs in the main thread, which may hold it.
            notify("STOPPING=1", f"REQUESTS={self.requests}")

    def _start(self, conn, room):
        with self.lock:
            self.active += 1
            self.requests += 1
            words = [f"REQUESTS={self.requests}"]
            if self.active == self.concurrency:
                words.insert(0, "BUSY=1")
            notify(*words)

        def run():
            try:
                self._serve_conn(conn)
            except Exception:  # a bug here must not kill the worker
                log("connection: " + traceback.format_exc())
            finally:
                conn.close()
                with room:
                    if self.active == self.concurrency:
                        notify("BUSY=0", f"REQUESTS={self.requests}")
                    self.active -= 1
                    room.notify()

        self.background(run)

    def background(self, fn):
        """Runs fn in a thread that serve waits for before it returns."""
        def run():
            try:
                fn()
            finally:
                with self.lock:
                    self.threads.discard(t)

        t = threading.Thread(target=run)
        with self.lock:
            self.threads.add(t)
        t.start()

    def _serve_conn(self, conn):
        conn.setblocking(True)
        while True:
            readable, _, _ = select.select([conn, self.stop_r], [], [], self.idle_timeout)
            if not readable or conn not in readable:
                return  # idle too long, or stopping while idle
            conn.settimeout(self.idle_timeout)
            try:
                frame = read_frame(conn)
            except FrameTooLarge as e:
                self._respond(conn, None, {"code": 2500, "message": f"{message(2500)}: {e}"}, time.monotonic())
                _linger_close(conn)
                return
            except (EOFError, OSError):
                return
            if frame is None:
                return
            start = time.monotonic()
            req, resp = None, None
            try:
                req = decode(frame, self.codec)
            except ValueError as e:  # not JSON, not gzip, not an object; 2004: inflates too far
                resp = _error_response(Error(2004 if isinstance(e, DecodedTooLarge) else 2001, str(e)))
            if resp is None:
                resp = self._handle(conn, req)
            self._respond(conn, req, resp, start)
            if self.stopping:
                return  # the request in progress is done: close

    def _handle(self, conn, req):
        command = req.get("command")
        if not command:
            return _error_response(Error(2003, "command"))
        fn = self.handlers.get(command)
        if fn is None:
            return _error_response(Error(2000, json.dumps(command)))
        try:
            out = fn(req.get("data"), Call(self, conn, req))
        except Error as e:
            return _error_response(e)
        except Exception as e:
            log(f"command {command!r}: " + traceback.format_exc())
            return _error_response(Error(2400, str(e)))
        if isinstance(out, Pending):
            return {"code": PENDING, "message": message(PENDING), "data": {"id": out.job_id}}
        return {"code": OK, "message": message(OK), "data": out}

    def _respond(self, conn, req, resp, start):
        req = req or {}
        tx = req.get("id")
        if not tx:
            with self.lock:
                self.tx_seq += 1
                tx = f"{self.tx_prefix}{self.tx_seq}"
        resp["meta"] = {"transaction": str(tx), "duration": round(time.monotonic() - start, 6),
                        "user": req.get("user", "")}
        if resp.get("data") is None:
            resp.pop("data", None)
        try:
            payload = encode(resp, self.codec)
        except (TypeError, ValueError) as e:  # data that is not JSON
            log(f"response could not be sent: {e}")
            payload = encode({"code": 2400, "message": f"{message(2400)}: response could not be sent: {e}",
                              "meta": resp["meta"]}, self.codec)
        write_frame(conn, payload)


def _linger_close(conn):
    """Half-closes conn and discards what the client still sends, a little
    while, so that closing does not reset the connection before the client
    has read the last answer."""
    try:
        conn.shutdown(socket.SHUT_WR)
        conn.settimeout(0.25)
        left = 1 << 20
        while left > 0 and (chunk := conn.recv(min(left, 65536))):
            left -= len(chunk)
    except OSError:
        pass


def _error_response(e):
    return {"code": e.code, "message": e.message}
