"""rabbitmq-c's command-line tools (amqp-tools) and the warren command.

amqp-publish -> warren get / consume: the body and every property the tool
can set (content_type, content_encoding, reply_to, delivery_mode; headers,
which it can only write as strings) arrive intact.

warren publish -> amqp-get / amqp-consume: the tools print only the body, so
the body must arrive byte for byte: text, binary, and larger than frame_max;
the messages carry every property and a header of every type, nested, which
rabbitmq-c's decoder must accept.
"""

import json
import os
import shutil
import subprocess
import sys

import interop_common as ic

for tool in ("amqp-publish", "amqp-get", "amqp-consume"):
    if shutil.which(tool) is None:
        print("%s is not installed (Debian package amqp-tools): skipped" % tool)
        sys.exit(77)

failures = ic.Failures()
queue = ic.unique("amqp-tools")


def tool_url():
    # rabbitmq-c reads "amqp://host/" as the vhost "" (the URI spec's reading);
    # warren and pika take it for "/", so name "/" for the tools.
    url = ic.broker_url()
    scheme, rest = url.split("://", 1)
    authority, slash, path = rest.partition("/")
    if path == "" or path.startswith("?"):
        url = "%s://%s/%%2F%s" % (scheme, authority, path)
    return url


def tool(args, stdin=b"", expect=0):
    p = subprocess.run(args[:1] + ["--url", tool_url()] + args[1:], input=stdin,
                       capture_output=True, timeout=60)
    failures.equal(p.returncode, expect, "%s exit status" % " ".join(args[:3]))
    if p.returncode != expect:
        print(p.stderr.decode(errors="replace"))
    return p.stdout


def typed(t, v):
    return {"type": t, "value": v}


ic.run_warren(["declare-queue", queue])
try:
    ic.run_warren(["purge-queue", queue])

    # amqp-publish -> warren get
    tool(["amqp-publish", "-r", queue, "-C", "text/plain", "-E", "utf-8", "-t", "reply.q", "-p",
          "-H", "k1: v1", "-H", "k2: a: b", "-b", "hello there"])
    [got] = ic.warren_get_json(queue)
    failures.equal(got["routing_key"], queue, "routing_key")
    failures.equal(got["body"], "hello there", "body")
    failures.equal(got["properties"], {
        "content_type": "text/plain",
        "content_encoding": "utf-8",
        "headers": {"k1": typed("string", "v1"), "k2": typed("string", "a: b")},
        "delivery_mode": 2,
        "reply_to": "reply.q",
    }, "properties amqp-publish set")

    # Without -p the tool still sends delivery_mode 1.
    tool(["amqp-publish", "-r", queue, "-b", "plain"])
    [got] = ic.warren_get_json(queue)
    failures.equal(got["properties"], {"delivery_mode": 1}, "amqp-publish's default properties")
    failures.equal(got["body"], "plain", "plain body")

    # A binary body from stdin.
    binary = bytes(range(256))
    tool(["amqp-publish", "-r", queue], stdin=binary)
    [got] = ic.warren_get_json(queue)
    failures.equal(got.get("body_base64"), ic.base64(binary), "binary body")

    # Line mode: one message per line, read by warren consume.
    tool(["amqp-publish", "-r", queue, "-l"], stdin=b"line 1\nline 2\n")
    out, _ = ic.run_warren(["consume", "--queue", queue, "--count", "2", "--json"])
    lines = [json.loads(line) for line in out.decode().splitlines()]
    failures.equal([m["body"] for m in lines], ["line 1\n", "line 2\n"], "line mode via consume")
    out, _ = ic.run_warren(["get", "--queue", queue], expect=0)
    failures.equal(out, b"", "consume acked what it printed")

    # warren publish -> amqp-get, with every property and header type.
    every = [
        "--property", "content_type=text/plain", "--property", "content_encoding=utf-8",
        "--property", "delivery_mode=2", "--property", "priority=3",
        "--property", "correlation_id=c", "--property", "reply_to=r",
        "--property", "expiration=60000", "--property", "message_id=m",
        "--property", "timestamp=1705032704", "--property", "type=t",
        "--property", "user_id=" + ic.username(), "--property", "app_id=a",
        "--property", "cluster_id=cl",
        "--header", "t=bool:true", "--header", "b=int8:-1", "--header", "B=uint8:255",
        "--header", "s=int16:-2", "--header", "u=uint16:2", "--header", "I=int32:-3",
        "--header", "i=uint32:3", "--header", "l=int64:-4", "--header", "f=float:0.5",
        "--header", "d=double:-0.25", "--header", "D=decimal:1.25", "--header", "S=string:s",
        "--header", "x=bytes:AP8=", "--header", "T=timestamp:1", "--header", "V=void",
        "--header", 'F=table:{"in":{"type":"array","value":[{"type":"int8","value":1},'
                    '{"type":"table","value":{"z":{"type":"void"}}}]}}',
        "--header", 'A=array:[{"type":"double","value":1.5},{"type":"array","value":[]}]',
    ]
    ic.run_warren(["publish", "--routing-key", queue, "--body", "from warren \u00e9"] + every)
    out = tool(["amqp-get", "-q", queue])
    failures.equal(out, "from warren \u00e9".encode(), "amqp-get: text body")

    big = os.urandom(300000)
    ic.run_warren(["publish", "--routing-key", queue, "--confirm"] + every, stdin=big)
    out = tool(["amqp-get", "-q", queue])
    failures.check(out == big, "amqp-get: 300000-byte binary body", len(out), len(big))

    ic.run_warren(["publish", "--routing-key", queue, "--body", "to consume"] + every)
    out = tool(["amqp-consume", "-q", queue, "-c", "1", "cat"])
    failures.equal(out, b"to consume", "amqp-consume: body")

    tool(["amqp-get", "-q", queue], expect=2)  # empty now: the tool exits 2
finally:
    ic.run_warren(["delete-queue", queue])

failures.finish("amqp-tools")
