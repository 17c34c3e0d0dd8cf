#!/usr/bin/env bash
# perf_failover.sh WARREN_PERF SOURCE_ROOT: warren-perf --recover against the
# local cluster of scripts/cluster while the node its first producer is
# connected to is killed (kill -9). Its summary must show a recovery and no
# confirmed message missing; the killed node is started again at the end.
# Skipped (77) when no cluster node answers, unless WARREN_CLUSTER_REQUIRED.
set -euo pipefail

perf="$1"
root="$2"
work="$(mktemp -d)"
python=python3
[[ -x /usr/bin/python3 ]] && python=/usr/bin/python3

ctl() {
  if [[ "$(id -u)" == 0 ]]; then
    PATH="$PATH:/usr/sbin:/sbin" timeout 60 rabbitmqctl "$@"
  else
    PATH="$PATH:/usr/sbin:/sbin" sudo -n timeout 60 rabbitmqctl "$@"
  fi
}

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if [[ -z "${WARREN_CLUSTER_REQUIRED:-}" || "${WARREN_CLUSTER_REQUIRED}" == 0 ]]; then
  if ! answers 5681 && ! answers 5682 && ! answers 5683; then
    echo "skipped: no cluster node answers (scripts/cluster start)"
    exit 77
  fi
fi

killed=""
queue="warren-test.perf-failover.$$"
on_exit() {
  if [[ -n "$killed" ]]; then "$root/scripts/cluster" start >/dev/null 2>&1 || echo "scripts/cluster start failed" >&2; fi
  # The quorum queue outlives the run unless deleted.
  "$python" - "$queue" <<'PY' >/dev/null 2>&1 || true
import sys, pika
for port in (5681, 5682, 5683):
    try:
        c = pika.BlockingConnection(pika.URLParameters("amqp://guest:guest@127.0.0.1:%d/" % port))
    except Exception:
        continue
    c.channel().queue_delete(sys.argv[1])
    c.close()
    break
PY
  rm -rf "$work"
}
trap on_exit EXIT

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

node_uri() { echo "amqp://guest:guest@127.0.0.1:$((5680 + $1))/?connection_timeout=3000"; }

# The number of the node that holds connection NAME (list_connections shows
# the whole cluster's, each pid naming its node); empty if it never shows up.
connection_node() {
  local i n
  for ((i = 0; i < 40; i++)); do
    for n in 1 2 3; do
      local pid
      pid="$(ctl -n "rabbit-$n@localhost" -q list_connections --no-table-headers pid client_properties \
        2>/dev/null | grep -F "{\"connection_name\",\"$1\"}" | awk '{print $1}' | head -n 1)" || continue
      if [[ "$pid" =~ rabbit-([123])@localhost ]]; then
        echo "${BASH_REMATCH[1]}"
        return
      fi
      break
    done
    sleep 0.5
  done
}

run_one() {
  local name="$1"
  shift
  local id="failover-$name-$$"
  echo "+ warren-perf --recover $* (id $id)"
  local rc=0
  timeout -k 5 240 "$perf" -H "$(node_uri 2),$(node_uri 3),$(node_uri 1)" --id "$id" --recover \
    -u "$queue" -e "" --quorum-queue -f persistent "$@" --json >"$work/$name.out" \
    2>"$work/$name.err" &
  local bg=$!
  local node
  node="$(connection_node "warren-perf $id producer 0")"
  [[ -n "$node" ]] || { kill "$bg"; fail "$name: the producer's connection did not show up"; }
  sleep 2
  local os_pid
  os_pid="$(ctl -n "rabbit-$node@localhost" eval 'os:getpid().' | tr -dc 0-9)"
  [[ -n "$os_pid" ]] || { kill "$bg"; fail "$name: no OS pid for rabbit-$node@localhost"; }
  echo "killing rabbit-$node@localhost (pid $os_pid), the producer's node"
  killed="$node"
  kill -9 "$os_pid"
  wait "$bg" || rc=$?
  grep -v '"type":"interval"' "$work/$name.out" || true
  cat "$work/$name.err" >&2
  [[ "$rc" == 0 ]] || fail "$name: warren-perf exited with $rc"
  grep '^{"type":"summary"' "$work/$name.out" | tail -n 1 >"$work/$name.summary"
  [[ -s "$work/$name.summary" ]] || fail "$name: no JSON summary"
  "$python" - "$work/$name.summary" "$name" <<'PY' || fail "$name: the summary does not add up"
import json, sys
s = json.load(open(sys.argv[1]))
name = sys.argv[2]
print("%s: sent %d, confirmed %d, nacked %d, unknown %d, republished %d, failed %d, received %d, "
      "missing %d, duplicates %d, recoveries %d, reopens %d" % (name, s["sent"], s["confirmed"],
      s["nacked"], s["unknown"], s["republished"], s["failed"], s["received"], s["missing"],
      s["duplicates"], s["recoveries"], s["reopens"]))
ok = True
def need(cond, what):
    global ok
    if not cond:
        print("FAIL: %s: %s" % (name, what))
        ok = False
need(s["missing"] == 0, "missing is %d, not 0" % s["missing"])
need(s["recoveries"] >= 1, "no recovery")
need(s["confirmed"] > 0, "nothing confirmed")
need(s["failed"] == 0, "%d publishes failed" % s["failed"])
need(s["received"] >= s["confirmed"], "fewer received than confirmed")
# A channel spoilt by the leaderless queue is reopened: its nacks stop.
need(s["nacked"] <= 1000, "%d nacked: a spoilt channel went on nacking" % s["nacked"])
sys.exit(0 if ok else 1)
PY
  grep -qF "connection lost" "$work/$name.err" || fail "$name: no loss reported on stderr"
  "$root/scripts/cluster" start >/dev/null || fail "scripts/cluster start failed"
  killed=""
}

# Unconfirmed publishes end unknown; then, with --republish, go out again.
# About 16 s of publishing each; the kill comes a few seconds in.
run_one unknown -x 2 -y 1 -c 50 -C 40000 -r 2500
run_one republish -x 2 -y 1 -c 50 -C 40000 -r 2500 --republish
echo "PASS: warren-perf --recover across a node kill"
