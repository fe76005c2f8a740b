"""``python -m harness.faults --port 8474 --seed 7``: run the embedded Toxiproxy server.

A stop-gap until ``alertbench faults serve`` exists; logs go to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import logging

from harness import loop as event_loop
from harness.faults.server import serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m harness.faults", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="loopback address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8474, help="API port, 0 for ephemeral")
    parser.add_argument("--seed", type=int, default=None, help="seed for toxicity and jitter")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(name)s %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        event_loop.run(serve(args.host, args.port, seed=args.seed))


if __name__ == "__main__":
    main()
