"""nsfd's preload fork-server in Python, standard library only.

With `preload = true` nsfd starts the daemon's program once, with
NSFD_PRELOAD_FD naming a control socket: the program loads its application,
then calls preload(serve), which forks a worker each time nsfd asks
(docs/protocol.md, "Preload fork-server"). Without NSFD_PRELOAD_FD,
preload(serve) just calls serve(): the same program runs as a plain worker.

    import nsfd_preload
    import myapp                # loaded once, shared copy-on-write
    nsfd_preload.preload(myapp.serve)
"""
import ctypes
import os
import signal
import sys
import time

PR_SET_PDEATHSIG = 1


def preload(serve):
    """Run the fork-server loop if nsfd asked for one, else serve()."""
    fd = os.environ.pop("NSFD_PRELOAD_FD", None)
    if fd is None:
        serve()
        return
    ctl = int(fd)
    master = os.getppid()
    os.write(ctl, b"ready\n")
    buf = b""
    while True:
        data = os.read(ctl, 4096)
        if not data:
            os._exit(0)  # the master closed the socket: leave
        buf += data
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            fields = line.decode().split("\t")
            if len(fields) < 3 or fields[0] != "fork":
                reply = "err unknown request"
            else:
                reply = _fork(ctl, master, fields[1], fields[2], fields[3:], serve)
            os.write(ctl, reply.encode() + b"\n")


def _fork(ctl, master, out, err, env, serve):
    """Double-fork a worker; return the reply line."""
    sys.stdout.flush()
    sys.stderr.flush()
    r, w = os.pipe()
    mid = os.fork()
    if mid == 0:  # the intermediate: fork the worker and leave at once
        try:
            os.close(r)
            me = os.getpid()
            if os.fork() == 0:
                _child(ctl, w, me, master, out, err, env, serve)
        finally:
            os._exit(0)
    os.close(w)
    said = b""
    while True:
        chunk = os.read(r, 512)
        if not chunk:
            break
        said += chunk
    os.close(r)
    os.waitpid(mid, 0)  # now the worker is the master's child
    said = said.decode(errors="replace").strip()
    if said.startswith("ok ") or said.startswith("err "):
        return said
    return "err the worker exited while it started"


def _child(ctl, w, mid, master, out, err, env, serve):
    try:
        os.setpgid(0, 0)
        for target, path in ((1, out), (2, err)):
            n = os.open(path, os.O_WRONLY)
            os.dup2(n, target)
            os.close(n)
        for kv in env:
            k, _, v = kv.partition("=")
            os.environ[k] = v
        os.environ["LISTEN_PID"] = str(os.getpid())
        if "WATCHDOG_USEC" in os.environ:
            os.environ["WATCHDOG_PID"] = str(os.getpid())
        os.close(ctl)
        os.write(w, b"ok %d\n" % os.getpid())
        os.close(w)
    except OSError as e:
        os.write(w, ("err %s\n" % e).encode())
        os._exit(127)
    # The intermediate exits at once; then the master is our parent, and we
    # die with it, as an exec'd worker does.
    deadline = time.monotonic() + 5
    while os.getppid() == mid and time.monotonic() < deadline:
        time.sleep(0.0002)
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != master:
        os._exit(1)
    sys.stdout.reconfigure(line_buffering=True)
    sys.stderr.reconfigure(line_buffering=True)
    code = 0
    try:
        serve()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if not isinstance(e.code, int) and e.code is not None:
            print(e.code, file=sys.stderr)
    except BaseException:
        import traceback
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
