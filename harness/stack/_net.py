"""Small network helpers for launching and probing services on loopback."""

from __future__ import annotations

import socket
import time

__all__ = ["LOOPBACK", "free_port", "redis_ping"]

LOOPBACK = "127.0.0.1"


def free_port(host: str = LOOPBACK) -> int:
    """An ephemeral TCP port that was free a moment ago.

    Servers that cannot bind port 0 themselves (Postgres, Redis) get one of
    these; the caller retries with a new port if the server loses the race.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_open(host: str, port: int, timeout_s: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def redis_ping(host: str, port: int, *, password: str = "", timeout_s: float = 0.5) -> bool:
    """True when a Redis server at host:port answers PING with PONG."""
    deadline = time.monotonic() + timeout_s
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as sock:
            if password:
                sock.sendall(f"AUTH {password}\r\n".encode())
                if not sock.recv(64).startswith(b"+OK"):
                    return False
            sock.sendall(b"PING\r\n")
            reply = b""
            while b"\r\n" not in reply and time.monotonic() < deadline:
                chunk = sock.recv(64)
                if not chunk:
                    break
                reply += chunk
            return reply.startswith(b"+PONG")
    except OSError:
        return False
