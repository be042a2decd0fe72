"""What only the PostgreSQL backend promises: racing migrations, surviving dropped connections."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from provena_jobd.errors import StorageError
from provena_jobd.queue.dialect import migrations
from provena_jobd.queue.files import files_for
from provena_jobd.queue.postgres import PostgresStore
from provena_jobd.queue.store import Claim
from tests.helpers import eventually
from tests.postgres import empty

from .contract_helpers import NOW, flow, keyed, new_job


async def test_nodes_starting_at_once_migrate_exactly_once(fresh_database: str) -> None:
    stores = [PostgresStore(fresh_database) for _ in range(4)]
    await asyncio.gather(*(store.open() for store in stores))
    try:
        connection = await asyncpg.connect(fresh_database)
        versions = await connection.fetch("SELECT version FROM jobd_schema ORDER BY version")
        await connection.close()
        assert [row["version"] for row in versions] == [m.version for m in migrations("postgres")]
        job = new_job()
        await stores[0].launch([job])
        assert await stores[3].get(job.session_id) is not None
    finally:
        await asyncio.gather(*(store.close() for store in stores))


async def _terminate_others(url: str) -> int:
    """Cut every other connection to the database, as a failover or network cut would."""
    connection = await asyncpg.connect(url)
    try:
        return int(
            await connection.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
    finally:
        await connection.close()


async def test_after_its_connections_drop_a_store_reconnects_and_keeps_notifying(
    postgres_database: str,
) -> None:
    empty(postgres_database)
    store = PostgresStore(postgres_database)
    changed: list[str] = []
    store.on_change = changed.extend
    await store.open()
    try:
        before = new_job()
        await store.launch([before])
        assert await _terminate_others(postgres_database) >= 2
        # A write may fail while the cut is noticed; none is lost once acknowledged.
        after = new_job()
        for _ in range(3):
            try:
                await store.launch([after])
                break
            except StorageError:
                continue
        assert await store.get(before.session_id) is not None
        assert await store.get(after.session_id) is not None

        probes: set[str] = set()

        async def heard() -> bool:
            # Launch until one is heard: those launched before the LISTEN was back are not.
            probe = new_job()
            await store.launch([probe])
            probes.add(probe.session_id)
            return bool(probes.intersection(changed))

        await eventually(heard, what="change notices after the reconnect")
    finally:
        await store.close()


async def test_an_unreachable_server_is_a_clear_storage_error() -> None:
    store = PostgresStore("postgresql://postgres@127.0.0.1:1/jobd")
    with pytest.raises(StorageError, match="cannot use database"):
        await store.open()


async def test_a_file_one_node_keeps_is_served_by_another(postgres_database: str) -> None:
    empty(postgres_database)
    writer, reader = PostgresStore(postgres_database), PostgresStore(postgres_database)
    await asyncio.gather(writer.open(), reader.open())
    try:
        await files_for(writer, "unused-folder").put("a.docx", b"PK\x03\x04report", 1.0)
        assert await files_for(reader, "unused-folder").get("a.docx") == b"PK\x03\x04report"
        assert await files_for(reader, "unused-folder").get("b.docx") is None
    finally:
        await asyncio.gather(writer.close(), reader.close())


async def test_nodes_share_one_start_limit_and_one_launch_key(postgres_database: str) -> None:
    empty(postgres_database)
    nodes = [PostgresStore(postgres_database) for _ in range(3)]
    await asyncio.gather(*(node.open() for node in nodes))
    try:
        await nodes[0].launch([new_job() for _ in range(20)])
        # Every node claims at once, each asking for more than the limit leaves.
        claims = await asyncio.gather(
            *(node.claim_flow(flow(limit=5, now=NOW + 0.5, per_s=4)) for node in nodes)
        )
        assert sum(len(claimed.jobs) for claimed in claims) == 4
        assert all(claimed.limited for claimed in claims if len(claimed.jobs) < 5)
        launches = await asyncio.gather(*(node.launch_once(keyed(new_job())) for node in nodes))
        assert sum(outcome.launched for outcome in launches) == 1
        assert len({outcome.session_id for outcome in launches}) == 1
    finally:
        await asyncio.gather(*(node.close() for node in nodes))


async def test_an_attempt_names_the_node_that_claimed_it(postgres_database: str) -> None:
    empty(postgres_database)
    nodes = [PostgresStore(postgres_database), PostgresStore(postgres_database)]
    nodes[0].node, nodes[1].node = "node-a", "node-b"
    await asyncio.gather(*(store.open() for store in nodes))
    try:
        job = new_job()
        await nodes[0].launch([job])
        claim = Claim(
            job_type=job.job_type, limit=1, worker_id="w", now=NOW, lease_expires_at=NOW + 9
        )
        [claimed] = await nodes[1].claim(claim)
        [attempt] = await nodes[0].attempts(claimed.session_id)
        assert (attempt.node, attempt.worker_id, attempt.claimed_at) == ("node-b", "w", NOW)
    finally:
        await asyncio.gather(*(store.close() for store in nodes))


async def test_a_database_a_newer_jobd_migrated_is_refused(fresh_database: str) -> None:
    store = PostgresStore(fresh_database)
    await store.open()
    await store.close()
    connection = await asyncpg.connect(fresh_database)
    try:  # as a newer jobd's next migration would have left it
        await connection.execute("INSERT INTO jobd_schema (version) VALUES (99)")
    finally:
        await connection.close()
    older = PostgresStore(fresh_database)
    with pytest.raises(StorageError, match=r"migrated by a newer jobd \(schema 99, this jobd"):
        await older.open()
    await older.close()


async def test_a_malformed_url_is_refused_without_quoting_its_password() -> None:
    store = PostgresStore("postgresql://postgres:se/cret@127.0.0.1:5432/jobd")  # / unencoded
    with pytest.raises(StorageError) as refused:
        await store.open()
    assert "cret" not in refused.value.message
    assert "must be percent-encoded" in refused.value.message
