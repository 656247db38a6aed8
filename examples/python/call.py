#!/usr/bin/env python3
"""Calls a framework daemon by name, as `nsfd call` does, in Python.

    call.py [options] NAME COMMAND [DATA-JSON]   call; wait for an asynchronous result
    call.py [options] --no-wait NAME COMMAND ... print the job id of an asynchronous call
    call.py [options] --job JOB                  wait for the result of job JOB

It prints the response's data (a JSON string as plain text), or with --json
the whole response; an error code prints "CODE MESSAGE" on stderr and exits 1.

Options:
    --resolver PATH  the master's resolver socket (default $NSFD_RESOLVER, which
                     a worker started by nsfd has; by hand: RUN_DIR/resolve.sock)
    --etc DIR        without a resolver socket, names are resolved by running
                     `nsfd --etc DIR resolve NAME --json` ($NSFD: the nsfd command)
    --timeout S      give up after S seconds, waiting included (default 10)
    --user USER      the request's user
    --json           print the whole response
"""
import argparse
import json
import sys

from nsfd_client import Client, pending_id
from nsfd_wire import Error


def main(argv):
    p = argparse.ArgumentParser(prog="call.py", description="call a framework daemon by name")
    p.add_argument("--resolver")
    p.add_argument("--etc")
    p.add_argument("--timeout", type=float, default=10.0)
    p.add_argument("--user", default="")
    p.add_argument("--json", action="store_true")
    p.add_argument("--no-wait", action="store_true")
    p.add_argument("--job")
    p.add_argument("args", nargs="*", metavar="NAME COMMAND [DATA-JSON]")
    a = p.parse_args(argv)
    if a.job and a.args or not a.job and not 2 <= len(a.args) <= 3:
        p.error("want NAME COMMAND [DATA-JSON], or --job JOB")
    data = None
    if len(a.args) == 3:
        try:
            data = json.loads(a.args[2])
        except ValueError as e:
            p.error(f"DATA-JSON is not valid JSON: {e}")

    c = Client(resolver=a.resolver, etc=a.etc, user=a.user)
    try:
        if a.job:
            resp = c.wait(a.job, a.timeout)
            if resp["code"] >= 2000:
                raise Error.of(resp)
        else:
            resp = c.call(a.args[0], a.args[1], data, wait=not a.no_wait, timeout=a.timeout)
            if a.no_wait and (job := pending_id(resp)):
                print(job)
                return 0
    except Error as e:
        if a.json and e.response:
            print(json.dumps(e.response, indent=2))
        print(f"call.py: {e}", file=sys.stderr)
        return 1
    except (OSError, LookupError, ValueError, TimeoutError) as e:
        print(f"call.py: {e}", file=sys.stderr)
        return 1
    if a.json:
        print(json.dumps(resp, indent=2))
    elif isinstance(resp.get("data"), str):
        print(resp["data"])
    elif "data" in resp:
        print(json.dumps(resp["data"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
