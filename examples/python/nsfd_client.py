"""The client side of nsfd's framework protocol, standard library only.

Client finds a daemon by name (the master's resolver socket, or `nsfd
resolve NAME --json`) and calls it, waiting through the built-in queue
daemon when it answers 1001 (docs/wire.md, "Asynchronous calls"); a daemon
uses the same Client to put its own asynchronous jobs into the queue and
store their results.

Not here: TLS (an endpoint that wants it is refused rather than spoken to in
clear) and tokens (only a user is sent).
"""
import http.client
import json
import os
import socket
import subprocess
import time
import urllib.parse

from nsfd_wire import OK, PENDING, Error, decode, encode, is_success, message, read_frame, write_frame

MAX_WAIT_MS = 30_000  # the longest one `wait` asks the queue to hold


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
