"""The client role: the Socket.IO subscriber fleet (and, through httpx, the HTTP side)."""

from harness.clients.fleet import FleetStart, Subscriber, SubscriberFleet

__all__ = ["FleetStart", "Subscriber", "SubscriberFleet"]
