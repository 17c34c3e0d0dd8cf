"""What the interop scripts share: the broker URL, running the warren command,
unique names, a field-table decoder of their own (RabbitMQ's type letters)
and a hook that keeps the raw content-header bytes pika receives.

Run the scripts with /usr/bin/python3 (Debian's python3-pika); each takes
the path of the built warren command as its only argument.
"""

import datetime
import json
import os
import struct
import subprocess
import sys

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/"


def broker_url():
    return os.environ.get("AMQP_URL") or DEFAULT_URL


def require_pika():
    """Exits with meson's "skipped" status when pika cannot be imported."""
    try:
        import pika  # noqa: F401
    except ImportError:
        print("pika is not importable (run with /usr/bin/python3, Debian's python3-pika): skipped")
        sys.exit(77)


def username():
    """The user name in the broker URL (RabbitMQ checks user_id against it)."""
    from urllib.parse import unquote, urlparse
    return unquote(urlparse(broker_url()).username or "guest")


def base64(data):
    import base64 as b64
    return b64.b64encode(data).decode()


def warren_path():
    if len(sys.argv) != 2:
        sys.exit("usage: %s PATH-OF-WARREN" % sys.argv[0])
    return os.path.abspath(sys.argv[1])


def unique(stem):
    return "warren-interop.%s.%d" % (stem, os.getpid())


class Failures:
    """Collects failed checks so one run reports all of them."""

    def __init__(self):
        self.count = 0
        self.checks = 0

    def check(self, ok, what, got=None, want=None):
        self.checks += 1
        if ok:
            return True
        self.count += 1
        print("FAIL: %s" % what)
        if got is not None or want is not None:
            print("   got:  %r" % (got,))
            print("   want: %r" % (want,))
        return False

    def equal(self, got, want, what):
        return self.check(got == want, what, got, want)

    def finish(self, name):
        print("%s: %d checks, %d failed" % (name, self.checks, self.count))
        sys.exit(1 if self.count else 0)


def run_warren(args, stdin=b"", expect=0):
    """Runs warren with `args`; returns (stdout bytes, stderr text)."""
    env = dict(os.environ, AMQP_URL=broker_url())
    p = subprocess.run([warren_path()] + args, input=stdin, capture_output=True, env=env,
                       timeout=60)
    if p.returncode != expect:
        raise SystemExit("warren %s exited %d (expected %d)\nstdout: %r\nstderr: %s" % (
            " ".join(args), p.returncode, expect, p.stdout, p.stderr.decode(errors="replace")))
    return p.stdout, p.stderr.decode(errors="replace")


def warren_get_json(queue, count=1):
    """`warren get --json --ack`: the JSON objects it printed, one per message."""
    out, _ = run_warren(["get", "--queue", queue, "--json", "--ack", "--count", str(count)])
    return [json.loads(line) for line in out.decode("utf-8").splitlines()]


# A decoder of field tables written from RabbitMQ's letters (rabbit_binary_parser),
# independent of pika's and of warren's. Values come back as (letter, value):
# integers as ints, f/d as floats, D as (scale, unsigned value), S/x as bytes,
# T as int seconds, F as a list of (name, (letter, value)), A as a list.

_FIXED = {
    b"t": ">B", b"b": ">b", b"B": ">B", b"s": ">h", b"u": ">H", b"I": ">i", b"i": ">I",
    b"l": ">q", b"f": ">f", b"d": ">d", b"T": ">Q",
}


def decode_value(data, offset):
    letter = data[offset:offset + 1]
    offset += 1
    if letter in _FIXED:
        fmt = _FIXED[letter]
        (v,) = struct.unpack_from(fmt, data, offset)
        offset += struct.calcsize(fmt)
        if letter == b"t":
            v = bool(v)
        return (letter.decode(), v), offset
    if letter == b"D":
        scale, value = struct.unpack_from(">BI", data, offset)
        return ("D", (scale, value)), offset + 5
    if letter in (b"S", b"x"):
        (n,) = struct.unpack_from(">I", data, offset)
        offset += 4
        return (letter.decode(), bytes(data[offset:offset + n])), offset + n
    if letter == b"A":
        (n,) = struct.unpack_from(">I", data, offset)
        offset += 4
        end = offset + n
        items = []
        while offset < end:
            v, offset = decode_value(data, offset)
            items.append(v)
        if offset != end:
            raise ValueError("array overruns its length")
        return ("A", items), offset
    if letter == b"F":
        table, offset = decode_table(data, offset)
        return ("F", table), offset
    if letter == b"V":
        return ("V", None), offset
    raise ValueError("unknown field type %r at offset %d" % (letter, offset - 1))


def decode_table(data, offset=0):
    (n,) = struct.unpack_from(">I", data, offset)
    offset += 4
    end = offset + n
    entries = []
    while offset < end:
        (k,) = struct.unpack_from(">B", data, offset)
        offset += 1
        name = bytes(data[offset:offset + k]).decode("utf-8", "surrogateescape")
        offset += k
        v, offset = decode_value(data, offset)
        entries.append((name, v))
    if offset != end:
        raise ValueError("table overruns its length")
    return entries, offset


def headers_of_raw_properties(raw):
    """The raw bytes of the headers table in a basic content header's property
    list (flag word first), decoded; None when the headers flag is clear."""
    (flags,) = struct.unpack_from(">H", raw, 0)
    offset = 2
    if flags & 0x8000:  # content_type
        offset += 1 + raw[offset]
    if flags & 0x4000:  # content_encoding
        offset += 1 + raw[offset]
    if not flags & 0x2000:
        return None, b""
    table, end = decode_table(raw, offset)
    return table, bytes(raw[offset:end])


class PikaRawCapture:
    """Keeps the raw property bytes of every content header pika decodes."""

    def __init__(self):
        import pika.spec
        self.raw = []
        original = pika.spec.BasicProperties.decode
        capture = self

        def decode(self, encoded, offset=0):
            capture.raw.append(bytes(encoded[offset:]))
            return original(self, encoded, offset)

        pika.spec.BasicProperties.decode = decode


def pika_connection():
    import pika
    return pika.BlockingConnection(pika.URLParameters(broker_url()))


def epoch_seconds(dt):
    """pika decodes 'T' into a naive UTC datetime."""
    return int((dt - datetime.datetime(1970, 1, 1)).total_seconds())


def rabbit_parse_table(table_bytes):
    """The broker's own reading of a field table (rabbit_binary_parser, via
    `rabbitmqctl eval`) as Erlang terms printed on one line, or None when
    rabbitmqctl cannot be run here."""
    body = bytes(table_bytes[4:])  # parse_table takes the entries, not the length
    expr = "io:format(\"~w~n\", [rabbit_binary_parser:parse_table(<<%s>>)])." % ",".join(
        str(b) for b in body)
    cmd = ["rabbitmqctl", "eval", expr]
    if os.geteuid() != 0:
        cmd = ["sudo", "-n"] + cmd
    env = dict(os.environ, PATH=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
    try:
        p = subprocess.run(cmd, capture_output=True, env=env, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if p.returncode != 0:
        return None
    return p.stdout.decode(errors="replace").replace(" ", "")


def rabbitmqctl_json(args):
    """`rabbitmqctl -q ARGS --formatter json`, parsed; None when rabbitmqctl
    cannot be run here."""
    cmd = ["rabbitmqctl", "-q"] + args + ["--formatter", "json"]
    if os.geteuid() != 0:
        cmd = ["sudo", "-n"] + cmd
    env = dict(os.environ, PATH=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
    try:
        p = subprocess.run(cmd, capture_output=True, env=env, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if p.returncode != 0:
        return None
    return json.loads(p.stdout.decode() or "[]")
