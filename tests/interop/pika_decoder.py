"""A peer that is itself wrong: pika's field-table codec against RabbitMQ's
letters.

pika 1.2's decoder is said to swap the signedness of 'b' and 'B', read 'l'
as unsigned and truncate 'f'/'d' to integers; its encoder writes decimals as
signed. This script finds out by experiment which of these hold for the
installed pika, says so, and where pika's reading differs from RabbitMQ's,
checks the bytes on the wire instead: warren must write (and read) the
letters RabbitMQ uses (t b B s u I i l f d D S x A T F V), whatever a peer
makes of them. Only the wire checks and warren's own reports can fail the
test; pika's misreadings are reported, not asserted, so a fixed pika passes.
"""

import decimal
import struct

import interop_common as ic

ic.require_pika()

import pika
import pika.data

failures = ic.Failures()
capture = ic.PikaRawCapture()

queue = ic.unique("pika-decoder")
conn = ic.pika_connection()
ch = conn.channel()
# Each publish then waits for the broker's ack: the message is in the queue
# before warren, on a connection of its own, looks for it.
ch.confirm_delivery()
ch.queue_declare(queue)
ch.queue_purge(queue)

# name, warren's --header value, the value RabbitMQ's letter means, the letter
cases = [
    ("b-neg", "int8:-5", -5, "b"),
    ("b-pos", "int8:5", 5, "b"),
    ("B-high", "uint8:200", 200, "B"),
    ("B-low", "uint8:100", 100, "B"),
    ("l-neg", "int64:-2", -2, "l"),
    ("l-pos", "int64:5", 5, "l"),
    ("f", "float:1.5", 1.5, "f"),
    ("f-whole", "float:2", 2.0, "f"),
    ("d", "double:-2.75", -2.75, "d"),
    ("d-whole", "double:3", 3.0, "d"),
    ("D-high", "decimal:3000000000", (0, 3000000000), "D"),
    ("D-low", "decimal:1.5", (1, 15), "D"),
]
bites = []

try:
    args = ["publish", "--routing-key", queue, "--body", "x"]
    for name, arg, _, _ in cases:
        args += ["--header", "%s=%s" % (name, arg)]
    ic.run_warren(args)
    del capture.raw[:]
    method, props, _ = ch.basic_get(queue, auto_ack=True)
    failures.check(method is not None, "the message arrived")

    # The bytes on the wire, read by RabbitMQ's letters.
    wire, _ = ic.headers_of_raw_properties(capture.raw[-1])
    wire = dict(wire)
    for name, _, want, letter in cases:
        failures.equal(wire.get(name), (letter, want), "wire: %s is '%s' %r" % (name, letter, want))

    # RabbitMQ's own reading of those bytes, when rabbitmqctl can ask it.
    _, table_bytes = ic.headers_of_raw_properties(capture.raw[-1])
    erlang_types = {"b": "byte", "B": "unsignedbyte", "l": "long", "f": "float",
                    "d": "double", "D": "decimal"}
    parsed = ic.rabbit_parse_table(table_bytes)
    if parsed is None:
        print("rabbitmqctl is not available: RabbitMQ's own parser not consulted")
    else:
        for name, _, want, letter in cases:
            if letter == "D":
                value = "{%d,%d}" % want
            elif letter in "fd":
                value = repr(float(want))
            else:
                value = str(want)
            # ~w prints a binary as its bytes: <<98,45,...>>
            term = "{<<%s>>,%s,%s}" % (",".join(str(c) for c in name.encode()),
                                       erlang_types[letter], value)
            failures.check(term in parsed, "RabbitMQ's parser reads %s as %s %s" % (
                name, erlang_types[letter], value), parsed, term)

    # What pika made of them.
    for name, arg, want, letter in cases:
        got = props.headers.get(name)
        if letter == "D":
            correct = decimal.Decimal(want[1]).scaleb(-want[0])
        else:
            correct = want
        same = got == correct and (isinstance(got, float) == isinstance(correct, float))
        if not same:
            bites.append(name)
            print("pika %s misreads '%s' (warren --header %s=%s): %r instead of %r" % (
                pika.__version__, letter, name, arg, got, correct))

    # What pika 1.2's source says it gets wrong, confirmed or not.
    claims = [
        ("'b' read as unsigned", "b-neg" in bites),
        ("'B' read as signed", "B-high" in bites),
        ("'l' read as unsigned", "l-neg" in bites),
        ("'f' truncated to an integer", "f" in bites and "f-whole" in bites),
        ("'d' truncated to an integer", "d" in bites and "d-whole" in bites),
        ("'D' value read as signed", "D-high" in bites),
    ]
    for claim, confirmed in claims:
        print("pika %s decoder: %s: %s" % (pika.__version__, claim,
                                          "confirmed" if confirmed else "NOT observed"))

    # pika's encoder: Decimal as a signed value. RabbitMQ (and warren) read the
    # 32-bit decimal value as unsigned, so -1.5 arrives as 4294967281 / 10.
    pieces = []
    pika.data.encode_table(pieces, {"neg-decimal": decimal.Decimal("-1.5")})
    sent = b"".join(pieces)
    pika_sends = dict(ic.decode_table(sent)[0])["neg-decimal"]
    failures.equal(pika_sends, ("D", (1, 4294967281)), "pika writes Decimal('-1.5') as D 1 0xFFFFFFF1")
    print("pika %s encoder: Decimal('-1.5') goes out as scale 1, value 0x%08X "
          "(signed); RabbitMQ reads it as %d" % (pika.__version__, pika_sends[1][1],
                                                 pika_sends[1][1]))
    ch.basic_publish("", queue, b"x", pika.BasicProperties(
        headers={"neg-decimal": decimal.Decimal("-1.5"), "int-2^31": 2 ** 31}))
    [got] = ic.warren_get_json(queue)
    h = got["properties"]["headers"]
    failures.equal(h.get("neg-decimal"), {"type": "decimal", "value": {"scale": 1, "value": 4294967281}},
                   "warren reads pika's negative decimal by RabbitMQ's rule (unsigned)")
    failures.equal(h.get("int-2^31"), {"type": "int64", "value": 2 ** 31},
                   "pika sends an int past int32 as 'l'")

    # What pika's encoder cannot write at all.
    for what, value in [("a float", 1.5), ("an int past 64 bits", 2 ** 64),
                        ("a bytearray", bytearray(b"x"))]:
        try:
            pika.data.encode_table([], {"v": value})
            print("pika %s encoder: writes %s" % (pika.__version__, what))
        except Exception as e:  # noqa: BLE001 - any refusal counts
            print("pika %s encoder: cannot write %s (%s)" % (pika.__version__, what,
                                                             type(e).__name__))
finally:
    ch.queue_delete(queue)
    conn.close()

failures.finish("pika decoder")
