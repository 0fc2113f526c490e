#!/bin/sh
# announce.sh PEER MESSAGE...
#
# Send MESSAGE to PEER through the control socket of the user's running p2pim node
# (`p2pim daemon`), with nothing but standard tools. The words of MESSAGE are joined with
# single spaces, like echo does; quotes, backslashes, newlines and any Unicode are fine.
#
#   PEER       a fingerprint, a fingerprint prefix (4+ hex digits) or a nick; scripts should
#              use fingerprints (nicks are not authenticated; docs/api.md, "Naming a peer")
#   P2PIM_PROFILE   the node's profile directory; default
#              ${XDG_DATA_HOME:-$HOME/.local/share}/p2pim, as for `p2pim` itself on Linux
#   ANNOUNCE_VIA    socat | nc | python: how to reach the socket. Default: socat if it is
#              installed, else OpenBSD netcat (`nc -U`), else python3 (always there with p2pim)
#
# The request is built (JSON-escaped) and the response checked with jq if it is installed,
# else with python3; ANNOUNCE_VIA=python uses nothing but python3.
# Prints the node's JSON-RPC response on stdout. Exit status: 0 if the node accepted the
# message (it is then stored and delivered whenever the peer is online), 1 if the response
# is an error (unknown peer, ...) or there was none, 2 for bad usage.
#
# Rooms do not exist yet; once they do, this script will announce to a room instead.
#
# Example:  ./announce.sh 63d23568 "backup finished: $(date)"
set -eu

if [ "$#" -lt 2 ]; then
    echo "usage: $0 PEER MESSAGE..." >&2
    exit 2
fi
peer=$1
shift
text=$*
profile=${P2PIM_PROFILE:-${XDG_DATA_HOME:-$HOME/.local/share}/p2pim}
sock=$profile/control.sock
if [ ! -S "$sock" ]; then
    echo "announce.sh: no node runs on the profile $profile (no $sock)" >&2
    exit 1
fi

have() { command -v "$1" >/dev/null 2>&1; }

via=${ANNOUNCE_VIA:-}
if [ -z "$via" ]; then
    if have socat; then
        via=socat
    elif have nc && nc -h 2>&1 | grep -q OpenBSD; then
        via=nc
    else
        via=python
    fi
fi

if [ "$via" != python ] && have jq; then
    request=$(jq -nc --arg peer "$peer" --arg text "$text" \
        '{jsonrpc: "2.0", id: 1, method: "send", params: {peer: $peer, text: $text}}')
else  # arguments that are not UTF-8 are refused rather than garbled
    request=$(python3 -c '
import json, os, sys
peer, text = (os.fsencode(arg).decode("utf-8") for arg in sys.argv[1:])
params = {"peer": peer, "text": text}
print(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "send", "params": params}))
' "$peer" "$text")
fi

case $via in
socat)  # -t: wait for the answer after our end of input, however long `send` takes
    response=$(printf '%s\n' "$request" | socat -t 60 - "UNIX-CONNECT:$sock") ;;
nc)  # -N: shut our side down at the end of input; the node answers, then closes
    response=$(printf '%s\n' "$request" | nc -N -U "$sock") ;;
python)
    response=$(python3 -c '
import socket, sys
with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
    s.connect(sys.argv[1])
    s.sendall(sys.argv[2].encode() + b"\n")
    s.shutdown(socket.SHUT_WR)  # one request: the node answers it, then closes
    while data := s.recv(65536):
        sys.stdout.buffer.write(data)
' "$sock" "$request") ;;
*)
    echo "announce.sh: ANNOUNCE_VIA is socat, nc or python, not '$via'" >&2
    exit 2 ;;
esac

printf '%s\n' "$response"
if [ "$via" != python ] && have jq; then
    printf '%s\n' "$response" | jq -e 'has("result")' >/dev/null
else
    printf '%s\n' "$response" | python3 -c '
import json, sys
sys.exit(0 if "result" in json.loads(sys.stdin.readline() or "{}") else 1)'
fi
