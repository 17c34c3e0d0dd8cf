#!/usr/bin/env bash
# Runs the conformance catalogue against one broker, as the `conformance`
# meson suite does (scripts/test runs that suite after the release build's
# tests):
#
#   run.sh rabbitmq BINARY OUTDIR   RabbitMQ at $AMQP_URL: no scenario may be `fail`
#   run.sh garagemq BINARY OUTDIR   GarageMQ on 127.0.0.1:5690 (scripts/garagemq starts
#                                   it): the run must complete and every verdict must be
#                                   one tests/conformance/garagemq.verdicts allows (a
#                                   scenario that differs gets two more runs, alone)
#
# The results go to OUTDIR/conformance-BROKER.{json,md,verdicts}. To publish a
# run, copy the .md files to docs/conformance/ (tests/conformance/update-docs
# does that, and rewrites garagemq.verdicts).
set -uo pipefail

broker=${1:?broker: rabbitmq or garagemq}
binary=${2:?the warren-conformance binary}
outdir=${3:?an output directory}
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
mkdir -p "$outdir"
out="$outdir/conformance-$broker"

case "$broker" in
  rabbitmq)
    exec "$binary" --uri "${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/}" --quiet \
      --json "$out.json" --markdown "$out.md" --verdicts "$out.verdicts"
    ;;
  garagemq)
    started=0
    if ! "$root/scripts/garagemq" status; then
      "$root/scripts/garagemq" start || exit 1
      started=1
    fi
    # A local broker answers at once: a second is a generous reply timeout,
    # and it keeps a run against a broker that often does not answer short.
    run() {
      "$binary" --uri amqp://guest:guest@127.0.0.1:5690/ --quiet --timeout-ms 1000 \
        --restart-command "'$root/scripts/garagemq' restart >/dev/null" \
        --expect "$here/garagemq.verdicts" "$@"
    }
    rm -f "$out.verdicts"
    run --json "$out.json" --markdown "$out.md" --verdicts "$out.verdicts" | tee "$out.log"
    rc=${PIPESTATUS[0]}
    # GarageMQ leaves some outcomes to chance (which consumer a message goes
    # to, frames of two deliveries interleaved). A scenario whose verdict is
    # not one the list allows is run again, alone, up to twice: a change in
    # the runner repeats, chance seldom does. It fails if it never matches.
    mapfile -t changed < <(sed -n 's/^changed: \([^:]*\):.*/\1/p' "$out.log")
    if ((rc != 0 && ${#changed[@]} > 0 && ${#changed[@]} <= 5)) &&
      [[ -s "$out.verdicts" ]] && ! grep -q '^changed: .*\(not run\|not in the list\)$' "$out.log"; then
      rc=0
      for id in "${changed[@]}"; do
        ok=0
        for attempt in 1 2; do
          if run --only "$id" >"$out.recheck" 2>&1; then
            echo "recheck: $id matched the list on attempt $attempt"
            ok=1
            break
          fi
          sed -n 's/^changed: /recheck: /p' "$out.recheck"
        done
        ((ok)) || rc=1
      done
    fi
    ((started)) && "$root/scripts/garagemq" stop
    exit "$rc"
    ;;
  *)
    echo "run.sh: unknown broker '$broker'" >&2
    exit 2
    ;;
esac
