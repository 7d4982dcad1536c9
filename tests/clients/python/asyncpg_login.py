"""asyncpg (Debian's python3-asyncpg: its own wire protocol and SCRAM, the
extended protocol in binary format) against the gateway.

PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE come from the environment;
CA_FILE turns on verify-full TLS (host name or IP checked against the
certificate). Run with /usr/bin/python3. Prints
"<current_user> 42 5000 timeout 7 ok" or exits non-zero with the error.
"""
import asyncio
import os
import ssl
import sys
import time

import asyncpg


def fail(what, got):
    raise AssertionError(f"{what}: got {got!r}")


async def main():
    env = os.environ
    tls = False
    if env.get("CA_FILE"):
        tls = ssl.create_default_context(cafile=env["CA_FILE"])
        # check_hostname stays on: Python matches an IP host against the
        # certificate's IP SANs, a name against its DNS names.
    conn = await asyncpg.connect(
        host=env["PGHOST"], port=int(env["PGPORT"]), user=env["PGUSER"],
        password=env["PGPASSWORD"], database=env["PGDATABASE"], ssl=tls,
        timeout=10, statement_cache_size=100)
    try:
        # (a) who the gateway made us
        user = await conn.fetchval("select current_user")

        # (b) a named prepared statement, parameter and result in binary
        stmt = await conn.prepare("select $1::int + 1")
        n = await stmt.fetchval(41)
        if n != 42:
            fail("$1::int + 1 with 41", n)

        # (c) COPY FROM STDIN (binary) of 5000 rows in a transaction
        async with conn.transaction():
            await conn.execute("create temp table apg_rows (i int, s text) on commit drop")
            res = await conn.copy_records_to_table(
                "apg_rows", records=((i, f"row {i}") for i in range(5000)), columns=["i", "s"])
            if res != "COPY 5000":
                fail("copy status", res)
            count = await conn.fetchval("select count(*) from apg_rows where s = 'row ' || i")
        if count != 5000:
            fail("rows copied", count)

        # (d) a timeout: asyncpg cancels the task and sends a CancelRequest
        # on a new connection with the key the gateway gave it.
        # Once, on a loaded machine under -race, the cancel of an unprepared
        # call under a 0.3 s timeout hit the next query instead (57014 on
        # "select 7"), most likely because the timeout fired before the
        # query reached the backend. Preparing first (one Bind/Execute round
        # trip) and a 1 s timeout make the cancel meet the running sleep.
        sleep = await conn.prepare("select pg_sleep($1)")
        try:
            await asyncio.wait_for(sleep.fetchval(30), 1.0)
            fail("pg_sleep(30) under a 1 s timeout", "no timeout")
        except asyncio.TimeoutError:
            pass

        # (e) the same connection answers at once: asyncpg waits for the
        # cancelled query's end first, which only comes early if the cancel
        # reached the backend (otherwise ~30 s).
        # A cancel is a signal the backend takes when it arrives: under
        # load it can land on the next statement instead (PostgreSQL's
        # protocol race, as pgJDBC's issue 412 describes), which shows the
        # cancel reached the backend all the same. Then once more.
        started = time.monotonic()
        try:
            seven = await conn.fetchval("select 7")
        except asyncpg.QueryCanceledError:
            seven = await conn.fetchval("select 7")
        waited = time.monotonic() - started
        if seven != 7:
            fail("select 7 after the timeout", seven)
        if waited > 5:
            fail("seconds until the connection answered after the cancel", round(waited, 1))
    finally:
        await conn.close(timeout=5)
    print(user, n, count, "timeout", seven, "ok")


try:
    asyncio.run(asyncio.wait_for(main(), 50))
except Exception as e:  # noqa: BLE001 - report any failure and exit non-zero
    print(type(e).__name__, getattr(e, "sqlstate", ""), e, file=sys.stderr)
    sys.exit(1)
