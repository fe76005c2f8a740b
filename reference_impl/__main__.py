"""``python -m reference_impl``: run the reference pipeline against a stack."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence

from reference_impl.config import DEV_TOKEN_SECRET, AppConfig, ConfigError
from reference_impl.flaws import Flaw, FlawError, parse_flaws
from reference_impl.loop import LOOPS
from reference_impl.schema import migrate_dsn
from reference_impl.serve import ServeError, run, run_worker

_COUNTS = ("ALERTBENCH_PROCESSES", "ALERTBENCH_PROCESS_INDEX")


def _env_count(name: str, default: int) -> int:
    """A whole number from the environment (main() refuses a malformed one)."""
    value = os.environ.get(name, "")
    return int(value) if value.isdigit() else default


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m reference_impl",
        description="Run the alertbench reference alert pipeline (API + queue worker).",
    )
    # Every option also has a default from the environment: the contract's
    # variables (docs/contract.md), so that the reference runs as a plain
    # `command` target too, told everything the way any other target is.
    env = os.environ.get
    processes = _env_count("ALERTBENCH_PROCESSES", 1)
    parser.add_argument(
        "--pg-dsn",
        default=env("PG_DSN", env("ALERTBENCH_PG_DSN")),
        help="Postgres DSN (default: $PG_DSN or $ALERTBENCH_PG_DSN)",
    )
    parser.add_argument(
        "--redis-url",
        default=env("REDIS_URL", env("ALERTBENCH_REDIS_URL")),
        help="Redis URL (default: $REDIS_URL or $ALERTBENCH_REDIS_URL)",
    )
    parser.add_argument("--host", default=env("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=env("PORT", "8000"))
    parser.add_argument(
        "--flaw",
        action="append",
        default=[f for f in env("ALERTBENCH_FLAWS", "").split(",") if f],
        metavar="NAME",
        help="switch a named flaw on (repeatable): " + ", ".join(sorted(f.value for f in Flaw)),
    )
    parser.add_argument(
        "--token-secret",
        default=env("TOKEN_SECRET", env("ALERTBENCH_TOKEN_SECRET", DEV_TOKEN_SECRET)),
        help="HS256 secret of bearer tokens (default: $TOKEN_SECRET or $ALERTBENCH_TOKEN_SECRET)",
    )
    parser.add_argument("--cache-ttl-s", type=int, default=60)
    parser.add_argument(
        "--queue-retry-base-delay-s",
        type=float,
        default=env("ALERTBENCH_QUEUE_RETRY_BASE_DELAY_S", "2.0"),
    )
    parser.add_argument(
        "--queue-attempts",
        type=int,
        default=env("ALERTBENCH_QUEUE_ATTEMPTS", "3"),
        help="attempts per queued job (default 3)",
    )
    parser.add_argument("--worker-concurrency", type=int, default=10)
    parser.add_argument(
        "--inject-rollback-rate",
        type=float,
        default=env("ALERTBENCH_INJECT_ROLLBACK_RATE", "0.0"),
        metavar="SHARE",
        help="fault injection: fail this share (0..1) of completions just before commit",
    )
    parser.add_argument(
        "--inject-seed",
        type=int,
        default=env("ALERTBENCH_INJECT_SEED", "0"),
        help="seed of injected failures",
    )
    parser.add_argument(
        "--no-gc-tuning",
        action="store_true",
        help="keep Python's default garbage-collector thresholds (full collections stall "
        "every request for ~200 ms with 1,000 sessions)",
    )
    parser.add_argument(
        "--loop",
        default="auto",
        choices=LOOPS,
        help="event loop: auto = uvloop if installed, else asyncio (default auto)",
    )
    parser.add_argument(
        "--no-relay",
        action="store_true",
        # Under the contract's variables, process 0 runs the relay.
        default=_env_count("ALERTBENCH_PROCESS_INDEX", 0) > 0,
        help="do not run the LISTEN/NOTIFY relay (another process of this pipeline runs it)",
    )
    parser.add_argument(
        "--socketio-redis",
        action="store_true",
        default=processes > 1,
        help="route Socket.IO emits through Redis (several server processes)",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--no-worker", action="store_true", help="serve the API without a worker")
    mode.add_argument("--worker-only", action="store_true", help="run a queue worker, no API")
    mode.add_argument(
        "--migrate-only",
        action="store_true",
        help="create the schema (with the flaws' changes, e.g. no_unique_index) and exit",
    )
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    return parser


def config_from_args(args: argparse.Namespace) -> AppConfig:
    """Build and validate the config; raises ConfigError or FlawError."""
    if not args.pg_dsn:
        raise ConfigError("pg_dsn: give --pg-dsn or set ALERTBENCH_PG_DSN")
    if not args.redis_url:
        raise ConfigError("redis_url: give --redis-url or set ALERTBENCH_REDIS_URL")
    return AppConfig(
        pg_dsn=args.pg_dsn,
        redis_url=args.redis_url,
        host=args.host,
        port=args.port,
        flaws=parse_flaws(args.flaw),
        token_secret=args.token_secret,
        cache_ttl_s=args.cache_ttl_s,
        queue_retry_base_delay_s=args.queue_retry_base_delay_s,
        queue_attempts=args.queue_attempts,
        worker_concurrency=args.worker_concurrency,
        run_worker=not args.no_worker,
        run_relay=not args.no_relay,
        gc_tuning=not args.no_gc_tuning,
        loop=args.loop,
        inject_rollback_rate=args.inject_rollback_rate,
        inject_seed=args.inject_seed,
        socketio_redis=args.socketio_redis,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    for name in _COUNTS:
        value = os.environ.get(name, "")
        if value and not value.isdigit():
            parser.error(f"${name} must be a whole number, got {value!r}")
    if args.migrate_only:
        # Only the database is needed (no Redis, no port).
        if not args.pg_dsn:
            parser.error("pg_dsn: give --pg-dsn or set ALERTBENCH_PG_DSN")
        try:
            flaws = parse_flaws(args.flaw)
        except FlawError as exc:
            parser.error(str(exc))
        unique = Flaw.NO_UNIQUE_INDEX not in flaws
        asyncio.run(migrate_dsn(args.pg_dsn, unique_active_alert=unique))
        return 0
    try:
        config = config_from_args(args)
    except (ConfigError, FlawError) as exc:
        parser.error(str(exc))
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        (run_worker if args.worker_only else run)(config)
    except ServeError as exc:
        logging.getLogger("reference_impl").error("%s", exc)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
