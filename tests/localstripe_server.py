"""Run localstripe on a free loopback port for the test suite and print that port.

localstripe's own CLI binds every interface on a fixed port and pickles its whole store to a
fixed file in the system temp folder after every write; tests want neither (parallel runs would
share one file, and other machines could reach the server). This launcher serves the same
aiohttp application from a socket bound to 127.0.0.1 on a port the kernel picks.

Usage: python tests/localstripe_server.py  (prints the port on the first stdout line)
"""

from __future__ import annotations

import socket
import sys

from aiohttp import web
from localstripe.resources import Store
from localstripe.server import app


def main() -> None:
    """Serve localstripe on 127.0.0.1:<free port> until terminated."""
    # Every store write would otherwise pickle the store to /tmp/localstripe.pickle.
    Store.dump_to_disk = lambda self: None
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    # The parent reads this line to learn where to connect; bind first so it is never stale.
    print(sock.getsockname()[1], flush=True)
    web.run_app(app, sock=sock, print=None, access_log=None)


if __name__ == "__main__":
    sys.exit(main())
