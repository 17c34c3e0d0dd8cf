#!/usr/bin/env bash
# perf_run.sh SCENARIO WARREN_PERF: runs the warren-perf executable against the
# broker at $AMQP_URL for one scenario and checks its --json summary line and
# exit status. Exits non-zero on the first mismatch.
set -euo pipefail

scenario="$1"
perf="$2"
url="${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/}"
work="$(mktemp -d)"
# Queues this run declares that outlive it unless deleted.
cleanup_queues=()

# Debian's python3-pika is importable only from /usr/bin/python3; json is stdlib.
python=python3
[[ -x /usr/bin/python3 ]] && python=/usr/bin/python3

# queue_op OP QUEUE: OP is "count" (prints the message count, or "absent")
# or "delete" (deletes the queue if it exists).
queue_op() {
  "$python" - "$url" "$1" "$2" <<'EOF'
import sys
import pika
url, op, queue = sys.argv[1:4]
conn = pika.BlockingConnection(pika.URLParameters(url))
try:
    ch = conn.channel()
    if op == "count":
        try:
            print(ch.queue_declare(queue, passive=True).method.message_count)
        except pika.exceptions.ChannelClosedByBroker as e:
            if e.reply_code != 404:
                raise
            print("absent")
    elif op == "delete":
        ch.queue_delete(queue)
    else:
        raise SystemExit("unknown queue_op " + op)
finally:
    if conn.is_open:
        conn.close()
EOF
}

on_exit() {
  local q
  for q in "${cleanup_queues[@]}"; do queue_op delete "$q" >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap on_exit EXIT

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# perf NAME ARGS...: runs warren-perf (at most 60 s) against $url, stdout into
# $work/NAME.out and stderr into $work/NAME.err; its exit status into $work/NAME.rc.
# Killed 5 s after the SIGTERM if it ignores it.
perf() {
  local name="$1"
  shift
  perf_at "$name" -h "$url" "$@"
}

# perf_at NAME ARGS...: as perf, with the broker URIs among ARGS.
perf_at() {
  local name="$1"
  shift
  echo "+ warren-perf $*"
  local rc=0
  timeout -k 5 60 "$perf" "$@" >"$work/$name.out" 2>"$work/$name.err" || rc=$?
  echo "$rc" >"$work/$name.rc"
  cat "$work/$name.out"
  cat "$work/$name.err" >&2
  ((rc != 124 && rc != 137)) || fail "warren-perf $* did not end within 60 s"
}

# perf_ok NAME ARGS...: as perf, and it must exit 0 and print a JSON summary.
perf_ok() {
  local name="$1"
  perf "$@"
  summary_of "$@"
}

# perf_at_ok NAME ARGS...: as perf_at, and it must exit 0 and print a JSON summary.
perf_at_ok() {
  local name="$1"
  perf_at "$@"
  summary_of "$@"
}

# summary_of NAME ARGS...: NAME exited 0; its JSON summary into $work/NAME.summary.
summary_of() {
  local name="$1"
  [[ "$(cat "$work/$name.rc")" == 0 ]] || fail "warren-perf ${*:2} exited with $(cat "$work/$name.rc")"
  grep '^{"type":"summary"' "$work/$name.out" | tail -n 1 >"$work/$name.summary" || true
  [[ -s "$work/$name.summary" ]] || fail "warren-perf ${*:2} printed no JSON summary"
}

# field NAME KEY: a key of NAME's summary (arrays as comma-separated values).
field() {
  "$python" -c '
import json, sys
v = json.loads(open(sys.argv[1]).read())[sys.argv[2]]
print(",".join(str(x) for x in v) if isinstance(v, list) else v)
' "$work/$1.summary" "$2" || fail "$1: no '$2' in the summary"
}

# expect NAME KEY VALUE: NAME's summary has KEY equal to VALUE.
expect() {
  local got
  got="$(field "$1" "$2")"
  [[ "$got" == "$3" ]] || fail "$1: $2 is '$got', expected '$3'"
}

# expect_positive NAME KEY: NAME's summary has a number greater than 0 at KEY.
expect_positive() {
  local got
  got="$(field "$1" "$2")"
  "$python" -c 'import sys; sys.exit(0 if float(sys.argv[1]) > 0 else 1)' "$got" ||
    fail "$1: $2 is '$got', expected more than 0"
}

# expect_percentiles NAME KEY: five non-decreasing whole numbers (min, median,
# 75th, 95th, 99th); with "positive", the 99th is above 0.
expect_percentiles() {
  local got
  got="$(field "$1" "$2")"
  "$python" -c '
import sys
p = [int(x) for x in sys.argv[1].split(",")]
ok = len(p) == 5 and p == sorted(p) and (sys.argv[2] != "positive" or p[4] > 0)
sys.exit(0 if ok else 1)
' "$got" "${3:-}" || fail "$1: $2 is [$got], expected five non-decreasing percentiles"
}

# A shared, named queue unique to this run: sent and received must both be
# the whole count, and the run must end by itself.
check_one_to_one() {
  local name="$1"
  expect "$name" type summary
  expect "$name" client warren
  expect "$name" producers 1
  expect "$name" consumers 1
  expect "$name" size 12
  expect "$name" sent 2000
  expect "$name" received 2000
  expect "$name" nacked 0
  expect "$name" stopped_by "done"
  expect_positive "$name" sending_rate
  expect_positive "$name" receiving_rate
  expect_percentiles "$name" consumer_latency_us
}

# rabbitmqctl ARGS... against the broker of $url (sudo when not root).
ctl() {
  if [[ "$(id -u)" == 0 ]]; then
    PATH="$PATH:/usr/sbin:/sbin" timeout 60 rabbitmqctl "$@"
  else
    PATH="$PATH:/usr/sbin:/sbin" sudo -n timeout 60 rabbitmqctl "$@"
  fi
}

# connection_pid NAME: the pid of the broker connection named NAME, waiting
# up to 20 s for it to appear; empty if it never does.
connection_pid() {
  local i
  for ((i = 0; i < 40; i++)); do
    local pid
    pid="$(ctl -q list_connections --no-table-headers pid client_properties 2>/dev/null |
      grep -F "{\"connection_name\",\"$1\"}" | awk '{print $1}' | head -n 1)"
    if [[ -n "$pid" ]]; then
      echo "$pid"
      return
    fi
    sleep 0.5
  done
}

# expect_sum NAME: NAME's sent equals confirmed + nacked + failed.
expect_sum() {
  local sent confirmed nacked failed
  sent="$(field "$1" sent)"
  confirmed="$(field "$1" confirmed)"
  nacked="$(field "$1" nacked)"
  failed="$(field "$1" failed)"
  ((sent == confirmed + nacked + failed)) ||
    fail "$1: sent $sent is not confirmed $confirmed + nacked $nacked + failed $failed"
}

# expect_failure NAME TEXT ARGS...: warren-perf ARGS exits 2 (a bad command line
# or a failed setup) with TEXT in its stderr and no summary.
expect_failure() {
  local name="$1" text="$2"
  shift 2
  perf "$name" "$@"
  local rc
  rc="$(cat "$work/$name.rc")"
  [[ "$rc" == 2 ]] || fail "warren-perf $* exited with $rc, expected 2"
  grep -qF -- "$text" "$work/$name.err" || fail "warren-perf $*: stderr does not mention '$text'"
  if grep -q '"type":"summary"' "$work/$name.out"; then fail "warren-perf $* printed a summary"; fi
}

# no_secret NAME: neither stdout nor stderr of NAME shows $secret.
secret="Pw-Never-Shown-6620"
no_secret() {
  if grep -qF -- "$secret" "$work/$1.out" "$work/$1.err"; then fail "$1 printed a password"; fi
}

queue="warren-test.perf.$$.$scenario"

case "$scenario" in
  shared-queue)
    perf_ok run -u "$queue" -e "" -x 1 -y 1 -C 2000 --auto-delete --json
    check_one_to_one run
    expect run confirmed 0
    expect run confirm_latency_us 0,0,0,0,0
    # --auto-delete: gone with its consumer.
    [[ "$(queue_op count "$queue")" == absent ]] || fail "auto-delete queue $queue still exists"
    ;;
  confirms)
    perf_ok run -u "$queue" -e "" -x 1 -y 1 -C 2000 -c 100 --auto-delete --json
    check_one_to_one run
    expect run confirmed 2000
    expect run nacked 0
    expect_positive run confirm_s
    expect_percentiles run confirm_latency_us positive
    [[ "$(queue_op count "$queue")" == absent ]] || fail "auto-delete queue $queue still exists"
    ;;
  receive-batch)
    perf_ok run -u "$queue" -e "" -x 1 -y 1 -C 2000 --auto-delete --receive-batch 65536:2000 --json
    check_one_to_one run
    [[ "$(queue_op count "$queue")" == absent ]] || fail "auto-delete queue $queue still exists"
    ;;
  drain)
    # Not auto-delete: the messages must outlive the producer's run.
    cleanup_queues+=("$queue")
    queue_op delete "$queue" >/dev/null
    perf_ok produce -x 1 -y 0 -C 3000 -u "$queue" -e "" --taken --json
    expect produce producers 1
    expect produce consumers 0
    expect produce sent 3000
    expect produce received 0
    expect produce stopped_by "done"
    expect_positive produce sending_rate
    expect_positive produce taken_rate
    expect_positive produce taken_s
    [[ "$(queue_op count "$queue")" == 3000 ]] || fail "queue $queue does not hold 3000 messages"

    perf_ok drain -x 0 -y 1 -D 3000 -q 1000 -A 100 -u "$queue" -e "" --receive-batch 16384 --json
    expect drain producers 0
    expect drain consumers 1
    expect drain sent 0
    expect drain received 3000
    expect drain stopped_by "done"
    expect_positive drain receiving_rate
    expect_percentiles drain consumer_latency_us
    # Every message was acknowledged (the last 100 by one multiple ack).
    [[ "$(queue_op count "$queue")" == 0 ]] || fail "queue $queue is not empty after the drain"
    queue_op delete "$queue" >/dev/null
    [[ "$(queue_op count "$queue")" == absent ]] || fail "queue $queue was not deleted"
    ;;
  endpoints)
    # -h given twice and -H lists: a dead endpoint first, then the broker.
    dead="amqp://guest:$secret@127.0.0.1:1/"
    perf_at_ok run -h "$dead" -H "$dead,$url" -u "$queue" -e "" -x 1 -y 1 -C 2000 \
      --auto-delete --json
    check_one_to_one run
    no_secret run
    grep -qF "connected to amqp://" "$work/run.err" || fail "the fallback was not noted"
    grep -qF ":***@" "$work/run.err" || fail "the fallback note shows no redacted URI"
    # Only dead ones: setup fails, naming both.
    perf_at dead -H "$dead,amqp://u:$secret@127.0.0.1:2/" -C 1
    [[ "$(cat "$work/dead.rc")" == 2 ]] || fail "two dead URIs: exit status $(cat "$work/dead.rc")"
    grep -qF "all 2 endpoints failed" "$work/dead.err" || fail "two dead URIs: no summary of both"
    grep -qF "[2] 127.0.0.1:2:" "$work/dead.err" || fail "two dead URIs: the second is not named"
    no_secret dead
    # A URI echoed back from the command line shows no password.
    perf_at stray "amqp://u:$secret@host/"
    no_secret stray
    grep -qF "amqp://u:***@host/" "$work/stray.err" || fail "the stray URI is not shown redacted"
    ;;
  tls)
    # RabbitMQ's TLS listener (scripts/tls, scripts/rabbitmq) and its test CA.
    ca="${WARREN_TLS_DIR:-/tmp/warren-tls}/ca.pem"
    [[ -f "$ca" ]] || { echo "skipped: no $ca (scripts/tls makes it)"; exit 77; }
    perf_at_ok run -h "amqps://guest:guest@localhost:5671/?cacertfile=$ca" -u "$queue" -e "" \
      -x 1 -y 1 -C 2000 -c 100 --auto-delete --json
    check_one_to_one run
    expect run confirmed 2000
    # Without the CA the broker's certificate is refused.
    perf_at untrusted -h "amqps://guest:$secret@localhost:5671/" -C 1
    [[ "$(cat "$work/untrusted.rc")" == 2 ]] || fail "amqps without the CA did not fail"
    grep -qF "certificate" "$work/untrusted.err" || fail "amqps without the CA: no certificate error"
    no_secret untrusted
    ;;
  connection-closed)
    # The producer's connection is closed by the broker mid-run (without
    # --recover): the summary still counts what was published, confirmed,
    # nacked and failed, and warren-perf exits 1.
    cleanup_queues+=("$queue")
    queue_op delete "$queue" >/dev/null
    id="closed-$$"
    echo "+ warren-perf --id $id ... (its producer's connection to be closed)"
    rc=0
    timeout -k 5 60 "$perf" -h "$url" --id "$id" -x 1 -y 0 -c 200 -u "$queue" -e "" \
      -f persistent -z 50 --json >"$work/run.out" 2>"$work/run.err" &
    bg=$!
    pid="$(connection_pid "warren-perf $id producer 0")"
    [[ -n "$pid" ]] || { kill "$bg"; fail "the producer's connection did not show up"; }
    sleep 2
    ctl close_connection "$pid" "perf test" >/dev/null || { kill "$bg"; fail "close_connection failed"; }
    wait "$bg" || rc=$?
    cat "$work/run.out"
    cat "$work/run.err" >&2
    [[ "$rc" == 1 ]] || fail "warren-perf exited with $rc after its connection was closed, expected 1"
    grep '^{"type":"summary"' "$work/run.out" | tail -n 1 >"$work/run.summary" || true
    [[ -s "$work/run.summary" ]] || fail "no JSON summary after the connection was closed"
    expect run stopped_by "connection failed"
    expect_positive run sent
    expect_positive run confirmed
    expect_sum run
    grep -qF "producer failed" "$work/run.err" || fail "stderr does not say the producer failed"
    # Every confirmed message is in the durable queue.
    count="$(queue_op count "$queue")"
    confirmed="$(field run confirmed)"
    ((count >= confirmed)) || fail "the queue holds $count messages, fewer than the $confirmed confirmed"
    # The text summary too.
    perf_bg_text="$work/text.out"
    id="closed-text-$$"
    timeout -k 5 60 "$perf" -h "$url" --id "$id" -x 1 -y 0 -c 200 -u "$queue" -e "" \
      -z 50 >"$perf_bg_text" 2>"$work/text.err" &
    bg=$!
    pid="$(connection_pid "warren-perf $id producer 0")"
    [[ -n "$pid" ]] || { kill "$bg"; fail "the producer's connection did not show up"; }
    sleep 1
    ctl close_connection "$pid" "perf test" >/dev/null || { kill "$bg"; fail "close_connection failed"; }
    rc=0
    wait "$bg" || rc=$?
    cat "$perf_bg_text"
    [[ "$rc" == 1 ]] || fail "warren-perf (text) exited with $rc, expected 1"
    grep -qE "^published: [1-9][0-9]*, confirmed: [0-9]+, nacked: [0-9]+, failed: [0-9]+$" \
      "$perf_bg_text" || fail "the text summary has no published/confirmed/nacked/failed line"
    ;;
  bad-flags)
    expect_failure small-size "-s" -s 5
    expect_failure big-batch "--receive-batch" --receive-batch 99999999
    expect_failure bad-wait "--receive-batch" --receive-batch 16384:0
    expect_failure unknown "unknown argument '--bogus'" --bogus
    expect_failure taken "--taken needs a named queue (-u)" --taken
    expect_failure taken-consumers "add -y 0" --taken -u "$queue" -y 1
    expect_failure no-queue "the default exchange (-e \"\") needs a named queue (-u)" -e "" -C 1
    perf help --help
    [[ "$(cat "$work/help.rc")" == 0 ]] || fail "warren-perf --help exited with $(cat "$work/help.rc")"
    grep -qF -- "--receive-batch BYTES[:US]" "$work/help.out" || fail "--help printed no usage"
    ;;
  *)
    fail "unknown scenario $scenario"
    ;;
esac
echo "PASS: $scenario"
