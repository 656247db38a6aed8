"""nsfd's framework protocol in Python, standard library only.

Written from docs/wire.md (frames, messages, result codes, asynchronous
calls) and docs/protocol.md (LISTEN_FDS, NOTIFY_SOCKET, SIGTERM), as a
check that those pages are enough to speak the protocol without reading Go.

The daemon side, Server, serves the listeners nsfd hands a worker; a handler
takes (data, call) and returns the result's data, or raises Error for an
error code. The client side, Client, finds a daemon by name and calls it,
waiting through the built-in queue when the daemon answers 1001; a daemon
uses the same Client to put its own asynchronous jobs into the queue.

Not here: TLS and tokens (docs/wire.md, "Authentication and TLS"). A Server
refuses to start for a daemon that has them, and a Client refuses an endpoint
that wants TLS, rather than speak in clear.
"""
import gzip
import http.client
import json
import os
import random
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import traceback
import urllib.parse

MAX_FRAME = 16 << 20  # the default frame limit, 16 MiB
MAX_WAIT_MS = 30_000  # the longest one `wait` asks the queue to hold

MESSAGES = {
    1000: "Command completed successfully",
    1001: "Command completed successfully; action pending",
    1300: "Command completed successfully; no messages",
    1301: "Command completed successfully; ack to dequeue",
    1500: "Command completed successfully; ending session",
    2000: "Unknown command",
    2001: "Command syntax error",
    2002: "Command use error",
    2003: "Required parameter missing",
    2004: "Parameter value range error",
    2005: "Parameter value syntax error",
    2100: "Unimplemented protocol version",
    2101: "Unimplemented command",
    2102: "Unimplemented option",
    2103: "Unimplemented extension",
    2104: "Billing failure",
    2105: "Object is not eligible for renewal",
    2106: "Object is not eligible for transfer",
    2200: "Authentication error",
    2201: "Authorization error",
    2202: "Invalid authorization information",
    2300: "Object pending transfer",
    2301: "Object not pending transfer",
    2302: "Object exists",
    2303: "Object does not exist",
    2304: "Object status prohibits operation",
    2305: "Object association prohibits operation",
    2306: "Parameter value policy error",
    2307: "Unimplemented object service",
    2308: "Data management policy violation",
    2400: "Command failed",
    2500: "Command failed; server closing connection",
    2501: "Authentication error; server closing connection",
    2502: "Session limit exceeded; server closing connection",
}

OK, PENDING = 1000, 1001


def message(code):
    """The text of a result code."""
    return MESSAGES.get(code, "Undefined Error")


def is_success(code):
    return 1000 <= code < 2000


class Error(Exception):
    """An error result code: what a handler raises to answer one, and what a
    Client raises when a call is answered with one (response holds it)."""

    def __init__(self, code, detail="", response=None):
        self.code = code
        self.message = message(code) + (": " + detail if detail else "")
        self.response = response
        super().__init__(f"{code} {self.message}")

    @classmethod
    def of(cls, response):
        e = cls(response.get("code", 2400), response=response)
        e.message = response.get("message") or e.message
        e.args = (f"{e.code} {e.message}",)
        return e


class Pending:
    """What a handler returns for an asynchronous call: 1001 with the job id."""

    def __init__(self, job_id):
        self.job_id = job_id


# Codecs and frames.

def encode(msg, codec="json"):
    payload = json.dumps(msg, separators=(",", ":")).encode()
    if codec == "json+gzip":
        return gzip.compress(payload, compresslevel=1)
    if codec != "json":
        raise ValueError(f"unknown codec {codec!r}")
    return payload


def decode(payload, codec="json"):
    if codec == "json+gzip":
        with gzip.GzipFile(fileobj=_Bytes(payload)) as f:
            payload = f.read(MAX_FRAME + 1)  # bounded: a small frame may not inflate without end
        if len(payload) > MAX_FRAME:
            raise ValueError("decoded message over the frame limit")
    msg = json.loads(payload)
    if not isinstance(msg, dict):
        raise ValueError("the message is not a JSON object")
    return msg


class _Bytes:
    def __init__(self, b):
        self.b, self.i = b, 0

    def read(self, n=-1):
        end = len(self.b) if n < 0 else self.i + n
        out, self.i = self.b[self.i:end], min(end, len(self.b))
        return out


class FrameTooLarge(Exception):
    pass


def _recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return bytes(buf)
        buf += chunk
    return bytes(buf)


def read_frame(sock, limit=MAX_FRAME):
    """The next frame's payload; None at a clean end between frames."""
    head = _recv_exact(sock, 4)
    if not head:
        return None
    if len(head) < 4:
        raise EOFError("connection closed inside a frame header")
    (n,) = struct.unpack(">I", head)
    if n > limit:
        raise FrameTooLarge(f"frame of {n} bytes over the limit of {limit}")
    payload = _recv_exact(sock, n)
    if len(payload) < n:
        raise EOFError("connection closed inside a frame")
    return payload


def write_frame(sock, payload):
    sock.sendall(struct.pack(">I", len(payload)) + payload)


# The daemon side.

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
            sys.exit("this daemon has tls_cert or tokens, which nsfd_framework.py does not implement")
        encode({}, self.codec)  # an unknown codec fails now
        listeners = inherited_listeners()
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
            readable, _, _ = select.select(listeners + [self.stop_r], [], [])
            for lsock in readable:
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
        for t in list(self.threads):
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
                    self.threads.discard(threading.current_thread())
                    room.notify()

        self.background(run)

    def background(self, fn):
        t = threading.Thread(target=fn)
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
            except ValueError as e:  # json.JSONDecodeError, gzip.BadGzipFile included
                resp = _error_response(Error(2001, str(e)))
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
        write_frame(conn, encode(resp, self.codec))


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


# The client side.

class Client:
    """Finds daemons by name and calls them.

    resolver: the master's resolver socket (default $NSFD_RESOLVER, which a
    worker started by nsfd has); without one, `nsfd resolve NAME --json` is
    run (nsfd: the command, default $NSFD or `nsfd`; etc: its --etc). Each
    call opens a connection and closes it after the answer."""

    def __init__(self, resolver=None, nsfd=None, etc=None, user="", queue="queue"):
        self.resolver = resolver if resolver is not None else os.environ.get("NSFD_RESOLVER", "")
        self.nsfd = nsfd or os.environ.get("NSFD", "nsfd")
        self.etc = etc
        self.user = user
        self.queue = queue

    def resolve(self, name):
        """The daemon's endpoints, this node's first: dicts with proto,
        address, encoding (and tls, server_name when it wants TLS)."""
        if self.resolver:
            return self._resolve_socket(name)
        cmd = [self.nsfd] + (["--etc", self.etc] if self.etc else []) + ["resolve", name, "--json"]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        if p.returncode != 0:
            raise LookupError(f"resolve {name}: {p.stderr.strip() or p.returncode}")
        return json.loads(p.stdout)["endpoints"]

    def _resolve_socket(self, name):
        conn = _UnixHTTPConnection(self.resolver)
        try:
            q = {"local": os.environ["NSFD_NODE"]} if os.environ.get("NSFD_NODE") else {}
            path = "/v1/resolve/" + urllib.parse.quote(name, safe="")
            conn.request("GET", path + ("?" + urllib.parse.urlencode(q) if q else ""))
            r = conn.getresponse()
            body = json.loads(r.read() or b"{}")
        finally:
            conn.close()
        if r.status != 200:
            raise LookupError(f"resolve {name}: {body.get('error') or r.status} ({body.get('reason', '')})")
        return body.get("endpoints", [])

    def request(self, name, req, timeout=10.0):
        """Sends one request to the daemon called name and returns its
        response, whatever its code; the next endpoint when one cannot be
        reached."""
        deadline = time.monotonic() + timeout
        last = None
        endpoints = [e for e in self.resolve(name) if e.get("proto") in ("tcp", "unix")]
        if not endpoints:
            raise LookupError(f"{name}: no stream endpoint")
        for ep in endpoints:
            if ep.get("tls"):
                last = ConnectionError(f"{name} at {ep['address']} wants TLS, which this client does not speak")
                continue
            try:
                sock = _dial(ep, max(deadline - time.monotonic(), 0.001))
            except OSError as e:
                last = e
                continue
            codec = ep.get("encoding") or "json"
            with sock:
                sock.settimeout(max(deadline - time.monotonic(), 0.001))
                try:
                    write_frame(sock, encode(req, codec))
                    frame = read_frame(sock)
                except TimeoutError:
                    raise TimeoutError(f"{name}: no answer within {timeout:g}s") from None
                if frame is None:
                    raise EOFError(f"{name} closed the connection without an answer")
                return decode(frame, codec)
        raise ConnectionError(f"{name}: no endpoint answered: {last}")

    def call(self, name, command, data=None, wait=True, timeout=10.0):
        """Calls the daemon and returns its response, a dict with code,
        message, data and meta; waits for the result of an asynchronous
        call (1001) unless wait is false. Raises Error for an error code."""
        deadline = time.monotonic() + timeout
        req = {"command": command}
        if self.user:
            req["user"] = self.user
        if data is not None:
            req["data"] = data
        resp = self.request(name, req, timeout)
        job = pending_id(resp)
        if job and wait:
            resp = self.wait(job, deadline - time.monotonic())
        if not is_success(resp.get("code", 0)):
            raise Error.of(resp)
        return resp

    def wait(self, job_id, timeout=10.0):
        """The final response of the job job_id, through the queue daemon."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"job {job_id} still pending after {timeout:.1f}s")
            ms = max(1, min(MAX_WAIT_MS, int(left * 900)))  # answered a little before our deadline
            resp = self.request(self.queue, {"command": "wait", "data": {"id": job_id, "timeout_ms": ms}},
                                timeout=left + 1)
            if resp.get("code") == PENDING:
                continue
            if resp.get("code") != OK:
                raise Error.of(resp)
            return job_result(resp["data"])

    # What a daemon does for an asynchronous call: enqueue, answer Pending,
    # then finish in the background.

    def enqueue(self, daemon, request):
        """Puts a job for daemon into the spool; returns its id."""
        req = {k: v for k, v in request.items() if k != "pass"}
        return self._spool("put", {"daemon": daemon, "request": req})["id"]

    def working(self, job_id):
        self._spool("mod", {"id": job_id, "status": "working"})

    def finish(self, job_id, code=OK, data=None, detail=""):
        """Stores the job's result, waking whoever waits for it."""
        resp = {"code": code, "message": message(code) + (": " + detail if detail else ""),
                "meta": {"transaction": job_id}}
        if data is not None:
            resp["data"] = data
        self._spool("mod", {"id": job_id, "response": resp})

    def _spool(self, command, data):
        resp = self.request(self.queue, {"command": command, "data": data})
        if not is_success(resp.get("code", 0)):
            raise Error.of(resp)
        return resp.get("data") or {}


def pending_id(resp):
    """The job id of a 1001 answer ({"id": JOB} or "JOB"), else None."""
    if resp.get("code") != PENDING:
        return None
    d = resp.get("data")
    if isinstance(d, dict):
        return d.get("id") or None
    return d if isinstance(d, str) and d else None


def job_result(job):
    """The final response a finished job holds."""
    resp = dict(job.get("response") or {})
    if not resp:
        resp["code"] = OK if job.get("status") == "done" else 2400
    resp.setdefault("code", OK)
    resp["message"] = resp.get("message") or message(resp["code"])
    meta = resp.setdefault("meta", {})
    if not meta.get("transaction"):
        meta["transaction"] = job.get("id", "")
    return resp


def _dial(ep, timeout):
    if ep["proto"] == "unix":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect(ep["address"])
        except OSError:
            s.close()
            raise
        return s
    host, _, port = ep["address"].rpartition(":")
    return socket.create_connection((host.strip("[]"), int(port)), timeout=timeout)


class _UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over a UNIX socket: the resolver socket."""

    def __init__(self, path):
        super().__init__("nsfd", timeout=10)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)
