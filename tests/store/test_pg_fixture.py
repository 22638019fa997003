import asyncpg


async def test_fresh_database_is_empty_and_real(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        n = await conn.fetchval(
            "select count(*) from information_schema.tables where table_schema = 'public'"
        )
        version = await conn.fetchval("show server_version_num")
    finally:
        await conn.close()
    assert n == 0
    assert int(version) >= 150000
