#!/usr/bin/python3
"""A small energy-manager app on shipd's D-Bus API (org.shipd.Hub1), with python3-dbus-next (Debian).

It covers what an app does with shipd: pairing (approve a device that asks, or trust one by SKI and
connect it by address), waiting for a connection, sending one SPINE message (a NodeManagement
detailed-discovery read) and receiving the reply, then exiting. The C++ twin is energy_manager.cpp.

  energy_manager.py [--system|--session|--bus-address ADDR] [--accept] [--connect SKI HOST PORT]
                    [--timeout SECONDS]

  --accept      trust the first device that asks to pair (PeerStateChanged "received-pairing-request")
  --connect     trust SKI and dial it at HOST:PORT (Connect replies once the SHIP handshake completed)

Exit status: 0 a reply came, 1 shipd refused or nothing came in time, 2 usage.
"""

import argparse
import asyncio
import json
import sys

from dbus_next import BusType
from dbus_next.aio import MessageBus
from dbus_next.errors import DBusError

NAME = "org.shipd.Hub1"
PATH = "/org/shipd/Hub1"


def log(text):
    print(text, file=sys.stderr, flush=True)


def discovery_read(counter):
    """A valid SPINE read of the peer's NodeManagement detailed discovery (SPINE 1.3, feature 0)."""
    return json.dumps({"datagram": {
        "header": {
            "specificationVersion": "1.3.0",
            "addressSource": {"device": "d:_i:shipd_example-python-em", "entity": [0], "feature": 0},
            "addressDestination": {"entity": [0], "feature": 0},
            "msgCounter": counter,
            "cmdClassifier": "read",
        },
        "payload": {"cmd": [{"nodeManagementDetailedDiscoveryData": {}}]},
    }}, separators=(",", ":"))


async def main(args):
    if args.bus_address:
        bus = await MessageBus(bus_address=args.bus_address).connect()
    else:
        bus = await MessageBus(bus_type=BusType.SESSION if args.session else BusType.SYSTEM).connect()
    introspection = await bus.introspect(NAME, PATH)
    hub = bus.get_proxy_object(NAME, PATH, introspection).get_interface(NAME)

    connected = asyncio.Queue()
    replies = asyncio.Queue()
    accepted = set()

    def on_state(ski, state, error):
        # Pairing: a device that does not know us yet waits in hello "pending" until we decide.
        if state == "received-pairing-request" and args.accept and not accepted:
            accepted.add(ski)
            log(f"pairing request from {ski}: trusting it")
            asyncio.ensure_future(hub.call_trust(ski))
        elif state == "error" and error:
            log(f"{ski}: {error}")

    hub.on_peer_state_changed(on_state)
    hub.on_peer_connected(lambda ski: connected.put_nowait(ski))
    hub.on_data_received(lambda ski, text: replies.put_nowait((ski, text)))

    if args.connect:
        ski, host, port = args.connect
        await hub.call_trust(ski)
        log(f"connecting to {ski} at {host}:{port}")
        await hub.call_connect(ski, host, int(port))  # returns once in data exchange, or raises
        peer = ski
    else:
        peer = next((p[0] for p in await hub.call_list_peers() if p[4]), None)
        if peer is None:
            log("waiting for a SHIP peer to connect")
            peer = await connected.get()

    await hub.call_send_data(peer, discovery_read(1))
    print(f"sent a NodeManagement detailed-discovery read to {peer}", flush=True)
    while True:
        ski, text = await replies.get()
        reply = json.loads(text).get("datagram", {})
        if ski == peer and reply.get("header", {}).get("cmdClassifier") == "reply":
            break
    print(f"reply from {ski}:", flush=True)
    for entity in reply["payload"]["cmd"][0]["nodeManagementDetailedDiscoveryData"].get("entityInformation", []):
        description = entity.get("description", {})
        print(f"  entity   {description.get('entityAddress', {}).get('entity')} "
              f"{description.get('entityType')}", flush=True)
    print(json.dumps(reply["header"], separators=(",", ":")), flush=True)
    bus.disconnect()
    return 0


def parse():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    bus = parser.add_mutually_exclusive_group()
    bus.add_argument("--system", action="store_true", help="shipd on the system bus (default)")
    bus.add_argument("--session", action="store_true", help="shipd on the session bus")
    bus.add_argument("--bus-address", metavar="ADDR", help="shipd on the bus at ADDR")
    parser.add_argument("--accept", action="store_true", help="trust the first device that asks to pair")
    parser.add_argument("--connect", nargs=3, metavar=("SKI", "HOST", "PORT"), help="trust SKI and dial it")
    parser.add_argument("--timeout", type=float, default=60, help="give up after SECONDS (default 60)")
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse()
    try:
        sys.exit(asyncio.run(asyncio.wait_for(main(arguments), arguments.timeout)))
    except DBusError as e:
        log(f"shipd refused: {e.type}: {e.text}")
        sys.exit(1)
    except asyncio.TimeoutError:
        log(f"nothing within {arguments.timeout:g} s")
        sys.exit(1)
