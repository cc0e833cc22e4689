"""The gunicorn worker: gthread, with an absolute deadline on each request and no thread for a quiet
connection.

Stock gthread hands every new connection to a thread, which then waits up to 5 s for its first byte:
30 connections that send nothing hold 4 threads for 40 s, and a /filter from kube-scheduler waits
behind them past its `httpTimeout`. A thread also reads the request line, headers and body with a
timeout per `recv()`, which a client sending one byte every 2 s never reaches.

`DeadlineThreadWorker` changes the two:
- a new connection waits in the worker's poller (as a kept-alive one does) until its first byte
  arrives, so a quiet connection costs a file descriptor, not a thread; it is closed after
  gunicorn's `keepalive` seconds without a byte;
- from the moment a thread takes a request, headers and body must have arrived within one deadline
  (`SITE_EXTENDER_READ_TIMEOUT`): each read waits only for what is left of it, so trickling buys
  nothing. The body's end resets the socket timeout for the answer (`limits.read_body_within_limits`).

The threads are then busy only with requests that arrive whole and on time: with 8 of them
(deploy/), a few trickling clients cannot hold them all.
"""

from __future__ import annotations

import errno
import selectors
import socket
import time
from functools import partial

from gunicorn.http.unreader import SocketUnreader
from gunicorn.workers.gthread import ThreadWorker, TConn

from extender.ops.limits import read_timeout


class DeadlineUnreader(SocketUnreader):
    """A socket reader whose every `recv()` waits at most for what is left of the request's deadline."""

    deadline: float | None = None

    def chunk(self, size_hint: int | None = None) -> bytes:
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the request did not arrive within its deadline")
            self.sock.settimeout(left)
        return super().chunk(size_hint)


class DeadlineConn(TConn):
    """A connection whose parser reads through `DeadlineUnreader`, with the deadline of its request."""

    deadline: float | None = None

    def init(self) -> None:
        super().init()
        unreader = getattr(self.parser, "unreader", None)
        if type(unreader) is SocketUnreader:
            unreader.__class__ = DeadlineUnreader  # same state, deadline-bound reads
        if isinstance(unreader, DeadlineUnreader):
            unreader.deadline = self.deadline


class DeadlineThreadWorker(ThreadWorker):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.request_deadline = read_timeout()

    def accept(self, listener: socket.socket) -> None:
        """Accept a connection onto the poller: a thread takes it once it has something to read."""
        try:
            client_sock, client_addr = listener.accept()
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        conn = DeadlineConn(self.cfg, client_sock, client_addr, listener.getsockname())  # non-blocking
        conn.timeout = time.monotonic() + self.cfg.keepalive
        self.pending_conns.append(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self.on_pending_socket_readable, conn))

    def handle(self, conn: TConn) -> object:
        """Serve one request; its headers and body must arrive within `request_deadline` from now."""
        if self.request_deadline > 0 and isinstance(conn, DeadlineConn):
            conn.deadline = time.monotonic() + self.request_deadline
            unreader = getattr(conn.parser, "unreader", None)
            if isinstance(unreader, DeadlineUnreader):
                unreader.deadline = conn.deadline
        return super().handle(conn)
