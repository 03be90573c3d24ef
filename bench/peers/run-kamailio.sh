#!/bin/sh
# Start the reference Kamailio in the background on 127.0.0.1:$PORT (default 15060); prints its PID.
# Stop it with: kill $(cat ${RUNDIR}/kamailio.pid)
# Extra args are passed to kamailio (e.g. -A WITH_QOP, -n 4 for 4 UDP workers).
# Environment: RUNDIR (default /tmp/kamailio-ref; keep it short, the ctl socket lives there), PORT (default 15060).
RUNDIR=${RUNDIR:-/tmp/kamailio-ref}
PORT=${PORT:-15060}
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$RUNDIR"
rm -f "$RUNDIR/kamailio.pid"
sed -e "s#/tmp/kamailio-ref#$RUNDIR#g" -e "s#127\.0\.0\.1:15060#127.0.0.1:$PORT#g" \
    "$HERE/kamailio-gb28181-test.cfg" > "$RUNDIR/kamailio.cfg"
kamailio -f "$RUNDIR/kamailio.cfg" -DD -E -Y "$RUNDIR" -P "$RUNDIR/kamailio.pid" -m 256 -M 16 "$@" > "$RUNDIR/kamailio.log" 2>&1 &
i=0
while [ ! -s "$RUNDIR/kamailio.pid" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
[ -s "$RUNDIR/kamailio.pid" ] || { echo "kamailio did not start: see $RUNDIR/kamailio.log" >&2; exit 1; }
sleep 0.5
cat "$RUNDIR/kamailio.pid"
