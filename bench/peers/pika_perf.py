#!/usr/bin/python3
"""The pika peer of warren-perf: the workloads of scripts/bench written the way a
pika user writes them.

  pika_perf.py --mode publish|confirm|consume [--uri URI] [--queue NAME]
               [--size BYTES] [--count N] [--window N] [--prefetch N] [--multi-ack N]

  publish   BlockingConnection, basic_publish in a loop, no confirms
  confirm   --window 1: BlockingConnection.confirm_delivery(), every publish waits
            for its ack; --window N: SelectConnection with at most N unconfirmed
  consume   basic_qos(--prefetch), basic_consume with a callback, basic_ack
            (multiple) every --multi-ack messages

Bodies follow PerfTest: sequence number, send time in ns (CLOCK_MONOTONIC),
padding. Publish runs end when a passive queue.declare counts every message in
the queue. Prints one JSON line; CPU is the whole process's user + system time
over the timed part (getrusage). Needs /usr/bin/python3 (Debian's python3-pika).
"""

import argparse
import json
import resource
import struct
import sys
import time

import pika


def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime, r.ru_stime


def stamp(body, seq):
    struct.pack_into(">IQ", body, 0, seq & 0xFFFFFFFF, time.monotonic_ns())
    return bytes(body)


def blocking_publish(args, confirm):
    conn = pika.BlockingConnection(pika.URLParameters(args.uri))
    ch = conn.channel()
    baseline = ch.queue_declare(args.queue).method.message_count
    if confirm:
        ch.confirm_delivery()
    body = bytearray(args.size)
    c0, t0 = cpu(), time.monotonic_ns()
    nacked = 0
    for i in range(args.count):
        try:
            ch.basic_publish("", args.queue, stamp(body, i))
        except pika.exceptions.NackError:
            nacked += 1
    t_sent = time.monotonic_ns()
    while ch.queue_declare(args.queue, passive=True).method.message_count < baseline + args.count:
        time.sleep(0.0005)
    t_end = time.monotonic_ns()
    c1 = cpu()
    conn.close()
    return dict(sent=args.count, received=0, nacked=nacked, t0=t0, t_sent=t_sent, t_end=t_end,
                c0=c0, c1=c1)


def window_publish(args):
    """Publisher confirms with at most args.window unconfirmed, on pika's
    asynchronous SelectConnection."""
    st = dict(sent=0, confirmed=0, nacked=0, baseline=0, received=0)
    body = bytearray(args.size)

    def publish_more(ch):
        while st["sent"] < args.count and st["sent"] - st["confirmed"] < args.window:
            ch.basic_publish("", args.queue, stamp(body, st["sent"]))
            st["sent"] += 1

    def poll(ch):
        def on_count(frame):
            if frame.method.message_count >= st["baseline"] + args.count:
                st["t_end"] = time.monotonic_ns()
                st["c1"] = cpu()
                ch.connection.close()
            else:
                ch.connection.ioloop.call_later(0.0005, lambda: poll(ch))
        ch.queue_declare(args.queue, passive=True, callback=on_count)

    def on_confirm(ch, frame):
        m = frame.method
        upto = m.delivery_tag if m.multiple else st["confirmed"] + 1
        if isinstance(m, pika.spec.Basic.Nack):
            st["nacked"] += upto - st["confirmed"]
        st["confirmed"] = max(st["confirmed"], upto)
        if st["sent"] < args.count:
            publish_more(ch)
            if st["sent"] == args.count:
                st["t_sent"] = time.monotonic_ns()
        elif st["confirmed"] >= args.count and "polling" not in st:
            st["polling"] = True
            poll(ch)

    def on_declared(ch, frame):
        st["baseline"] = frame.method.message_count
        st["c0"], st["t0"] = cpu(), time.monotonic_ns()
        publish_more(ch)
        if st["sent"] == args.count:
            st["t_sent"] = time.monotonic_ns()

    def on_channel(ch):
        ch.confirm_delivery(lambda frame: on_confirm(ch, frame))
        ch.queue_declare(args.queue, callback=lambda frame: on_declared(ch, frame))

    def on_open(conn):
        conn.channel(on_open_callback=on_channel)

    def on_closed(conn, reason):
        conn.ioloop.stop()

    conn = pika.SelectConnection(pika.URLParameters(args.uri), on_open_callback=on_open,
                                 on_close_callback=on_closed)
    conn.ioloop.start()
    if "t_end" not in st:
        sys.exit("pika_perf: the connection closed before the run ended")
    return st


def consume(args):
    conn = pika.BlockingConnection(pika.URLParameters(args.uri))
    ch = conn.channel()
    ch.queue_declare(args.queue)
    ch.basic_qos(prefetch_count=args.prefetch)
    st = dict(received=0, unacked=0, last=0)
    every = max(1, args.multi_ack)

    def on_message(ch, method, properties, body):
        st["received"] += 1
        st["last"] = method.delivery_tag
        st["unacked"] += 1
        if st["unacked"] >= every:
            ch.basic_ack(method.delivery_tag, multiple=every > 1)
            st["unacked"] = 0
        if st["received"] >= args.count:
            ch.stop_consuming()

    c0, t0 = cpu(), time.monotonic_ns()
    ch.basic_consume(args.queue, on_message)
    ch.start_consuming()
    if st["unacked"]:
        ch.basic_ack(st["last"], multiple=True)
    t_end = time.monotonic_ns()
    c1 = cpu()
    conn.close()
    return dict(sent=0, received=st["received"], nacked=0, t0=t0, t_sent=t_end, t_end=t_end,
                c0=c0, c1=c1)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--uri", default="amqp://guest:guest@127.0.0.1:5672/%2F")
    p.add_argument("--mode", choices=["publish", "confirm", "consume"], default="publish")
    p.add_argument("--queue", default="warren-perf")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--count", type=int, default=10000)
    p.add_argument("--window", type=int, default=1000)
    p.add_argument("--prefetch", type=int, default=1000)
    p.add_argument("--multi-ack", type=int, default=100)
    args = p.parse_args()
    args.size = max(12, args.size)
    args.window = max(1, args.window)

    if args.mode == "publish":
        r = blocking_publish(args, confirm=False)
    elif args.mode == "confirm" and args.window == 1:
        r = blocking_publish(args, confirm=True)
    elif args.mode == "confirm":
        r = window_publish(args)
    else:
        r = consume(args)
    user = r["c1"][0] - r["c0"][0]
    sys_ = r["c1"][1] - r["c0"][1]
    print(json.dumps(dict(
        client="pika", mode=args.mode, size=args.size, count=args.count, sent=r["sent"],
        received=r["received"], nacked=r["nacked"],
        send_s=(r["t_sent"] - r["t0"]) / 1e9, taken_s=(r["t_end"] - r["t0"]) / 1e9,
        cpu_s=user + sys_, user_s=user, sys_s=sys_)))


if __name__ == "__main__":
    main()
