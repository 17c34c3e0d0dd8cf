#!/usr/bin/env bash
# Instructions per message (callgrind Ir) of warren-perf and of the rabbitmq-c peer,
# against the RabbitMQ at $AMQP_URL, 64-byte bodies.
#
#   bench/callgrind.sh BUILD_DIR [WORKLOAD...]
#
# WORKLOADs (default: all): publish, confirm-1000, confirm-1, consume-ack50, consume-ack1.
# Each is run under valgrind --tool=callgrind for 10k and for 30k messages;
# Ir/msg = (Ir(30k) - Ir(10k)) / 20k, so start-up and shutdown cancel out. Whole-program
# Ir, all threads; warren-perf's latency percentile selection (an nth_element whose cost
# depends on the values) is left out with --toggle-collect, and its interval reports are
# off (-i 100000).
#   publish        warren-perf -x 1 -y 0 -C N               rabbitmq-c-perf --mode publish
#   confirm-1000   warren-perf -x 1 -y 0 -C N -c 1000       --mode confirm --window 1000
#   confirm-1      warren-perf -x 1 -y 0 -C N -c 1          --mode confirm --window 1
#   consume-ack50  warren-perf -x 0 -y 1 -D N -q 1000 -A 50 --mode consume --multi-ack 50
#   consume-ack1   warren-perf -x 0 -y 1 -D N -q 1000       --mode consume --multi-ack 1
# Consume queues are filled first by BUILD_DIR/bench/blaster. Every run uses a fresh
# queue, whose message count is checked afterwards (N after a publish, 0 after a
# consume) before it is deleted.
#
# Two more clients give the floor under a client for the confirm workloads (they run in
# those only; their publish and consume columns read "-"): blocking-floor is
# BUILD_DIR/bench/blaster (the handshake, then prepared publish frames written with
# send() and acks read with recv(), one message per batch), asio-floor the same with
# --asio (one C++20 coroutine on Asio: write_some on the non-blocking socket, as warren
# does, and async_read_some). Name them in CG_CLIENTS, e.g.
# CG_CLIENTS="warren rabbitmq-c asio-floor blocking-floor".
#
# stdout: one line per workload, "workload warren-Ir/msg rabbitmq-c-Ir/msg ratio", then
# one column per floor client named.
# Details on stderr; callgrind files and logs stay in $CG_OUT (default: a new
# /tmp/warren-cg.XXXXXX). Confirm workloads are timing-dependent (how many publishes
# one basic.ack covers): their figure is the median of CG_REPEAT_CONFIRM (default 5)
# measurements; the others repeat to within a few percent and run once (CG_REPEAT).
# Env: AMQP_URL, CG_CLIENTS (default "warren rabbitmq-c"), CG_SMALL, CG_LARGE.
set -euo pipefail

if (($# < 1)) || [[ $1 == -h || $1 == --help ]]; then
  sed -n '2,36p' "$0" | sed 's/^# \{0,1\}//'
  exit $(($# < 1 ? 2 : 0))
fi
build=$(realpath "$1")
shift
perf=$build/warren-perf
peer=$build/bench/rabbitmq-c-perf
blaster=$build/bench/blaster
read -r -a clients <<<"${CG_CLIENTS:-warren rabbitmq-c}"
for f in "$blaster" "$perf" "$peer"; do
  [[ -x $f ]] || { echo "callgrind.sh: $f missing (build it first)" >&2; exit 2; }
done
command -v valgrind >/dev/null || { echo "callgrind.sh: valgrind missing" >&2; exit 2; }
workloads=("$@")
((${#workloads[@]})) || workloads=(publish confirm-1000 confirm-1 consume-ack50 consume-ack1)
uri=${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/}
small=${CG_SMALL:-10000}
large=${CG_LARGE:-30000}
repeat=${CG_REPEAT:-1}
repeat_confirm=${CG_REPEAT_CONFIRM:-5}
out=${CG_OUT:-$(mktemp -d /tmp/warren-cg.XXXXXX)}
mkdir -p "$out"
id=$(date +%s)-$$
python=python3
[[ -x /usr/bin/python3 ]] && python=/usr/bin/python3  # python3-pika lives there

# queue_op URI QUEUE EXPECTED: waits (up to 10 s) for the queue to hold EXPECTED
# messages and deletes it; fails if the count never matched. EXPECTED -1: delete only.
queue_op() {
  "$python" - "$uri" "$1" "$2" <<'PY'
import sys, time, pika
uri, q, want = sys.argv[1], sys.argv[2], int(sys.argv[3])
c = pika.BlockingConnection(pika.URLParameters(uri))
ch = c.channel()
n = want
if want >= 0:
    deadline = time.monotonic() + 10
    while True:
        n = ch.queue_declare(q, passive=True).method.message_count
        if n == want or time.monotonic() > deadline:
            break
        time.sleep(0.05)
ch.queue_delete(q)
c.close()
if n != want:
    sys.exit("callgrind.sh: queue %s held %d messages, expected %d" % (q, n, want))
PY
}

pending=""
trap '[[ -z $pending ]] || queue_op "$pending" -1 2>/dev/null || true' EXIT

# measure CLIENT WORKLOAD N TAG: one run under callgrind; sets $result to its total Ir.
measure() {
  local client=$1 w=$2 n=$3 tag=$4 q="warren-cg-$id-$1-$4-$3" expect=$3 cmd
  case $w in
    consume-*) expect=0 ;;
    publish | confirm-*) ;;
    *) echo "callgrind.sh: unknown workload $w" >&2; exit 2 ;;
  esac
  if [[ $client == *-floor ]]; then
    [[ $w == confirm-* ]] || { result=""; return; }
    cmd=("$blaster" --uri "$uri" --queue "$q" --size 64 --count "$n" --batch 1 --confirm "${w#confirm-}")
    [[ $client == asio-floor ]] && cmd+=(--asio)
  elif [[ $client == warren ]]; then
    cmd=("$perf" -h "$uri" -s 64 -u "$q" -e "" -i 100000)
    case $w in
      publish) cmd+=(-x 1 -y 0 -C "$n") ;;
      confirm-*) cmd+=(-x 1 -y 0 -C "$n" -c "${w#confirm-}") ;;
      consume-ack50) cmd+=(-x 0 -y 1 -D "$n" -q 1000 -A 50) ;;
      consume-ack1) cmd+=(-x 0 -y 1 -D "$n" -q 1000) ;;
    esac
  else
    cmd=("$peer" --uri "$uri" --queue "$q" --size 64 --count "$n")
    case $w in
      publish) cmd+=(--mode publish) ;;
      confirm-*) cmd+=(--mode confirm --window "${w#confirm-}") ;;
      consume-ack50) cmd+=(--mode consume --prefetch 1000 --multi-ack 50) ;;
      consume-ack1) cmd+=(--mode consume --prefetch 1000 --multi-ack 1) ;;
    esac
  fi
  pending=$q
  [[ $w == consume-* ]] && "$blaster" --uri "$uri" --queue "$q" --size 64 --count "$n" >/dev/null
  local f=$out/$client-$tag-$n.callgrind
  valgrind --tool=callgrind --callgrind-out-file="$f" \
    --toggle-collect='warren::perf::latency_samples::summarise*' --collect-atstart=yes \
    "${cmd[@]}" >"$out/$client-$tag-$n.log" 2>&1 || { cat "$out/$client-$tag-$n.log" >&2; exit 1; }
  queue_op "$q" "$expect"
  pending=""
  result=$(awk '/^totals:/ {print $2}' "$f")
}

# per_message CLIENT WORKLOAD: sets $median to the median Ir/msg over the repeats.
per_message() {
  local client=$1 w=$2 reps=$repeat figures=() r tag a b
  [[ $w == confirm-* ]] && reps=$repeat_confirm
  for ((r = 1; r <= reps; r++)); do
    tag=$w.$r
    measure "$client" "$w" "$small" "$tag"; a=$result
    [[ -n $a ]] || { median=-; return; }
    measure "$client" "$w" "$large" "$tag"; b=$result
    figures+=("$(awk -v a="$a" -v b="$b" -v n=$((large - small)) 'BEGIN { printf "%.1f", (b - a) / n }')")
    echo "  $client $tag: Ir $a at $small, $b at $large: ${figures[-1]} Ir/msg" >&2
  done
  median=$(printf '%s\n' "${figures[@]}" | sort -g |
    awk '{ v[NR] = $1 } END { printf "%.1f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
}

echo "callgrind.sh: $build, $small and $large messages, files in $out" >&2
floors=()
for c in "${clients[@]}"; do
  case $c in
    warren | rabbitmq-c) ;;
    asio-floor | blocking-floor) floors+=("$c") ;;
    *) echo "callgrind.sh: unknown client $c" >&2; exit 2 ;;
  esac
done
printf '%-14s %12s %12s %7s' workload warren rabbitmq-c ratio
for c in "${floors[@]}"; do printf ' %14s' "$c"; done
printf '\n'
for w in "${workloads[@]}"; do
  declare -A fig=([warren]=- [rabbitmq-c]=- [asio-floor]=- [blocking-floor]=-)
  for c in "${clients[@]}"; do
    per_message "$c" "$w"
    fig[$c]=$median
  done
  ratio=$(awk -v a="${fig[warren]}" -v b="${fig[rabbitmq-c]}" \
    'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.2f", a / b }')
  printf '%-14s %12s %12s %7s' "$w" "${fig[warren]}" "${fig[rabbitmq-c]}" "$ratio"
  for c in "${floors[@]}"; do printf ' %14s' "${fig[$c]}"; done
  printf '\n'
done
