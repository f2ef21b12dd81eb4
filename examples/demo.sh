#!/usr/bin/env bash
# demo.sh: one phrase, end to end, on this machine. It starts `referee serve`
# on a free loopback port with a temporary data directory, generates a
# synthetic phrase (video and scoring-box log), streams it with
# `referee stream`, prints the verdict and where the artifacts are, and stops
# the server. Usage: examples/demo.sh [path/to/referee]
set -euo pipefail

bin=${1:-bin/referee}
work=$(mktemp -d "${TMPDIR:-/tmp}/referee-demo.XXXXXX")
server_pid=""

stop_server() {
	if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
		kill -TERM "$server_pid"
		wait "$server_pid" || true
	fi
}
trap stop_server EXIT

echo "== Starting referee serve (data in $work/data)"
"$bin" serve --host 127.0.0.1 --port 0 --data-dir "$work/data" 2>"$work/server.log" &
server_pid=$!
url=""
for _ in $(seq 1 100); do
	addr=$(grep -o 'msg=listening addr=[0-9.:]\+' "$work/server.log" | head -n 1 | sed 's/.*addr=//' || true)
	[ -n "$addr" ] && url="http://$addr"
	[ -n "$url" ] && break
	if ! kill -0 "$server_pid" 2>/dev/null; then
		echo "referee serve exited early:" >&2
		cat "$work/server.log" >&2
		exit 1
	fi
	sleep 0.1
done
if [ -z "$url" ]; then
	echo "referee serve did not say where it listens within 10 s; its log:" >&2
	cat "$work/server.log" >&2
	exit 1
fi
echo "   listening at $url"

scenario=left-attack-right-pause
echo "== Generating a synthetic phrase ($scenario)"
"$bin" gen-test-video "$work/phrase.avi" --pattern fencers --scenario "$scenario" --fps 30 --signal "$work/phrase.txt"
"$bin" probe-signal "$work/phrase.txt" --fps 30

echo "== Streaming it to the server"
"$bin" stream "$url" --video "$work/phrase.avi" --signal "$work/phrase.txt" --output "$work/result.json"

echo "== Server log"
stop_server
server_pid=""
cat "$work/server.log"

json_field() {
	grep -o "\"$1\": *\"[^\"]*\"" "$work/result.json" | head -n 1 | sed 's/^[^:]*: *"//; s/"$//'
}
dir=$(json_field artifact_dir)
echo "== Verdict"
echo "   winner: $(json_field winner)"
echo "   reason: $(json_field reason)"
echo "   result: $work/result.json"
echo "   artifacts in $dir:"
ls -1 "$dir" | sed 's/^/     /'
