"""The client role: the Socket.IO subscriber fleet (and, through httpx, the HTTP side)."""

from harness.clients.fleet import FleetStart, Subscriber, SubscriberFleet
from harness.clients.http import AppHttp, HttpResponse, HttpStatusError

__all__ = [
    "AppHttp",
    "FleetStart",
    "HttpResponse",
    "HttpStatusError",
    "Subscriber",
    "SubscriberFleet",
]
