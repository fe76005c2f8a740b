"""The client role: the contract's Socket.IO client, a fleet of them, and HTTP."""

from harness.clients.fleet import FleetStart, Subscriber, SubscriberFleet
from harness.clients.http import AppHttp, HttpResponse, HttpStatusError
from harness.clients.subscriber import AlertClient, ClientEvent, ReconnectPolicy, ReconnectRecord

__all__ = [
    "AlertClient",
    "AppHttp",
    "ClientEvent",
    "FleetStart",
    "HttpResponse",
    "HttpStatusError",
    "ReconnectPolicy",
    "ReconnectRecord",
    "Subscriber",
    "SubscriberFleet",
]
