import random
import signal
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from django.core.management.base import BaseCommand, CommandError

from demo import keyfile
from demo.roster import MAX_CUSTOMERS, roster
from demo.simulator import (
    DEFAULT_MIX,
    CoreApi,
    CoreApiError,
    CoreSimulator,
    Tally,
    parse_mix,
    quiet_http_log,
)

MAX_RATE = 1000.0
MAX_BATCH = 1000


class Stop(Exception):
    """Ctrl-C or SIGTERM: finish with a last tally."""


class Command(BaseCommand):
    help = (
        "Play a bank's core systems: post realistic account events (transactions, balance "
        "updates, receipts, shipments, now and then a fraud alert) to the events API of a "
        "running bankside, with an API key, until --count, --duration or Ctrl-C. Only for "
        "installations with the sandbox: simulated events must never reach real customers."
    )

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="The portal's URL.")
        parser.add_argument("--api-key", default="", help="bsk_… (default: the demo's key).")
        parser.add_argument(
            "--key-file", default="", help="Read the key from this file (the demo's by default)."
        )
        parser.add_argument("--rate", type=float, default=1.0, help="Events per second.")
        parser.add_argument(
            "--customers", type=int, default=4, help=f"Demo customers, 1 to {MAX_CUSTOMERS}."
        )
        parser.add_argument(
            "--mix",
            default=",".join(f"{k}={v:g}" for k, v in DEFAULT_MIX.items()),
            help="Weights per event type, e.g. transaction.posted=6,balance.updated=3.",
        )
        parser.add_argument(
            "--fraud-every", type=int, default=25, help="A fraud alert every N events; 0: never."
        )
        parser.add_argument("--count", type=int, help="Stop after this many events.")
        parser.add_argument("--duration", type=float, help="Stop after this many seconds.")
        parser.add_argument("--batch", type=int, default=1, help="Events per request (1-1000).")
        parser.add_argument(
            "--tally-every", type=float, default=30.0, help="Seconds between tally lines."
        )
        parser.add_argument("--seed", type=int, help="Make the events repeatable.")

    def handle(self, *args, **options):
        url = _url(options["url"])
        api_key = _api_key(options["api_key"], options["key_file"])
        rate, batch = options["rate"], options["batch"]
        if not 0 < rate <= MAX_RATE:
            raise CommandError(f"--rate must be above 0 and at most {MAX_RATE:g} events/s.")
        if not 1 <= batch <= MAX_BATCH:
            raise CommandError(f"--batch must be from 1 to {MAX_BATCH}.")
        if not 1 <= options["customers"] <= MAX_CUSTOMERS:
            raise CommandError(f"--customers must be from 1 to {MAX_CUSTOMERS}.")
        if options["fraud_every"] < 0:
            raise CommandError("--fraud-every must be 0 (never) or more.")
        count, duration = options["count"], options["duration"]
        if count is not None and count < 1:
            raise CommandError("--count must be at least 1.")
        if duration is not None and duration <= 0:
            raise CommandError("--duration must be above 0 seconds.")
        if options["tally_every"] <= 0:
            raise CommandError("--tally-every must be above 0 seconds.")
        try:
            mix = parse_mix(options["mix"])
        except ValueError as exc:
            raise CommandError(f"--mix: {exc}.") from None

        customers = roster(options["customers"])
        simulator = CoreSimulator(
            customers=customers,
            mix=mix,
            fraud_every=options["fraud_every"],
            rng=random.Random(options["seed"]),  # noqa: S311 - made-up events, not secrets
        )
        tally = Tally()
        headers = {"Authorization": f"Bearer {api_key}", "User-Agent": "bankside-simulate-core"}
        previous = signal.signal(signal.SIGTERM, _stop)
        try:
            with (
                quiet_http_log(),
                httpx.Client(base_url=url, headers=headers, timeout=15) as client,
            ):
                api = CoreApi(client, tally=tally)
                bank = self._start(client, api, url, customers)
                self.stdout.write(
                    f"simulate_core: posting to {bank} at {url}, {rate:g} events/s for "
                    f"{len(customers)} customers"
                )
                self._run(
                    api,
                    simulator,
                    rate=rate,
                    batch=batch,
                    count=count,
                    duration=duration,
                    tally_every=options["tally_every"],
                )
        except (KeyboardInterrupt, Stop):
            pass
        except CoreApiError as exc:
            raise CommandError(f"The API refused: {exc}") from None
        finally:
            signal.signal(signal.SIGTERM, previous)
        self.stdout.write(f"simulate_core: {tally.line()}")
        if tally.outcomes["rejected"]:
            raise CommandError(
                f"{tally.outcomes['rejected']} events were rejected, e.g. "
                + " | ".join(tally.reasons)
            )

    def _start(self, client: httpx.Client, api: CoreApi, url: str, customers) -> str:
        try:
            sandbox = client.get("/sandbox/api/pages")
        except httpx.HTTPError as exc:
            raise CommandError(f"Nothing answers at {url} ({type(exc).__name__}).") from None
        if sandbox.status_code != 200:
            raise CommandError(
                f"{url} has no Messenger sandbox: simulated events would reach real customers, "
                "so simulate_core only posts to development and demo installations."
            )
        try:
            who = api.whoami()
            for customer in customers:
                api.customer_put(customer)
        except CoreApiError as exc:
            raise CommandError(f"The API refused: {exc}") from None
        return who.get("bank", "?")

    def _run(self, api, simulator, *, rate, batch, count, duration, tally_every):
        started = time.monotonic()
        next_at, next_tally = started, started + tally_every
        sent = 0
        while count is None or sent < count:
            now = time.monotonic()
            if duration is not None and now - started >= duration:
                break
            size = batch if count is None else min(batch, count - sent)
            api.events_post([simulator.next_event() for _ in range(size)])
            sent += size
            if now >= next_tally:
                self.stdout.write(f"simulate_core: {api.tally.line()}")
                next_tally = now + tally_every
            next_at += size / rate
            if count is not None and sent >= count:
                break
            pause = next_at - time.monotonic()
            if duration is not None:
                pause = min(pause, started + duration - time.monotonic())
            if pause > 0:
                time.sleep(pause)
            else:
                next_at = time.monotonic()


def _stop(*_):
    raise Stop


def _url(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in {"http", "https"} or not parts.netloc or parts.query:
        raise CommandError(
            f"--url must be an http(s) address such as http://127.0.0.1:8000, got {raw!r}."
        )
    return raw.rstrip("/")


def _api_key(given: str, key_file: str) -> str:
    if given:
        key = given.strip()
        source = "--api-key"
    else:
        path = Path(key_file) if key_file else keyfile.default_path()
        key = keyfile.read(path)
        source = str(path)
        if not key:
            raise CommandError(
                f"No API key: pass --api-key bsk_…, or run `manage.py seed_demo`, which "
                f"keeps the demo bank's key in {path}."
            )
    if not key.startswith("bsk_") or any(c.isspace() for c in key):
        raise CommandError(f"The API key from {source} does not look like bsk_<prefix>_<secret>.")
    return key
