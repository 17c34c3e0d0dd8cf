"""pika publishes, `warren get --json` reads.

1. A message with all 14 basic properties and a headers table holding every
   value type pika's encoder can write (str, bytes, bool, int in and out of
   32 bits, pika.compat.long, Decimal, datetime, None, dict, list, nested):
   warren must report each value with its exact type.
2. pika with a small extension that writes the RabbitMQ letters plain pika
   cannot (b B s u i f d, extreme floats, -0.0), and a body that is not
   UTF-8 (body_base64). No NaN or infinity: RabbitMQ 3.10 closes the
   connection (541 INTERNAL_ERROR) when it parses a header holding one, as it
   does for the CC/BCC lookup of every publish.
3. The headers warren printed, passed back through `warren publish
   --headers-json`, reach pika as the very bytes pika first sent.
"""

import datetime
import decimal
import struct

import interop_common as ic

ic.require_pika()

import pika
import pika.compat
import pika.data

failures = ic.Failures()
capture = ic.PikaRawCapture()


class Raw:
    """A field value pika sends as a letter and its packed bytes."""

    def __init__(self, letter, fmt, *values):
        self.letter = letter
        self.payload = struct.pack(fmt, *values)


_encode_value = pika.data.encode_value


def encode_value(pieces, value):
    if isinstance(value, Raw):
        pieces.append(value.letter + value.payload)
        return 1 + len(value.payload)
    return _encode_value(pieces, value)


pika.data.encode_value = encode_value


def encoded_table(headers):
    pieces = []
    pika.data.encode_table(pieces, headers)
    return b"".join(pieces)


def typed(t, v):
    return {"type": t, "value": v}


queue = ic.unique("pika-to-warren")
conn = ic.pika_connection()
ch = conn.channel()
# Each publish then waits for the broker's ack: the message is in the queue
# before warren, on a connection of its own, looks for it.
ch.confirm_delivery()
ch.queue_declare(queue)
ch.queue_purge(queue)
user = ic.username()

try:
    # 1. Everything plain pika can write.
    stamp = datetime.datetime(2024, 1, 12, 4, 11, 44)
    headers = {
        "str": "text",
        "unicode": "gr\u00fc\u00df \u20ac \U0001F600",
        "empty-str": "",
        "bytes": b"\x00\x01\xfe\xff",
        "true": True,
        "false": False,
        "int": 42,
        "int-min": -2147483648,
        "int-max": 2147483647,
        "big": 2 ** 40,
        "big-neg": -(2 ** 63),
        "long": pika.compat.long(7),
        "decimal": decimal.Decimal("3.14"),
        "decimal-int": decimal.Decimal("100"),
        "timestamp": stamp,
        "void": None,
        "table": {"nested": {"deep": [1, "two", None, {"x": False}]}, "n": -1},
        "array": [1, 2 ** 40, "s", b"\x01", True, None, decimal.Decimal("0.5"), stamp,
                  {"k": "v"}, [[], [1]]],
        "empty-table": {},
        "empty-array": [],
    }
    props = pika.BasicProperties(
        content_type="application/json", content_encoding="utf-8", headers=headers,
        delivery_mode=2, priority=7, correlation_id="corr-1", reply_to="reply.q",
        expiration="600000", message_id="msg-1", timestamp=1705032704, type="test.type",
        user_id=user, app_id="pika-interop", cluster_id="cluster-x")
    ch.basic_publish("", queue, "caf\u00e9 body".encode("utf-8"), props)

    want_headers = {
        "str": typed("string", "text"),
        "unicode": typed("string", "gr\u00fc\u00df \u20ac \U0001F600"),
        "empty-str": typed("string", ""),
        "bytes": typed("bytes", "AAH+/w=="),
        "true": typed("bool", True),
        "false": typed("bool", False),
        "int": typed("int32", 42),
        "int-min": typed("int32", -2147483648),
        "int-max": typed("int32", 2147483647),
        "big": typed("int64", 2 ** 40),
        "big-neg": typed("int64", -(2 ** 63)),
        "long": typed("int64", 7),
        "decimal": typed("decimal", {"scale": 2, "value": 314}),
        "decimal-int": typed("decimal", {"scale": 0, "value": 100}),
        "timestamp": typed("timestamp", 1705032704),
        "void": typed("void", None),
        "table": typed("table", {
            "nested": typed("table", {"deep": typed("array", [
                typed("int32", 1), typed("string", "two"), typed("void", None),
                typed("table", {"x": typed("bool", False)})])}),
            "n": typed("int32", -1)}),
        "array": typed("array", [
            typed("int32", 1), typed("int64", 2 ** 40), typed("string", "s"),
            typed("bytes", "AQ=="), typed("bool", True), typed("void", None),
            typed("decimal", {"scale": 1, "value": 5}), typed("timestamp", 1705032704),
            typed("table", {"k": typed("string", "v")}),
            typed("array", [typed("array", []), typed("array", [typed("int32", 1)])])]),
        "empty-table": typed("table", {}),
        "empty-array": typed("array", []),
    }
    want_properties = {
        "content_type": "application/json",
        "content_encoding": "utf-8",
        "headers": want_headers,
        "delivery_mode": 2,
        "priority": 7,
        "correlation_id": "corr-1",
        "reply_to": "reply.q",
        "expiration": "600000",
        "message_id": "msg-1",
        "timestamp": 1705032704,
        "type": "test.type",
        "user_id": user,
        "app_id": "pika-interop",
        "cluster_id": "cluster-x",
    }
    [got] = ic.warren_get_json(queue)
    failures.equal(got["exchange"], "", "exchange")
    failures.equal(got["routing_key"], queue, "routing_key")
    failures.equal(got["redelivered"], False, "redelivered")
    failures.equal(got["body"], "caf\u00e9 body", "body")
    failures.check("body_base64" not in got, "no body_base64 for a UTF-8 body")
    for name, want in want_properties.items():
        failures.equal(got["properties"].get(name), want, "property " + name)
    failures.equal(list(got["properties"]), list(want_properties), "property order")
    for name, want in want_headers.items():
        failures.equal(got["properties"]["headers"].get(name), want, "header " + name)
    failures.equal(list(got["properties"]["headers"]), list(headers), "header order")
    headers_json_1 = got["properties"]["headers"]

    # 2. The letters plain pika cannot write, and a binary body.
    raw_headers = {
        "b": Raw(b"b", ">b", -5),
        "b-min": Raw(b"b", ">b", -128),
        "B": Raw(b"B", ">B", 200),
        "s": Raw(b"s", ">h", -300),
        "u": Raw(b"u", ">H", 60000),
        "i": Raw(b"i", ">I", 3000000000),
        "f": Raw(b"f", ">f", 1.5),
        "f-tenth": Raw(b"f", ">f", 0.1),
        "d": Raw(b"d", ">d", -2.75),
        "d-tenth": Raw(b"d", ">d", 0.1),
        "d-max": Raw(b"d", ">d", 1.7976931348623157e308),
        "d-denorm": Raw(b"d", ">d", 5e-324),
        "d-neg-zero": Raw(b"d", ">d", -0.0),
        "l": Raw(b"l", ">q", -2),
        "D-unsigned": Raw(b"D", ">BI", 3, 4000000000),
        "array": [Raw(b"b", ">b", -1), Raw(b"u", ">H", 1), Raw(b"f", ">f", -0.5)],
    }
    ch.basic_publish("", queue, b"\x00\xff\xfe binary", pika.BasicProperties(headers=raw_headers))
    [got] = ic.warren_get_json(queue)
    failures.equal(got.get("body_base64"), "AP/+IGJpbmFyeQ==", "body_base64 of a binary body")
    failures.check("body" not in got, "no body for a binary body")
    h = got["properties"]["headers"]
    exact = {
        "b": typed("int8", -5), "b-min": typed("int8", -128), "B": typed("uint8", 200),
        "s": typed("int16", -300), "u": typed("uint16", 60000), "i": typed("uint32", 3000000000),
        "l": typed("int64", -2),
        "D-unsigned": typed("decimal", {"scale": 3, "value": 4000000000}),
    }
    for name, want in exact.items():
        failures.equal(h.get(name), want, "header " + name)
    # Floats and doubles: the printed number must read back as the same bits.
    for name, (kind, fmt) in {"f": ("float", ">f"), "f-tenth": ("float", ">f"),
                              "d": ("double", ">d"), "d-tenth": ("double", ">d"),
                              "d-max": ("double", ">d"), "d-denorm": ("double", ">d")}.items():
        v = h.get(name, {})
        failures.equal(v.get("type"), kind, "header %s type" % name)
        failures.equal(struct.pack(fmt, v.get("value", 0)), raw_headers[name].payload,
                       "header %s bits" % name)
    failures.equal(h.get("f-tenth", {}).get("value"), 0.1, "float 0.1 prints as 0.1")
    # -0.0 prints as -0 (JSON has no other way); its sign must survive.
    failures.equal(h.get("d-neg-zero"), typed("double", 0), "header d-neg-zero")
    failures.equal(h.get("array"), typed("array", [typed("int8", -1), typed("uint16", 1),
                                                    typed("float", -0.5)]), "header array")
    headers_json_2 = h

    # 3. warren's JSON back through --headers-json: the same bytes on the wire.
    def round_trip(headers_json, want_bytes, what):
        import json
        text = json.dumps(headers_json, ensure_ascii=False)
        ic.run_warren(["publish", "--routing-key", queue, "--body", "rt",
                       "--headers-json", text])
        del capture.raw[:]
        method, _, body = ch.basic_get(queue, auto_ack=True)
        if not failures.check(method is not None, what + ": message arrived"):
            return
        _, table_bytes = ic.headers_of_raw_properties(capture.raw[-1])
        failures.equal(table_bytes, want_bytes, what + ": header bytes on the wire")

    round_trip(headers_json_1, encoded_table(headers), "pika's own types")
    # json.dumps writes -0 as 0 for the int Python read; give it the double back.
    headers_json_2["d-neg-zero"] = typed("double", -0.0)
    round_trip(headers_json_2, encoded_table(raw_headers), "every other letter")
    # And warren's own text, byte for byte, not re-serialized by Python.
    out, _ = ic.run_warren(["get", "--queue", queue, "--json", "--ack"], expect=0)
    failures.equal(out, b"", "queue drained")
    ch.basic_publish("", queue, b"x", pika.BasicProperties(headers=raw_headers))
    out, _ = ic.run_warren(["get", "--queue", queue, "--json", "--ack"])
    line = out.decode("utf-8")
    headers_text = line[line.index('"headers":') + len('"headers":'):line.index('},"body"')]
    failures.check('"d-neg-zero":{"type":"double","value":-0}' in headers_text,
                   "-0.0 is printed as -0", headers_text)
    ic.run_warren(["publish", "--routing-key", queue, "--body", "rt",
                   "--headers-json", headers_text])
    del capture.raw[:]
    method, _, _ = ch.basic_get(queue, auto_ack=True)
    _, table_bytes = ic.headers_of_raw_properties(capture.raw[-1])
    failures.equal(table_bytes, encoded_table(raw_headers), "warren's own JSON text round trip")
finally:
    ch.queue_delete(queue)
    conn.close()

failures.finish("pika -> warren")
