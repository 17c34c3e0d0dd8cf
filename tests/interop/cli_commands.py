"""Every subcommand of the warren command against the broker: what each one
does, as the broker reports it (rabbitmqctl, when it can be run) and as the
messages show; error reports (reply code and text on stderr) and exit
statuses (0 done, 1 broker or connection error, 2 usage, 3 returned/nacked).
"""

import json
import os
import subprocess

import interop_common as ic

failures = ic.Failures()
stem = ic.unique("cli")
ex1, ex2, q1, q2 = stem + ".ex1", stem + ".ex2", stem + ".q1", stem + ".q2"


def warren(args, stdin=b"", env=None):
    """(exit status, stdout text, stderr text) of warren ARGS."""
    e = dict(os.environ, AMQP_URL=ic.broker_url())
    e.update(env or {})
    p = subprocess.run([ic.warren_path()] + args, input=stdin, capture_output=True, env=e,
                       timeout=60)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def expect(args, status=0, stdout=None, stderr=None, stdin=b""):
    rc, out, err = warren(args, stdin)
    what = "warren " + " ".join(args)
    failures.check(rc == status, what + ": exit status", (rc, err), status)
    if stdout is not None:
        failures.equal(out, stdout, what + ": stdout")
    if stderr is not None:
        failures.equal(err, stderr, what + ": stderr")
    return out


def find(rows, name, key="name"):
    for r in rows or []:
        if r.get(key) == name:
            return r
    return None


commands = ["publish", "get", "consume", "declare-exchange", "delete-exchange", "bind-exchange",
            "unbind-exchange", "declare-queue", "delete-queue", "bind-queue", "unbind-queue",
            "purge-queue"]

try:
    # Help and usage errors need no broker.
    top = expect(["--help"])
    for c in commands:
        failures.check("\n  %s " % c in top, "warren --help lists " + c)
        out = expect([c, "--help"])
        failures.check(out.startswith("usage: warren " + c), c + " --help")
        failures.check("--uri URI" in out, c + " --help shows --uri")
    expect([], status=2)
    expect(["frobnicate"], status=2, stderr="warren: unknown command 'frobnicate' (see warren --help)\n")
    expect(["get"], status=2, stderr="warren get: --queue is required (see warren get --help)\n")
    expect(["get", "q", "--ack", "--no-ack"], status=2,
           stderr="warren get: --ack and --no-ack cannot be used together (see warren get --help)\n")
    expect(["publish", "--count", "0", "--body", "x"], status=2)
    expect(["publish", "--body", "x", "--property", "colour=red"], status=2)
    expect(["publish", "--body", "x", "--header", "a=int8:300"], status=2,
           stderr="warren publish: --header a: int8 value 300 is out of range (-128..127)\n")
    expect(["publish", "--body", "x", "--headers-json", "{\"a\":"], status=2,
           stderr="warren publish: --headers-json: invalid JSON: line 1, column 6: expected a "
                  "JSON value, found end of input\n")
    expect(["declare-queue", "x", "--uri", "http://host/"], status=2)
    expect(["declare-queue", "--no-wait"], status=2)
    expect(["--version"], stdout=None)

    # --uri wins over $AMQP_URL; a refused connection is exit status 1.
    rc, _, err = warren(["declare-queue", q1, "--passive"],
                        env={"AMQP_URL": "amqp://guest:guest@127.0.0.1:1/"})
    failures.check(rc == 1 and "127.0.0.1:1" in err, "a refused connection: status 1", (rc, err))
    rc, _, err = warren(["--uri", ic.broker_url(), "declare-queue", q1],
                        env={"AMQP_URL": "amqp://guest:guest@127.0.0.1:1/"})
    failures.equal((rc, err), (0, ""), "--uri before the command overrides $AMQP_URL")

    # Queues.
    expect(["declare-queue", q1, "--passive", "--json"],
           stdout='{"queue":"%s","message_count":0,"consumer_count":0}\n' % q1)
    expect(["declare-queue", stem + ".missing", "--passive"], status=1,
           stderr="warren declare-queue: 404 NOT_FOUND - no queue '%s.missing' in vhost '/' "
                  "(queue.declare)\n" % stem)
    expect(["declare-queue", q2, "--durable", "--auto-delete", "--argument",
            "x-max-length=int32:2", "--arguments-json",
            '{"x-message-ttl":{"type":"int32","value":60000}}'], stdout=q2 + "\n")
    out = expect(["declare-queue", "--exclusive"])
    failures.check(out.startswith("amq.gen-"), "a server-named queue", out)
    queues = ic.rabbitmqctl_json(["list_queues", "name", "durable", "auto_delete", "exclusive",
                                  "arguments"])
    if queues is not None:
        failures.equal(find(queues, q2), {
            "name": q2, "durable": True, "auto_delete": True, "exclusive": False,
            "arguments": [["x-message-ttl", "signedint", 60000], ["x-max-length", "signedint", 2]]},
            "declare-queue flags and typed arguments, as the broker lists them")
    expect(["declare-queue", q2, "--durable"], status=1)  # inequivalent auto_delete
    # A name the protocol cannot carry fails locally, before anything is sent:
    # a clear error, not a malformed frame the broker answers with 501.
    expect(["declare-queue", "q" * 300], status=1,
           stderr="warren declare-queue: cannot send queue.declare: a name, routing key or tag "
                  "is longer than 255 bytes\n")

    # Exchanges and bindings.
    expect(["declare-exchange", ex1, "--type", "fanout", "--durable", "--argument",
            "alternate-exchange=string:" + ex2])
    expect(["declare-exchange", ex2, "--type", "topic", "--auto-delete", "--internal"])
    expect(["declare-exchange", ex1, "--type", "direct"], status=1)
    expect(["declare-exchange", ex1, "--type", "fanout", "--durable", "--passive"])
    exchanges = ic.rabbitmqctl_json(["list_exchanges", "name", "type", "durable", "auto_delete",
                                     "internal", "arguments"])
    if exchanges is not None:
        failures.equal(find(exchanges, ex1), {
            "name": ex1, "type": "fanout", "durable": True, "auto_delete": False,
            "internal": False, "arguments": [["alternate-exchange", "longstr", ex2]]},
            "declare-exchange " + ex1)
        failures.equal(find(exchanges, ex2), {
            "name": ex2, "type": "topic", "durable": False, "auto_delete": True,
            "internal": True, "arguments": []}, "declare-exchange " + ex2)

    expect(["bind-queue", q1, ex1, "ignored", "--argument", "x-note=uint8:7"])
    expect(["bind-exchange", "--destination", ex2, "--source", ex1, "--routing-key", "k.#",
            "--no-wait"])
    expect(["bind-queue", "--queue", q2, "--exchange", ex2, "--routing-key", "k.*"])
    bindings = ic.rabbitmqctl_json(["list_bindings", "source_name", "destination_name",
                                    "routing_key", "arguments"])
    if bindings is not None:
        mine = sorted([b["source_name"], b["destination_name"], b["routing_key"], b["arguments"]]
                      for b in bindings if b["source_name"] in (ex1, ex2))
        failures.equal(mine, sorted([[ex1, q1, "ignored", [["x-note", "unsignedbyte", 7]]],
                                     [ex1, ex2, "k.#", []], [ex2, q2, "k.*", []]]),
                       "bindings as the broker lists them")

    # publish through ex1 (fanout) reaches q1 and, via ex2, q2.
    expect(["publish", "--exchange", ex1, "--routing-key", "k.a", "--body", "via ex1",
            "--count", "3", "--confirm"])
    expect(["purge-queue", q1], stdout="3\n")
    expect(["declare-queue", q2, "--durable", "--auto-delete", "--passive", "--json"],
           stdout='{"queue":"%s","message_count":2,"consumer_count":0}\n' % q2)  # x-max-length 2
    expect(["delete-queue", q2, "--if-empty"], status=1,
           stderr="warren delete-queue: 406 PRECONDITION_FAILED - queue '%s' in vhost '/' not "
                  "empty (queue.delete)\n" % q2)
    expect(["delete-exchange", ex1, "--if-unused"], status=1)
    expect(["unbind-exchange", ex2, ex1, "k.#"])
    expect(["unbind-queue", q1, ex1, "ignored", "--argument", "x-note=uint8:7"])
    # Unroutable: ex1 has no bindings left, and its alternate exchange ex2 no
    # binding for this key.
    rc, _, err = warren(["publish", "--exchange", ex1, "--routing-key", "other", "--body", "x",
                         "--mandatory"])
    failures.equal((rc, err), (3, "warren publish: message returned: 312 NO_ROUTE (exchange '%s', "
                                  "routing key 'other')\n" % ex1), "an unroutable mandatory publish")
    expect(["publish", "--routing-key", q1, "--body", "routed", "--mandatory"])

    # get: requeue by default, --ack, --no-ack, --count.
    expect(["publish", "--routing-key", q1, "--body", "two", "--count", "1"])
    expect(["get", q1, "--count", "5"], stdout="routed\ntwo\n")
    out = expect(["get", q1, "--json"])
    failures.equal(json.loads(out)["redelivered"], True, "get without --ack requeued it")
    expect(["get", q1, "--ack"], stdout="routed\n")
    expect(["get", q1, "--no-ack"], stdout="two\n")
    expect(["get", q1], stdout="", stderr="warren get: no message: queue '%s' is empty\n" % q1)
    expect(["get", stem + ".missing"], status=1,
           stderr="warren get: 404 NOT_FOUND - no queue '%s.missing' in vhost '/' "
                  "(basic.get)\n" % stem)

    # consume: --count, --prefetch, --no-ack, and a cancel by the broker.
    expect(["publish", "--routing-key", q1, "--count", "4"], stdin=b"c")
    expect(["consume", q1, "--count", "3", "--prefetch", "1"], stdout="c\nc\nc\n")
    expect(["consume", q1, "--count", "1", "--no-ack", "--exclusive", "--consumer-tag", "t1"],
           stdout="c\n")
    expect(["declare-queue", q1, "--passive", "--json"],
           stdout='{"queue":"%s","message_count":0,"consumer_count":0}\n' % q1)
    p = subprocess.Popen([ic.warren_path(), "consume", q1], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=dict(os.environ, AMQP_URL=ic.broker_url()))
    import time
    time.sleep(1)
    expect(["delete-queue", q1], stdout="0\n")
    out, err = p.communicate(timeout=30)
    failures.check(p.returncode == 1 and "cancel" in err.decode(),
                   "consume ends with status 1 when the broker cancels it", (p.returncode, err))
    expect(["delete-queue", q2, "--if-unused"], stdout="2\n")
    expect(["delete-exchange", ex1, "--if-unused"])
    expect(["delete-exchange", ex2, "--no-wait"])
finally:
    for q in (q1, q2):
        warren(["delete-queue", q])
    for e in (ex1, ex2):
        warren(["delete-exchange", e])

failures.finish("warren commands")
