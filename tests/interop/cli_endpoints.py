"""The warren command's --uri list and amqps: a dead endpoint before the
broker is passed over, a list of dead ones fails naming each, amqps works
with the CA given (and with a client certificate and EXTERNAL), and fails
with a certificate error without it. No output or error shows a password.

The TLS half uses RabbitMQ's TLS listener on localhost:5671 and the
certificates scripts/tls leaves in $WARREN_TLS_DIR (default /tmp/warren-tls);
it is skipped, with a note, when either is missing.
"""

import os
import socket
import subprocess
from urllib.parse import unquote, urlparse

import interop_common as ic

failures = ic.Failures()
stem = ic.unique("endpoints")
# Only ever in URIs whose connection fails before the login.
secret = "Pw-Never-Shown-5519"
tls_dir = os.environ.get("WARREN_TLS_DIR") or "/tmp/warren-tls"
ca = os.path.join(tls_dir, "ca.pem")


def warren(args):
    """(exit status, stdout + stderr) of warren ARGS, without $AMQP_URL."""
    env = {k: v for k, v in os.environ.items() if k != "AMQP_URL"}
    p = subprocess.run([ic.warren_path()] + args, capture_output=True, env=env, timeout=60)
    return p.returncode, (p.stdout + p.stderr).decode(errors="replace")


def no_password(output, what, passwords):
    for pw in passwords:
        failures.check(":" + pw + "@" not in output and (pw == "guest" or pw not in output),
                       what + ": no password in the output", output)


def tls_listener_up():
    try:
        socket.create_connection(("localhost", 5671), timeout=5).close()
        return True
    except OSError:
        return False


broker = ic.broker_url()
broker_password = unquote(urlparse(broker).password or "guest")
q = stem + ".q"

try:
    # A dead endpoint first: the broker after it answers, and the fallback
    # is noted on stderr with the password hidden.
    rc, out = warren(["--uri", "amqp://guest:guest@127.0.0.1:1/", "--uri", broker,
                      "declare-queue", q, "--json"])
    failures.check(rc == 0 and '"queue":"%s"' % q in out, "a dead URI, then the broker", (rc, out))
    failures.check("127.0.0.1:1" not in out, "the note names the endpoint used, not the dead one",
                   out)
    failures.check("connected to " in out and ":***@" in out and "URI 2 of 2" in out,
                   "the fallback is noted, with the password as ***", out)
    no_password(out, "a dead URI, then the broker", ["guest", broker_password])

    # The same with --uri after the command, and one before it: one list.
    dead = "amqp://guest:%s@127.0.0.1:1/" % secret
    rc, out = warren(["--uri", dead, "publish", "--routing-key", q, "--body", "via fallback",
                      "--confirm", "--uri", broker])
    failures.check(rc == 0, "--uri before and after the command make one list", (rc, out))
    no_password(out, "--uri before and after the command", [secret, broker_password])
    rc, out = warren(["--uri", broker, "get", q, "--ack"])
    failures.equal((rc, out), (0, "via fallback\n"), "the first URI answering: nothing noted")

    # Every endpoint dead: exit status 1, each named with its reason.
    rc, out = warren(["--uri", dead, "--uri", "amqp://u:%s@127.0.0.1:2/" % secret,
                      "declare-queue", q, "--passive"])
    failures.check(rc == 1, "two dead URIs: exit status 1", (rc, out))
    failures.check("all 2 endpoints failed" in out and "[1] 127.0.0.1:1:" in out and
                   "[2] 127.0.0.1:2:" in out and out.count("Connection refused") == 2,
                   "two dead URIs: the error names both endpoints and why", out)
    no_password(out, "two dead URIs", [secret])
    # A malformed one is a usage error naming which.
    rc, out = warren(["--uri", broker, "--uri", "amqp://u:%s@host:99999/" % secret,
                      "declare-queue", q])
    failures.check(rc == 2 and "URI 2:" in out, "a bad second URI: usage error naming it",
                   (rc, out))
    no_password(out, "a bad second URI", [secret])
    # A password echoed back from the command line is hidden too.
    rc, out = warren(["declare-queue", q, "amqp://u:%s@host/" % secret])
    failures.check(rc == 2 and "amqp://u:***@host/" in out, "a stray URI argument", (rc, out))
    no_password(out, "a stray URI argument", [secret])
    rc, out = warren(["declare-queue", "--help"])
    failures.check("(repeatable)" in out.split("--uri URI", 1)[-1].split("--help")[0],
                   "--help: --uri is repeatable", out)

    if not os.path.exists(ca):
        print("TLS checks skipped: no %s (scripts/tls makes it)" % ca)
    elif not tls_listener_up():
        print("TLS checks skipped: nothing listens on localhost:5671 (scripts/rabbitmq)")
    else:
        amqps = "amqps://guest:guest@localhost:5671/"
        tq = stem + ".tls"
        rc, out = warren(["--uri", amqps + "?cacertfile=" + ca, "declare-queue", tq])
        failures.equal((rc, out), (0, tq + "\n"), "amqps with cacertfile: declare-queue")
        rc, out = warren(["--uri", amqps + "?cacertfile=" + ca, "publish", "--routing-key", tq,
                          "--body", "over TLS", "--confirm"])
        failures.equal((rc, out), (0, ""), "amqps with cacertfile: publish --confirm")
        rc, out = warren(["--uri", amqps + "?cacertfile=" + ca, "get", tq, "--ack"])
        failures.equal((rc, out), (0, "over TLS\n"), "amqps with cacertfile: get --ack")
        rc, out = warren(["--uri", amqps + "?cacertfile=" + ca, "delete-queue", tq])
        failures.equal((rc, out), (0, "0\n"), "amqps with cacertfile: delete-queue")

        # The system trust store does not hold the test CA.
        rc, out = warren(["--uri", "amqps://guest:%s@localhost:5671/" % secret,
                          "declare-queue", tq, "--passive"])
        failures.check(rc == 1 and "certificate" in out and "localhost:5671" in out,
                       "amqps without cacertfile: a certificate error", (rc, out))
        no_password(out, "amqps without cacertfile", [secret])
        # The certificate is for localhost, not for the address.
        rc, out = warren(["--uri", "amqps://guest:%s@127.0.0.1:5671/?cacertfile=%s" % (secret, ca),
                          "declare-queue", tq, "--passive"])
        failures.check(rc == 1 and "127.0.0.1" in out and "certificate" in out,
                       "amqps to 127.0.0.1: the host name check fails", (rc, out))
        no_password(out, "amqps to 127.0.0.1", [secret])
        # A failed amqps endpoint, then amqps that works.
        rc, out = warren(["--uri", "amqps://guest:%s@localhost:5671/" % secret,
                          "--uri", amqps + "?cacertfile=" + ca, "declare-queue", tq, "--exclusive"])
        failures.check(rc == 0 and "amqps://guest:***@localhost:5671/" in out,
                       "an amqps endpoint without the CA, then one with it", (rc, out))
        no_password(out, "amqps fallback", [secret, "guest"])

        # EXTERNAL: the client certificate is the login (user warren-tls-client,
        # which may use tls-ext.* resources only).
        cert = os.path.join(tls_dir, "client.pem")
        key = os.path.join(tls_dir, "client.key")
        if os.path.exists(cert) and os.path.exists(key):
            ext = ("amqps://localhost:5671/?cacertfile=%s&certfile=%s&keyfile=%s"
                   "&auth_mechanism=external" % (ca, cert, key))
            eq = "tls-ext." + stem
            rc, out = warren(["--uri", ext, "declare-queue", eq, "--exclusive"])
            failures.equal((rc, out), (0, eq + "\n"), "amqps, EXTERNAL with a client certificate")
finally:
    warren(["--uri", broker, "delete-queue", q])

failures.finish("warren --uri lists and amqps")
