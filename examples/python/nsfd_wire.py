"""nsfd's framework protocol in Python, standard library only: result codes,
codecs and frames (docs/wire.md). nsfd_worker.py serves it, nsfd_client.py
calls it; examples/python/greet.py and call.py use them.

Written from docs/wire.md and docs/protocol.md alone, as a check that those
pages are enough to speak the protocol without reading Go.
"""
import gzip
import json
import struct
import zlib

MAX_FRAME = 16 << 20  # the default frame limit, 16 MiB

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


def encode(msg, codec="json"):
    payload = json.dumps(msg, separators=(",", ":")).encode()
    if codec == "json+gzip":
        return gzip.compress(payload, compresslevel=1)
    if codec != "json":
        raise ValueError(f"unknown codec {codec!r}")
    return payload


def decode(payload, codec="json"):
    if codec == "json+gzip":
        try:
            with gzip.GzipFile(fileobj=_Bytes(payload)) as f:
                payload = f.read(MAX_FRAME + 1)  # bounded: a small frame may not inflate without end
        except (OSError, EOFError, zlib.error) as e:
            raise ValueError(f"gzip: {e}") from None
        if len(payload) > MAX_FRAME:
            raise DecodedTooLarge("decoded message over the frame limit")
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


class DecodedTooLarge(ValueError):
    """A json+gzip payload that inflates beyond the frame limit: 2004."""


class FrameTooLarge(Exception):
    """A frame length over the limit: the server answers 2500 and closes."""


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
