#!/usr/bin/env bash
# examples.sh SCENARIO DIR: runs the example programs built in DIR for one
# scenario and checks what they print. Exits non-zero on the first mismatch.
set -euo pipefail

scenario="$1"
dir="$2"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# run NAME ARGS...: runs one example (at most 60 s), its stdout into $work/NAME.out.
run() {
  local name="$1"
  shift
  echo "+ $name $*"
  timeout 60 "$dir/$name" "$@" >"$work/$name.out" || fail "$name $* exited with $?"
  cat "$work/$name.out"
}

# expect NAME TEXT: the last output of NAME contains TEXT.
expect() { grep -qF -- "$2" "$work/$1.out" || fail "$1 did not print '$2'"; }

# A clean 'eeg' topology: cleanup deletes it, send declares it again.
fresh_eeg() { run cleanup >/dev/null; }

case "$scenario" in
  send-receive)
    fresh_eeg
    for i in $(seq 1 100); do echo "line $i: persistent message"; done >"$work/input"
    run send --file "$work/input"
    expect send "sent 100 message(s)"
    run receive --count 100 >/dev/null
    diff "$work/input" "$work/receive.out" || fail "receive printed other messages than sent"
    printf 'from\nstdin\n' | run send
    expect send "sent 2 message(s)"
    run receive --count 2
    [[ "$(cat "$work/receive.out")" == $'from\nstdin' ]] || fail "stdin messages differ"
    run get
    [[ ! -s "$work/get.out" ]] || fail "queue 'eeg' was not empty after receive"
    ;;
  get)
    fresh_eeg
    printf 'one\ntwo\nthree\n' | run send
    run get --count 3
    [[ "$(cat "$work/get.out")" == $'one\ntwo\nthree' ]] || fail "get printed other messages"
    run get --wait 1
    [[ ! -s "$work/get.out" ]] || fail "get found messages in an empty queue"
    if timeout 60 "$dir/get" --count 1 >/dev/null; then fail "get --count 1 on an empty queue succeeded"; fi
    ;;
  transactions)
    run transactions
    expect transactions "commit:   3 published, queue 'eeg.tx' holds 3"
    expect transactions "rollback: 2 published, queue 'eeg.tx' holds 3"
    expect transactions "OK"
    ;;
  confirms)
    run confirms --messages 2000 --window 50
    expect confirms "per message: #1 acked"
    expect confirms "per message: #4 returned (312 NO_ROUTE)"
    expect confirms "2000 acked, 0 nacked"
    expect confirms "queue holds 2003 messages"
    expect confirms "OK"
    ;;
  exchange-bind)
    run exchange_bind
    expect exchange_bind "queue eeg.e2e.1 holds 1 message(s)"
    expect exchange_bind "queue eeg.e2e.2 holds 2 message(s)"
    expect exchange_bind "queue eeg.e2e.3 holds 1 message(s)"
    expect exchange_bind "refused: 403 ACCESS_REFUSED"
    expect exchange_bind "channel open after the error: no"
    expect exchange_bind "OK"
    ;;
  cleanup)
    fresh_eeg
    printf 'a\nb\nc\n' | run send
    run cleanup
    expect cleanup "purged 3 message(s) from queue 'eeg'"
    expect cleanup "cancelled consumer amq.ctag-"
    expect cleanup "unbound queue 'eeg' from exchange 'eeg'"
    expect cleanup "deleted queue 'eeg' with 0 message(s)"
    expect cleanup "deleted exchange 'eeg'"
    ;;
  demo)
    run demo --messages 3000 --window 300 --prefetch 100 --ack-every 25
    expect demo "sent       3000"
    expect demo "confirmed  3000 acked, 0 nacked"
    expect demo "received   3000 (0 missing, 0 duplicate, 0 foreign"
    expect demo "acked      3000"
    expect demo "OK"
    run demo --messages 500 --ack-every 1
    expect demo "OK"
    ;;
  tls)
    # The same programs over amqps, the URI on the command line: RabbitMQ's
    # TLS listener (scripts/tls, scripts/rabbitmq) and its test CA.
    ca="${WARREN_TLS_DIR:-/tmp/warren-tls}/ca.pem"
    [[ -f "$ca" ]] || { echo "skipped: no $ca (scripts/tls makes it)"; exit 77; }
    uri="amqps://guest:guest@localhost:5671/?cacertfile=$ca"
    run cleanup "$uri" >/dev/null
    printf 'over\nTLS\n' | run send "$uri"
    expect send "sent 2 message(s)"
    run receive --count 2 "$uri"
    [[ "$(cat "$work/receive.out")" == $'over\nTLS' ]] || fail "receive over TLS printed other messages"
    run demo --messages 2000 --window 200 --prefetch 100 --ack-every 25 "$uri"
    expect demo "on amqps://guest:***@localhost:5671/"
    expect demo "received   2000 (0 missing, 0 duplicate, 0 foreign"
    expect demo "OK"
    if grep -qF "guest:guest" "$work/demo.out"; then fail "demo printed the password"; fi
    # Without the CA the broker's certificate is refused: exit status 1 and a
    # certificate error on stderr.
    if timeout 60 "$dir/get" "amqps://guest:guest@localhost:5671/" >/dev/null 2>"$work/untrusted.err"; then
      fail "get over amqps without the CA succeeded"
    fi
    cat "$work/untrusted.err"
    grep -qF "certificate" "$work/untrusted.err" || fail "no certificate error without the CA"
    run cleanup "$uri" >/dev/null
    ;;
  hello)
    # The README's opening examples: one message each way.
    run hello
    [[ "$(cat "$work/hello.out")" == $'hello\nhello' ]] || fail "hello printed other than two hellos"
    ;;
  blocking)
    # The pika guide's SenderClient and ReceiverClient on the blocking API.
    run blocking_receiver --cleanup >/dev/null
    for i in $(seq 1 50); do echo "blocking line $i"; done >"$work/input"
    run blocking_sender --file "$work/input"
    expect blocking_sender "sent 50 persistent message(s) to exchange 'eeg' with routing key 'eeg'"
    run blocking_receiver --count 50 >/dev/null
    diff "$work/input" "$work/blocking_receiver.out" || fail "blocking_receiver printed other messages"
    # Credentials and parameters given one by one; confirm mode.
    printf 'one\ntwo\nthree\n' | run blocking_sender --confirm --host 127.0.0.1 --port 5672 \
      --user guest --password guest --vhost /
    expect blocking_sender "confirm mode: 3 acked, 0 nacked"
    expect blocking_sender "unroutable mandatory publish: returned (312 NO_ROUTE)"
    run blocking_receiver --get
    [[ "$(cat "$work/blocking_receiver.out")" == $'one\ntwo\nthree' ]] || fail "basic_get printed other messages"
    run blocking_sender --transaction
    expect blocking_sender "commit:   3 published, queue 'eeg.blocking-tx' holds 3"
    expect blocking_sender "rollback: 2 published, queue 'eeg.blocking-tx' holds 3"
    expect blocking_sender "OK"
    run blocking_sender --exchange-bind
    expect blocking_sender "queue 'eeg.test1' holds 1 message(s)"
    expect blocking_sender "queue 'eeg.test2' holds 2 message(s)"
    expect blocking_sender "after exchange_unbind: 'eeg.test1' holds 2, 'eeg.test2' holds 2"
    expect blocking_sender "OK"
    printf 'x\ny\n' | run blocking_sender >/dev/null
    run blocking_receiver --cleanup
    expect blocking_receiver "purged 2 message(s) from queue 'eeg'"
    expect blocking_receiver "cancelled consumer amq.ctag-"
    expect blocking_receiver "unbound queue 'eeg' from exchange 'eeg'"
    expect blocking_receiver "deleted queue 'eeg' with 0 message(s)"
    expect blocking_receiver "deleted exchange 'eeg'"
    # A wrong password: exit status 1, the broker's refusal, never the password.
    if timeout 60 "$dir/blocking_sender" --password not-the-password </dev/null 2>"$work/refused.err"; then
      fail "blocking_sender with a wrong password succeeded"
    fi
    grep -qF "ACCESS_REFUSED" "$work/refused.err" || fail "no ACCESS_REFUSED for a wrong password"
    if grep -qF "not-the-password" "$work/refused.err"; then fail "the password was printed"; fi
    ;;
  *)
    fail "unknown scenario $scenario"
    ;;
esac
echo "PASS: $scenario"
