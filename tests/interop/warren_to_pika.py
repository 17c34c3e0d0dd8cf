"""`warren publish` publishes, pika reads.

1. A message with all 14 basic properties and a headers table holding every
   type whose values pika 1.2 decodes faithfully (t s u I i D S x T F A V, and
   l for non-negative values), nested tables and arrays included: pika must
   read each value exactly, and the raw header bytes pika received must carry
   RabbitMQ's letters (checked with this suite's own decoder). The types pika
   decodes wrongly (b B l<0 f d) are pika_decoder.py's business.
2. Bodies: UTF-8 text from --body, binary from stdin, and one larger than
   frame_max (several body frames), with --count.
"""

import datetime
import decimal

import interop_common as ic

ic.require_pika()

import pika

failures = ic.Failures()
capture = ic.PikaRawCapture()

queue = ic.unique("warren-to-pika")
conn = ic.pika_connection()
ch = conn.channel()
ch.queue_declare(queue)
ch.queue_purge(queue)
user = ic.username()

try:
    nested = ('{"inner":{"type":"table","value":{"deep":{"type":"array","value":['
              '{"type":"int32","value":1},{"type":"string","value":"two"},'
              '{"type":"void","value":null},{"type":"table","value":'
              '{"x":{"type":"bool","value":false}}}]}}},'
              '"n":{"type":"int16","value":-1}}')
    array = ('[{"type":"uint32","value":4000000000},{"type":"string","value":"s"},'
             '{"type":"bytes","value":"AQ=="},{"type":"timestamp","value":1705032704},'
             '{"type":"decimal","value":{"scale":1,"value":5}},'
             '{"type":"array","value":[{"type":"array","value":[]}]},'
             '{"type":"table","value":{}}]')
    args = [
        "publish", "--routing-key", queue, "--body", "caf\u00e9 body",
        "--property", "content_type=application/json",
        "--property", "content_encoding=utf-8",
        "--property", "delivery_mode=2",
        "--property", "priority=7",
        "--property", "correlation_id=corr-1",
        "--property", "reply_to=reply.q",
        "--property", "expiration=600000",
        "--property", "message_id=msg-1",
        "--property", "timestamp=1705032704",
        "--property", "type=test.type",
        "--property", "user_id=" + user,
        "--property", "app_id=warren-interop",
        "--property", "cluster_id=cluster-x",
        "--header", "true=bool:true",
        "--header", "false=bool:false",
        "--header", "int16=int16:-300",
        "--header", "uint16=uint16:60000",
        "--header", "int32=int32:-2147483648",
        "--header", "uint32=uint32:4294967295",
        "--header", "int64=int64:9223372036854775807",
        "--header", "decimal=decimal:3.14",
        "--header", "string=string:gr\u00fc\u00df \u20ac \U0001F600",
        "--header", "empty=string:",
        "--header", "bytes=bytes:AAH+/w==",
        "--header", "timestamp=timestamp:1705032704",
        "--header", "void=void",
        "--header", "table=table:" + nested,
        "--header", "array=array:" + array,
        "--headers-json", '{"from-json":{"type":"string","value":"first"}}',
    ]
    ic.run_warren(args)
    del capture.raw[:]
    method, props, body = ch.basic_get(queue, auto_ack=True)
    failures.check(method is not None, "the message arrived")
    failures.equal(body, "caf\u00e9 body".encode("utf-8"), "body")
    want_props = {
        "content_type": "application/json", "content_encoding": "utf-8", "delivery_mode": 2,
        "priority": 7, "correlation_id": "corr-1", "reply_to": "reply.q",
        "expiration": "600000", "message_id": "msg-1", "timestamp": 1705032704,
        "type": "test.type", "user_id": user, "app_id": "warren-interop",
        "cluster_id": "cluster-x",
    }
    for name, want in want_props.items():
        failures.equal(getattr(props, name), want, "property " + name)

    stamp = datetime.datetime(2024, 1, 12, 4, 11, 44)
    want_headers = {
        "from-json": "first",
        "true": True,
        "false": False,
        "int16": -300,
        "uint16": 60000,
        "int32": -2147483648,
        "uint32": 4294967295,
        "int64": 9223372036854775807,
        "decimal": decimal.Decimal("3.14"),
        "string": "gr\u00fc\u00df \u20ac \U0001F600",
        "empty": "",
        "bytes": b"\x00\x01\xfe\xff",
        "timestamp": stamp,
        "void": None,
        "table": {"inner": {"deep": [1, "two", None, {"x": False}]}, "n": -1},
        "array": [4000000000, "s", b"\x01", stamp, decimal.Decimal("0.5"), [[]], {}],
    }
    got = props.headers or {}
    for name, want in want_headers.items():
        g = got.get(name, "<missing>")
        # pika returns 'l' as pika.compat.long, an int subclass.
        same_type = type(g) == type(want) or (type(want) is int and isinstance(g, int)
                                              and not isinstance(g, bool))
        failures.check(g == want and same_type, "pika reads header " + name, g, want)
    failures.equal(list(got), list(want_headers), "header order")

    # The letters on the wire, read with this suite's own decoder.
    table, _ = ic.headers_of_raw_properties(capture.raw[-1])
    want_wire = [
        ("from-json", ("S", b"first")),
        ("true", ("t", True)),
        ("false", ("t", False)),
        ("int16", ("s", -300)),
        ("uint16", ("u", 60000)),
        ("int32", ("I", -2147483648)),
        ("uint32", ("i", 4294967295)),
        ("int64", ("l", 9223372036854775807)),
        ("decimal", ("D", (2, 314))),
        ("string", ("S", "gr\u00fc\u00df \u20ac \U0001F600".encode("utf-8"))),
        ("empty", ("S", b"")),
        ("bytes", ("x", b"\x00\x01\xfe\xff")),
        ("timestamp", ("T", 1705032704)),
        ("void", ("V", None)),
        ("table", ("F", [("inner", ("F", [("deep", ("A", [
            ("I", 1), ("S", b"two"), ("V", None), ("F", [("x", ("t", False))])]))])),
            ("n", ("s", -1))])),
        ("array", ("A", [("i", 4000000000), ("S", b"s"), ("x", b"\x01"), ("T", 1705032704),
                         ("D", (1, 5)), ("A", [("A", [])]), ("F", [])])),
    ]
    failures.equal(table, want_wire, "header letters and values on the wire")

    # Bodies: binary from stdin, and larger than frame_max, several copies.
    binary = bytes(range(256)) * 3
    ic.run_warren(["publish", "--routing-key", queue], stdin=binary)
    method, props, body = ch.basic_get(queue, auto_ack=True)
    failures.equal(body, binary, "binary body from stdin")
    failures.equal(props.headers, None, "no headers when none are given")
    failures.equal(props.content_type, None, "no properties when none are given")
    big = bytes((k * 7) % 251 for k in range(300000))
    ic.run_warren(["publish", "--routing-key", queue, "--count", "3",
                   "--property", "delivery_mode=persistent", "--confirm"], stdin=big)
    for k in range(3):
        method, props, body = ch.basic_get(queue, auto_ack=True)
        failures.check(body == big, "300000-byte body %d intact" % k,
                       None if body is None else len(body), len(big))
        failures.equal(props.delivery_mode, 2, "delivery_mode=persistent")
    method, _, _ = ch.basic_get(queue, auto_ack=True)
    failures.equal(method, None, "exactly 3 copies")
finally:
    ch.queue_delete(queue)
    conn.close()

failures.finish("warren -> pika")
