"""A minimal chat client of a running p2pim node, in plain Python: the standard library
only, no p2pim import. Any language that can open a UNIX socket and write JSON can do the
same (docs/api.md, "The control socket").

    python examples/mini_client.py [--profile DIR] [--count N] PEER

It connects to DIR/control.sock (default: ~/.local/share/p2pim, or $XDG_DATA_HOME/p2pim),
shows who this node is and its peers, subscribes to events, then prints every message that
arrives as "nick: text" and sends each line typed on stdin to PEER (a fingerprint, a
fingerprint prefix or a nick). Lines starting with "#" are its own notes. It quits at the
end of stdin (Ctrl-D), once the node has answered every line sent; with --count N, only
once N messages have arrived as well:  echo hello | mini_client.py --count 1 bob
"""

import argparse
import json
import os
import queue
import socket
import sys
import threading

parser = argparse.ArgumentParser(description="A minimal p2pim chat client.")
parser.add_argument("peer", help="who the lines typed go to")
data_home = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
parser.add_argument("--profile", default=os.path.join(data_home, "p2pim"))
parser.add_argument("--count", type=int, help="also wait for N incoming messages")
args = parser.parse_args()

sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
sock.connect(os.path.join(args.profile, "control.sock"))
from_node = sock.makefile("r", encoding="utf-8")
next_id = 0


def request(method, **params):
    """Send one request; return its id (the response carries the same id)."""
    global next_id
    next_id += 1
    line = json.dumps({"jsonrpc": "2.0", "id": next_id, "method": method, "params": params})
    sock.sendall(line.encode() + b"\n")
    return next_id


def call(method, **params):
    """Request and wait for the answer: only before subscribing, when nothing else comes."""
    request(method, **params)
    reply = json.loads(from_node.readline())
    if "error" in reply:
        sys.exit(f"{method}: {reply['error']['message']}")
    return reply["result"]


me = call("identity")
print(f"# I am {me['nick']} ({me['fingerprint'][:8]})")
for peer in call("peers"):
    print(f"# peer {peer['nick']} ({peer['fingerprint'][:8]}): {peer['status']}")
call("subscribe")  # from now on, event notifications arrive between the responses
print(f"# ready: lines typed here go to {args.peer}", flush=True)

inbox = queue.Queue()  # ("node", line) and ("user", line); None when that side ends


def pump(source, lines):
    for line in lines:
        inbox.put((source, line))
    inbox.put((source, None))


threading.Thread(target=pump, args=("node", from_node), daemon=True).start()
threading.Thread(target=pump, args=("user", sys.stdin), daemon=True).start()
typing, unanswered, received = True, set(), 0
while typing or unanswered or received < (args.count or 0):
    source, line = inbox.get()
    if source == "user":
        if line is None:
            typing = False
        elif line.strip():
            unanswered.add(request("send", peer=args.peer, text=line.rstrip("\n")))
        continue
    if line is None:
        sys.exit("the node closed the connection")
    message = json.loads(line)
    if message.get("method") == "event" and message["params"]["type"] == "message_received":
        print(f"{message['params']['nick']}: {message['params']['text']}", flush=True)
        received += 1
    elif message.get("id") in unanswered:
        unanswered.discard(message["id"])
        if "error" in message:
            print(f"# not sent: {message['error']['message']}", flush=True)
