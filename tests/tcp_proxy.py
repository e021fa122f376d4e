"""A TCP proxy in front of the real PostgreSQL server that loses connections on demand:
the network faults of a failover (a commit whose answer never comes back, a server that
refuses connections for a while), against a real database, not a mock of one."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress


class LossyProxy:
    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._cut_request: bytes | None = None
        self._cut_reply: bytes | None = None
        self._down = False
        self.cuts = 0
        threading.Thread(target=self._accept, daemon=True, name="proxy-accept").start()

    def cut_next_request(self, containing: bytes) -> None:
        """The next message a client sends with these bytes is not forwarded: its
        connection is closed (the server never sees it)."""
        self._cut_request = containing

    def cut_next_reply(self, containing: bytes) -> None:
        """The next answer the server sends with these bytes is not forwarded, and its
        connection is closed: the server did the work, the client never learns it."""
        self._cut_reply = containing

    @contextmanager
    def down(self) -> Iterator[None]:
        """Every connection is closed, and new ones refused, until the block ends."""
        self._down = True
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            _close(pair)
        try:
            yield
        finally:
            self._down = False

    def url(self, base: str) -> str:
        """``base`` (a postgresql:// URL of the upstream server) through this proxy."""
        host = f"{self.upstream[0]}:{self.upstream[1]}"
        return base.replace(f"@{host}/", f"@127.0.0.1:{self.port}/", 1)

    def close(self) -> None:
        self._listener.close()
        with self._lock:
            for pair in self._pairs:
                _close(pair)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._down:
                client.close()
                continue
            server = socket.create_connection(self.upstream)
            pair = (client, server)
            with self._lock:
                self._pairs.append(pair)
            threading.Thread(target=self._pump, args=(pair, client, server, True),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(pair, server, client, False),
                             daemon=True).start()

    def _pump(self, pair: tuple[socket.socket, socket.socket], source: socket.socket,
              target: socket.socket, from_client: bool) -> None:
        with suppress(OSError):
            while chunk := source.recv(65536):
                with self._lock:
                    wanted = self._cut_request if from_client else self._cut_reply
                    cut = wanted is not None and wanted in chunk
                    if cut:
                        if from_client:
                            self._cut_request = None
                        else:
                            self._cut_reply = None
                        self.cuts += 1
                if cut:
                    break
                target.sendall(chunk)
        _close(pair)


def _close(pair: tuple[socket.socket, socket.socket]) -> None:
    for sock in pair:
        with suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()
