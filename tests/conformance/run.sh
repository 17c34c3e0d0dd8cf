#!/usr/bin/env bash
# Runs the conformance catalogue against one broker, as the `conformance`
# meson suite does (scripts/test runs that suite after the release build's
# tests):
#
#   run.sh rabbitmq BINARY OUTDIR   RabbitMQ at $AMQP_URL: no scenario may be `fail`
#   run.sh garagemq BINARY OUTDIR   GarageMQ on 127.0.0.1:5690 (scripts/garagemq starts
#                                   it): the run must complete and every verdict must be
#                                   the one tests/conformance/garagemq.verdicts lists
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
    "$binary" --uri amqp://guest:guest@127.0.0.1:5690/ --quiet --timeout-ms 1000 \
      --restart-command "'$root/scripts/garagemq' restart >/dev/null" \
      --json "$out.json" --markdown "$out.md" --verdicts "$out.verdicts" \
      --expect "$here/garagemq.verdicts"
    rc=$?
    ((started)) && "$root/scripts/garagemq" stop
    exit "$rc"
    ;;
  *)
    echo "run.sh: unknown broker '$broker'" >&2
    exit 2
    ;;
esac
