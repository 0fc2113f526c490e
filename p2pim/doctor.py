"""`p2pim doctor`: why don't I see my peer?  Checks a node through its JSON-RPC API.

Each check yields findings: fine, a problem (with its likely cause), or information.
docs/troubleshooting.md explains every finding and what to do about it.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

import trio

from p2pim.client import RpcClient

CONNECT_TIMEOUT = 2.0
SKEW_LIMIT_MS = 2000  # clocks further apart than this make message times misleading
SKEW_SAMPLES = 50


@dataclass(frozen=True, slots=True)
class Finding:
    check: str  # "node", "disk", "mdns", "listening", "peers", "reachability", "clock"
    status: str  # "ok", "problem" or "info"
    detail: str


async def diagnose(client: RpcClient) -> list[Finding]:
    me = await client.call("identity")
    findings = [Finding("node", "info", f"{me['nick']} ({me['fingerprint'][:16]})")]
    findings += _disk(await client.call("stats"))
    findings += _mdns(me)
    findings += await _listening(me)
    peers = await client.call("peers")
    findings += _peers(peers)
    findings += _reachability(await client.call("reachability"), peers)
    findings += await _clocks(client, peers)
    return findings


def _disk(stats: dict[str, Any]) -> list[Finding]:
    if not stats.get("disk_full"):
        return []  # nothing to say: a failing disk shows up here only once it fails
    return [
        Finding(
            "disk",
            "problem",
            "disk full: the disk holding the profile takes no more writes.  Incoming "
            "messages are neither stored nor acknowledged (their senders keep them) and "
            "sending fails; free some space and they arrive by themselves",
        )
    ]


def _mdns(me: dict[str, Any]) -> list[Finding]:
    if not me["discovery"]:
        return [
            Finding(
                "mdns",
                "info",
                "mDNS is off: peers are found only through --peer, remembered addresses "
                "and introductions by other peers",
            )
        ]
    if not me["interfaces"]:
        return [
            Finding(
                "mdns",
                "problem",
                "no network: no interface has an IPv4 address (offline, flight mode, or "
                "the network is not up yet; or --interface names none that has one).  "
                "The node runs on and finds peers as soon as an interface comes up",
            )
        ]
    findings = []
    for i in me["interfaces"]:
        where = f"{i['name'] or '?'} {i['address']}"
        if not i["up"]:
            findings.append(Finding("mdns", "problem", f"{where}: the interface is down"))
        elif not i["multicast"]:
            findings.append(Finding("mdns", "problem", f"{where}: the interface cannot multicast"))
        else:
            findings.append(Finding("mdns", "ok", f"{where}: up, multicast"))
    return findings


async def _listening(me: dict[str, Any]) -> list[Finding]:
    """Can a connection reach our port?  Tried from here, on each address peers use."""
    port, host = me["port"], me["listen_host"]
    if host in ("0.0.0.0", ""):
        hosts = [i["address"] for i in me["interfaces"]] or ["127.0.0.1"]
    else:
        hosts = [host]
    findings = []
    for address in hosts:
        try:
            with trio.fail_after(CONNECT_TIMEOUT):
                stream = await trio.open_tcp_stream(address, port)
            await stream.aclose()
            findings.append(Finding("listening", "ok", f"{address}:{port} accepts connections"))
        except (OSError, trio.TooSlowError) as exc:
            findings.append(
                Finding(
                    "listening",
                    "problem",
                    f"{address}:{port} does not accept connections ({exc or 'timed out'}): "
                    "peers cannot dial us there (a local firewall?)",
                )
            )
    return findings


def _peers(peers: list[dict[str, Any]]) -> list[Finding]:
    connected = [p for p in peers if p["connected"]]
    seen = [p for p in peers if not p["connected"] and p["addresses"]]
    detail = f"{len(connected)} connected"
    if connected:
        detail += ": " + ", ".join(p["nick"] for p in connected)
    if seen:
        detail += f"; {len(seen)} known or discovered but not connected: "
        detail += ", ".join(f"{p['nick']} ({', '.join(p['addresses'])})" for p in seen)
    return [Finding("peers", "info", detail)]


def _reachability(report: list[dict[str, Any]], peers: list[dict[str, Any]]) -> list[Finding]:
    nicks = {p["fingerprint"]: p["nick"] for p in peers}
    findings = []
    for entry in report:
        if entry["connected"] or entry["last_error"] is None:
            continue
        who = nicks.get(entry["fingerprint"] or "", entry["last_error_address"] or "a peer")
        diagnosis = entry["diagnosis"]
        if entry["last_error"] == "key mismatch":
            diagnosis = (
                f"{entry['last_error_address']} answers with another key than the one "
                "expected: an impostor, or the peer was reinstalled (verify it)"
            )
        findings.append(Finding("reachability", "problem", f"{who}: {diagnosis}"))
    return findings


async def _clocks(client: RpcClient, peers: list[dict[str, Any]]) -> list[Finding]:
    """Each connected peer's clock against ours, from the messages it sent us: the time
    it stamped on each against when we stored it (network delay is milliseconds)."""
    findings = []
    for peer in (p for p in peers if p["connected"]):
        history = await client.call("history", peer=peer["fingerprint"], limit=SKEW_SAMPLES)
        lags = [m["stored_at"] - m["sent_at"] for m in history if not m["outgoing"]]
        if not lags:
            continue
        skew = -statistics.median(lags)  # positive: the peer's clock is ahead of ours
        if abs(skew) > SKEW_LIMIT_MS:
            way = "ahead of" if skew > 0 else "behind"
            findings.append(
                Finding(
                    "clock",
                    "problem",
                    f"{peer['nick']}'s clock is about {abs(skew) / 1000:.0f} s {way} ours: "
                    "times on its messages look wrong (order is unaffected)",
                )
            )
        else:
            findings.append(Finding("clock", "ok", f"{peer['nick']}: within {abs(skew):.0f} ms"))
    return findings


def render(findings: list[Finding]) -> str:
    marks = {"ok": "ok  ", "problem": "FAIL", "info": "    "}
    lines = [f"{marks[f.status]} {f.check:<13}{f.detail}" for f in findings]
    problems = sum(f.status == "problem" for f in findings)
    lines.append(f"{problems} problem(s) found" if problems else "no problems found")
    return "\n".join(lines)
