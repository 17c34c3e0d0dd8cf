#!/usr/bin/python3
"""Throughput matrix of scripts/bench: warren, rabbitmq-c and pika (and the
blaster that defines the ceilings), against RabbitMQ and against the null
broker, 64 B and 4 KiB bodies, in one run.

The broker "tls" is the same RabbitMQ over amqps (--tls-uri: its TLS listener,
the certificate verified): warren-perf and the rabbitmq-c peer (its own
amqp_ssl_socket) publish, publish with confirms (window 1000) and consume, so
the cost of TLS in each client is measured the same way as the plain rows.

Each cell (broker, size, workload, client) first runs once to calibrate its
message count (a run of about --target seconds), then --rounds times; within a
round the clients of a cell run back to back, in an order that rotates from
round to round, so slow phases of a noisy machine hit every client alike.
Rates and CPU are medians over the rounds; ratios are computed per round
(runs next to each other in time) and their median reported.

Publish rates are timed until the broker has taken every message (a passive
queue.declare counts them), and the "sent" rate until the client handed the
last one over. CPU is the client process's user + system time (getrusage)
over the timed part, per message.

Writes results.csv, chart.svg, table.txt and runs.jsonl to --out.
"""

import argparse
import csv
import json
import math
import os
import socket
import statistics
import subprocess
import sys
import time

import pika

WORKLOADS = [
    # name, label
    ("publish", "publish, no confirms"),
    ("confirm-1", "confirms, synchronous per message"),
    ("confirm-1000", "confirms, window 1000"),
    ("consume", "consume, prefetch 1000, multi-ack 100"),
]
# warren-batch: warren-perf with receive batching on the consumer's connection
# (--receive-batch 16384, at most 1 ms of added latency); consume only.
CLIENTS = ["warren", "warren-batch", "rabbitmq-c", "pika", "blaster"]
# warren-before: the warren-perf of another build (--before PATH), run like
# warren, for before/after rows from one run. Only when named in --clients.
WARREN = ["warren", "warren-batch", "warren-before"]
PEERS = ["rabbitmq-c", "pika"]
QUEUE = "warren-bench"

# First guesses of msg/s, only to size the calibration runs.
GUESS = {
    ("rabbitmq", "publish"): 40000, ("rabbitmq", "confirm-1"): 3000,
    ("rabbitmq", "confirm-1000"): 25000, ("rabbitmq", "consume"): 50000,
    ("null", "publish"): 1000000, ("null", "confirm-1"): 20000,
    ("null", "confirm-1000"): 500000, ("null", "consume"): 1000000,
    ("tls", "publish"): 30000, ("tls", "confirm-1"): 2500,
    ("tls", "confirm-1000"): 20000, ("tls", "consume"): 40000,
}
# What runs against the TLS listener: the clients that speak amqps (the
# blaster and the null broker do not; pika is left out to keep the run short)
# and the
# workloads that move many messages.
TLS_CLIENTS = ["warren", "warren-batch", "warren-before", "rabbitmq-c"]
TLS_WORKLOADS = ["publish", "confirm-1000", "consume"]
PIKA_GUESS = {"publish": 15000, "confirm-1": 2000, "confirm-1000": 20000, "consume": 8000}


def log(*a):
    print(*a, file=sys.stderr, flush=True)


class Env:
    def __init__(self, args):
        self.args = args
        b = args.build
        self.warren_perf = os.path.join(b, "warren-perf")
        self.blaster = os.path.join(b, "bench", "blaster")
        self.rmqc = os.path.join(b, "bench", "rabbitmq-c-perf")
        self.null_broker = os.path.join(b, "bench", "null-broker")
        self.pika = os.path.join(args.root, "bench", "peers", "pika_perf.py")
        self.null_procs = {}
        self.null_ports = {}
        self.runs = []

    def start_null_brokers(self, sizes):
        for size in sizes:
            p = subprocess.Popen([self.null_broker, "--port", "0", "--size", str(size)],
                                 stdout=subprocess.PIPE, text=True)
            line = p.stdout.readline().strip()
            if "listening on" not in line:
                raise SystemExit("null-broker did not start: " + line)
            self.null_procs[size] = p
            self.null_ports[size] = int(line.rsplit(":", 1)[1])

    def stop_null_brokers(self):
        for p in self.null_procs.values():
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()

    def uri(self, broker, size):
        if broker == "rabbitmq":
            return self.args.uri
        if broker == "tls":
            return self.args.tls_uri
        return "amqp://guest:guest@127.0.0.1:%d/%%2F" % self.null_ports[size]


def rabbit_params(uri):
    return pika.URLParameters(uri)


def purge(env):
    conn = pika.BlockingConnection(rabbit_params(env.args.uri))
    ch = conn.channel()
    ch.queue_declare(QUEUE)
    ch.queue_purge(QUEUE)
    conn.close()


def queue_count(env):
    conn = pika.BlockingConnection(rabbit_params(env.args.uri))
    ch = conn.channel()
    n = ch.queue_declare(QUEUE, passive=True).method.message_count
    conn.close()
    return n


def command(env, broker, size, workload, client, count):
    uri = env.uri(broker, size)
    if client in WARREN:
        perf = env.args.before if client == "warren-before" else env.warren_perf
        c = [perf, "-h", uri, "-s", str(size), "-u", QUEUE, "-e", "", "--json"]
        if client == "warren-batch":
            c += ["--receive-batch", "16384"]
        if workload == "consume":
            c += ["-x", "0", "-y", "1", "-q", "1000", "-A", "100", "-D", str(count)]
        else:
            c += ["-x", "1", "-y", "0", "-C", str(count), "--taken"]
            if workload.startswith("confirm-"):
                c += ["-c", workload.split("-")[1]]
        return c
    if client == "blaster":
        c = [env.blaster, "--uri", uri, "--queue", QUEUE, "--size", str(size), "--count",
             str(count), "--json"]
        if workload.startswith("confirm-"):
            c += ["--confirm", workload.split("-")[1]]
        if workload == "consume":
            c += ["--consume", "--prefetch", "1000", "--multi-ack", "100"]
        return c
    prog = [env.rmqc] if client == "rabbitmq-c" else ["/usr/bin/python3", env.pika]
    mode = "consume" if workload == "consume" else (
        "confirm" if workload.startswith("confirm-") else "publish")
    c = prog + ["--uri", uri, "--mode", mode, "--queue", QUEUE, "--size", str(size), "--count",
                str(count), "--prefetch", "1000", "--multi-ack", "100"]
    if mode == "confirm":
        c += ["--window", workload.split("-")[1]]
    return c


def applies(broker, workload, client):
    if broker == "tls" and (client not in TLS_CLIENTS or workload not in TLS_WORKLOADS):
        return False
    if client == "warren-batch":
        return workload == "consume"
    return True


def run_one(env, broker, size, workload, client, count, rnd):
    # The queue is set up over the plain listener: same broker, same queue.
    if broker in ("rabbitmq", "tls"):
        purge(env)
        if workload == "consume":
            prefill = [env.blaster, "--uri", env.args.uri, "--queue", QUEUE, "--size", str(size),
                       "--count", str(count), "--json"]
            subprocess.run(prefill, check=True, stdout=subprocess.DEVNULL, timeout=600)
    cmd = command(env, broker, size, workload, client, count)
    guess = GUESS[(broker, workload)] if client != "pika" else PIKA_GUESS[workload]
    timeout = max(60, 20 * count / guess)
    t = time.monotonic()
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        log("  timeout: " + " ".join(map(redact, cmd)))
        return None
    lines = [l for l in out.stdout.splitlines() if l.startswith("{")]
    if out.returncode != 0 or not lines:
        log("  failed (%d): %s\n%s" % (out.returncode, " ".join(map(redact, cmd)),
                                       out.stderr.strip()[-2000:]))
        return None
    j = json.loads(lines[-1])
    if workload == "consume":
        n = j.get("received", 0)
        secs = j.get("receive_s", j.get("taken_s"))
        sent_rate = taken_rate = n / secs if secs else float("nan")
    else:
        n = j.get("sent", count)
        sent_rate = n / j["send_s"] if j["send_s"] else float("nan")
        taken_rate = n / j["taken_s"] if j["taken_s"] else float("nan")
    r = dict(broker=broker, size=size, workload=workload, client=client, round=rnd, count=n,
             sent_rate=sent_rate, taken_rate=taken_rate,
             cpu_us=j["cpu_s"] * 1e6 / n if n else float("nan"),
             user_us=j.get("user_s", float("nan")) * 1e6 / n if n else float("nan"),
             sys_us=j.get("sys_s", float("nan")) * 1e6 / n if n else float("nan"),
             wall_s=time.monotonic() - t, raw=j)
    env.runs.append(r)
    return r


def redact(uri):
    """The URI with its password as ***, as warren prints it."""
    scheme, sep, rest = uri.partition("://")
    authority = rest.split("/", 1)[0].split("?", 1)[0]
    user, at, host = authority.rpartition("@")
    if not sep or not at or ":" not in user:
        return uri
    return scheme + sep + user.split(":", 1)[0] + ":***@" + rest[len(authority) - len(host):]


def median(xs):
    xs = [x for x in xs if x is not None and not math.isnan(x)]
    return statistics.median(xs) if xs else float("nan")


def fmt_rate(x):
    if math.isnan(x):
        return "-"
    return "%.0f" % x


def fmt(x, digits=2):
    return "-" if x is None or math.isnan(x) else ("%.*f" % (digits, x))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--uri", default="amqp://guest:guest@127.0.0.1:5672/")
    ap.add_argument("--tls-uri", default="",
                    help="the same broker over amqps, for the tls rows (none: no tls rows)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--target", type=float, default=1.0, help="seconds per run")
    ap.add_argument("--sizes", default="64,4096")
    ap.add_argument("--brokers", default="rabbitmq,tls,null")
    ap.add_argument("--clients", default=",".join(CLIENTS))
    ap.add_argument("--before", default="",
                    help="another build's warren-perf, the client warren-before")
    ap.add_argument("--workloads", default=",".join(w for w, _ in WORKLOADS))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    sizes = [int(s) for s in args.sizes.split(",")]
    brokers = args.brokers.split(",")
    if "tls" in brokers and not args.tls_uri:
        log("no --tls-uri: no tls rows")
        brokers.remove("tls")
    clients = args.clients.split(",")
    if "warren-before" in clients and not os.access(args.before, os.X_OK):
        raise SystemExit("the client warren-before needs --before PATH (a warren-perf)")
    workloads = [w for w, _ in WORKLOADS if w in args.workloads.split(",")]

    env = Env(args)
    env.start_null_brokers(sizes)
    cells = [(b, s, w) for b in brokers for s in sizes for w in workloads
             if b != "tls" or w in TLS_WORKLOADS]
    counts = {}
    started = time.monotonic()
    try:
        # Calibration: about a third of the target time at the guessed rate.
        log("calibrating message counts")
        for (b, s, w) in cells:
            for c in clients:
                if not applies(b, w, c):
                    continue
                guess = GUESS[(b, w)] if c != "pika" else PIKA_GUESS[w]
                if s >= 4096:
                    guess = guess / 2
                n = max(200, int(guess * args.target / 3))
                r = run_one(env, b, s, w, c, n, 0)
                rate = r["taken_rate"] if r else guess
                counts[(b, s, w, c)] = max(500, min(int(rate * args.target), 5_000_000))
        for rnd in range(1, args.rounds + 1):
            log("round %d of %d (%.0f s so far)" % (rnd, args.rounds, time.monotonic() - started))
            for i, (b, s, w) in enumerate(cells):
                order = [c for c in clients if applies(b, w, c)]
                if not order:
                    continue
                k = (rnd + i) % len(order)
                for c in order[k:] + order[:k]:
                    r = run_one(env, b, s, w, c, counts[(b, s, w, c)], rnd)
                    if r:
                        log("  %-8s %5d B %-12s %-10s taken %10.0f msg/s  cpu %7.2f us/msg" %
                            (b, s, w, c, r["taken_rate"], r["cpu_us"]))
    finally:
        env.stop_null_brokers()

    with open(os.path.join(args.out, "runs.jsonl"), "w") as f:
        for r in env.runs:
            f.write(json.dumps(r) + "\n")

    # Per cell: medians over the measured rounds.
    measured = [r for r in env.runs if r["round"] > 0]
    rows = []
    for (b, s, w) in cells:
        for c in clients:
            rs = [r for r in measured if (r["broker"], r["size"], r["workload"], r["client"]) ==
                  (b, s, w, c)]
            if not rs:
                continue
            rows.append(dict(broker=b, size=s, workload=w, client=c, runs=len(rs),
                             sent_rate=median([r["sent_rate"] for r in rs]),
                             taken_rate=median([r["taken_rate"] for r in rs]),
                             cpu_us=median([r["cpu_us"] for r in rs]),
                             user_us=median([r["user_us"] for r in rs]),
                             sys_us=median([r["sys_us"] for r in rs])))

    def per_round_ratio(b, s, w, num, den, key, best_of=None):
        """Median over rounds of num/den (den may be the best of several)."""
        ratios = []
        for rnd in range(1, args.rounds + 1):
            def get(c):
                for r in measured:
                    if (r["broker"], r["size"], r["workload"], r["client"], r["round"]) == \
                            (b, s, w, c, rnd):
                        return r[key]
                return None
            a = get(num)
            if best_of:
                vals = [get(c) for c in best_of]
                vals = [v for v in vals if v is not None and not math.isnan(v)]
                if not vals:
                    continue
                d = max(vals) if key.endswith("rate") else min(vals)
            else:
                d = get(den)
            if a is None or d is None or d == 0 or math.isnan(a) or math.isnan(d):
                continue
            ratios.append(a / d)
        return median(ratios)

    for row in rows:
        # warren's rows against the peers; a peer's against the others and warren.
        others = [c for c in PEERS + (["warren"] if row["client"] in PEERS else [])
                  if c != row["client"] and c in clients]
        if row["client"] == "blaster":
            row["rate_vs_best_peer"] = row["cpu_vs_best_peer"] = float("nan")
            continue
        row["rate_vs_best_peer"] = per_round_ratio(row["broker"], row["size"], row["workload"],
                                                   row["client"], None, "taken_rate", others)
        row["cpu_vs_best_peer"] = per_round_ratio(row["broker"], row["size"], row["workload"],
                                                  row["client"], None, "cpu_us", others)

    fields = ["broker", "size", "workload", "client", "runs", "sent_rate", "taken_rate", "cpu_us",
              "user_us", "sys_us", "rate_vs_best_peer", "cpu_vs_best_peer"]
    with open(os.path.join(args.out, "results.csv"), "w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=fields)
        wr.writeheader()
        for row in rows:
            wr.writerow({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()})

    lines = []
    hdr = "%-8s %5s %-13s %-12s %11s %11s %9s %8s %8s %8s %8s" % (
        "broker", "size", "workload", "client", "sent/s", "taken/s", "cpu us/m", "user", "sys",
        "rate/bp", "cpu/bp")
    lines.append(hdr)
    lines.append("-" * len(hdr))
    last = None
    for row in rows:
        key = (row["broker"], row["size"], row["workload"])
        if last is not None and key != last:
            lines.append("")
        last = key
        lines.append("%-8s %5d %-13s %-12s %11s %11s %9s %8s %8s %8s %8s" % (
            row["broker"], row["size"], row["workload"], row["client"], fmt_rate(row["sent_rate"]),
            fmt_rate(row["taken_rate"]), fmt(row["cpu_us"]), fmt(row["user_us"]),
            fmt(row["sys_us"]), fmt(row["rate_vs_best_peer"]), fmt(row["cpu_vs_best_peer"])))
    lines.append("")
    lines.append("taken/s: until the broker holds every message (consume: received); cpu us/m:")
    lines.append("client user+sys CPU per message; rate/bp, cpu/bp: median per-round ratio to the")
    lines.append("best other client (highest rate, lowest CPU). Medians over %d rounds." %
                 args.rounds)
    lines.append("user, sys: most kernels split the exact total (cpu us/m) between the two by")
    lines.append("sampling at each timer tick, so the split is rough for runs this short.")
    if "tls" in brokers:
        lines.append("broker tls: the same RabbitMQ over amqps, its certificate and host name")
        lines.append("verified by both clients: " + redact(args.tls_uri))

    # The targets (64-byte messages, one producer): label, broker, workload,
    # the warren client measured, the client it is divided by, the measure,
    # and the bound.
    targets = [
        ("null broker: warren publish / blaster (taken rate)",
         "null", "publish", "warren", "blaster", "taken_rate", ">=", 0.5),
        ("RabbitMQ publish: warren / blaster ceiling (taken rate)",
         "rabbitmq", "publish", "warren", "blaster", "taken_rate", ">=", 0.95),
        ("RabbitMQ publish: warren CPU/msg / rabbitmq-c's",
         "rabbitmq", "publish", "warren", "rabbitmq-c", "cpu_us", "<=", 0.5),
        ("RabbitMQ confirms 1000: warren / blaster ceiling (taken rate)",
         "rabbitmq", "confirm-1000", "warren", "blaster", "taken_rate", ">=", 0.95),
        ("RabbitMQ confirms 1000: warren CPU/msg / rabbitmq-c's",
         "rabbitmq", "confirm-1000", "warren", "rabbitmq-c", "cpu_us", "<=", 0.5),
        ("RabbitMQ consume: warren rate / rabbitmq-c's",
         "rabbitmq", "consume", "warren", "rabbitmq-c", "taken_rate", ">=", 1.0),
        ("RabbitMQ consume: warren CPU/msg / rabbitmq-c's",
         "rabbitmq", "consume", "warren", "rabbitmq-c", "cpu_us", "<=", 0.5),
        ("RabbitMQ consume: blaster floor CPU/msg / rabbitmq-c's",
         "rabbitmq", "consume", "blaster", "rabbitmq-c", "cpu_us", "<=", 0.5),
        ("RabbitMQ consume, receive batching: rate / rabbitmq-c's",
         "rabbitmq", "consume", "warren-batch", "rabbitmq-c", "taken_rate", ">=", 1.0),
        ("RabbitMQ consume, receive batching: CPU/msg / rabbitmq-c's",
         "rabbitmq", "consume", "warren-batch", "rabbitmq-c", "cpu_us", "<=", 0.5),
        ("RabbitMQ synchronous confirms: warren rate / rabbitmq-c's",
         "rabbitmq", "confirm-1", "warren", "rabbitmq-c", "taken_rate", ">=", 1.0),
        ("RabbitMQ synchronous confirms: warren / blaster ceiling (rate)",
         "rabbitmq", "confirm-1", "warren", "blaster", "taken_rate", ">=", 0.95),
        ("RabbitMQ synchronous confirms: rabbitmq-c / blaster ceiling (rate)",
         "rabbitmq", "confirm-1", "rabbitmq-c", "blaster", "taken_rate", ">=", 0.95),
    ]
    targets = [t for t in targets if t[1] in brokers and t[2] in workloads and
               t[3] in clients and t[4] in clients]
    if 64 in sizes and targets:
        lines.append("")
        lines.append("targets (64-byte messages, ratios per round, median):")
        for label, broker, workload, client, other, measure, op, bound in targets:
            value = per_round_ratio(broker, 64, workload, client, other, measure)
            ok = (value >= bound) if op == ">=" else (value <= bound)
            verdict = "-" if math.isnan(value) else ("met" if ok else "MISSED")
            lines.append("  %-62s %6s  (%s %.2f) %s" % (label, fmt(value), op, bound, verdict))
    if "tls" in brokers and "rabbitmq-c" in clients:
        lines.append("")
        lines.append("TLS: warren / rabbitmq-c over amqps (ratios per round, median), and what")
        lines.append("TLS adds to each client's CPU per message (tls / plain RabbitMQ, medians):")
        def cpu_of(b, s, w, c):
            for row in rows:
                if (row["broker"], row["size"], row["workload"], row["client"]) == (b, s, w, c):
                    return row["cpu_us"]
            return float("nan")
        for size in sizes:
            for w in (w for w in TLS_WORKLOADS if w in workloads):
                for c in (c for c in ("warren", "warren-batch") if c in clients):
                    if not applies("tls", w, c):
                        continue
                    rate = per_round_ratio("tls", size, w, c, "rabbitmq-c", "taken_rate")
                    cpu = per_round_ratio("tls", size, w, c, "rabbitmq-c", "cpu_us")
                    line = "  %5d B %-13s %-12s rate %5s  cpu/msg %5s" % (size, w, c, fmt(rate),
                                                                           fmt(cpu))
                    if "rabbitmq" in brokers:
                        line += "   TLS cpu: " + ", ".join(
                            "%s x%s" % (name, fmt(cpu_of("tls", size, w, name) /
                                                  cpu_of("rabbitmq", size, w, name)))
                            for name in (c, "rabbitmq-c"))
                    lines.append(line)
    lines.append("")
    lines.append("matrix took %.0f s" % (time.monotonic() - started))
    text = "\n".join(lines)
    with open(os.path.join(args.out, "table.txt"), "w") as f:
        f.write(text + "\n")
    print(text)
    write_svg(os.path.join(args.out, "chart.svg"), rows, brokers, sizes, workloads, clients)


COLORS = {"warren": "#2b6cb0", "warren-batch": "#63b3ed", "rabbitmq-c": "#dd6b20", "pika": "#38a169", "blaster": "#718096"}


def write_svg(path, rows, brokers, sizes, workloads, clients):
    """Two panels of horizontal bars on log scales: taken rate and CPU per message."""
    groups = [(b, s, w) for b in brokers for s in sizes for w in workloads]
    bar_h, gap, label_w, panel_w, top = 11, 10, 250, 380, 60
    per_group = [[r for r in rows if (r["broker"], r["size"], r["workload"]) == g] for g in groups]
    height = top + sum(len(g) * bar_h + gap for g in per_group) + 40
    width = label_w + 2 * panel_w + 80

    def log_x(v, lo, hi):
        if not v or math.isnan(v) or v <= 0:
            return 0
        return panel_w * (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))

    rates = [r["taken_rate"] for r in rows if r["taken_rate"] == r["taken_rate"] and r["taken_rate"] > 0]
    cpus = [r["cpu_us"] for r in rows if r["cpu_us"] == r["cpu_us"] and r["cpu_us"] > 0]
    rlo, rhi = 10 ** math.floor(math.log10(min(rates or [1]))), 10 ** math.ceil(math.log10(max(rates or [10])))
    clo, chi = 10 ** math.floor(math.log10(min(cpus or [0.1]))), 10 ** math.ceil(math.log10(max(cpus or [1])))
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
           'font-family="sans-serif" font-size="10">' % (width, height),
           '<rect width="100%" height="100%" fill="white"/>',
           '<text x="10" y="18" font-size="14">warren throughput matrix</text>']
    x_rate, x_cpu = label_w, label_w + panel_w + 60
    out.append('<text x="%d" y="40" font-size="11">messages/s taken (log scale)</text>' % x_rate)
    out.append('<text x="%d" y="40" font-size="11">client CPU &#181;s/message, user+sys (log scale)</text>' % x_cpu)
    for x0, lo, hi in ((x_rate, rlo, rhi), (x_cpu, clo, chi)):
        d = lo
        while d <= hi * 1.0001:
            x = x0 + log_x(d, lo, hi)
            out.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>' %
                       (x, top - 8, x, height - 30))
            out.append('<text x="%.1f" y="%d" text-anchor="middle" fill="#555">%g</text>' %
                       (x, height - 18, d))
            d *= 10
    y = top
    for g, grp in zip(groups, per_group):
        if not grp:
            continue
        out.append('<text x="%d" y="%d" font-weight="bold">%s, %d B, %s</text>' %
                   (5, y + 9, g[0], g[1], g[2]))
        for r in grp:
            col = COLORS.get(r["client"], "#999")
            out.append('<text x="%d" y="%d" text-anchor="end" fill="#333">%s</text>' %
                       (label_w - 6, y + 9, r["client"]))
            w = log_x(r["taken_rate"], rlo, rhi)
            out.append('<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>' %
                       (x_rate, y, w, bar_h - 2, col))
            out.append('<text x="%.1f" y="%d" fill="#333">%s</text>' %
                       (x_rate + w + 3, y + 8, fmt_rate(r["taken_rate"])))
            w = log_x(r["cpu_us"], clo, chi)
            out.append('<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>' %
                       (x_cpu, y, w, bar_h - 2, col))
            out.append('<text x="%.1f" y="%d" fill="#333">%s</text>' %
                       (x_cpu + w + 3, y + 8, fmt(r["cpu_us"])))
            y += bar_h
        y += gap
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
