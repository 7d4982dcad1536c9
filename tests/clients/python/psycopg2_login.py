"""psycopg2 (Debian's python3-psycopg2, libpq underneath) against the
gateway: SCRAM-SHA-256, and SCRAM-SHA-256-PLUS with channel_binding=require
when CA_FILE turns on verify-full TLS.

PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE come from the environment.
Run with /usr/bin/python3. Prints "<current_user> 42" or exits non-zero.
"""
import os

import psycopg2

ca = os.environ.get("CA_FILE")
if ca:
    conn = psycopg2.connect(sslmode="verify-full", sslrootcert=ca, channel_binding="require", connect_timeout=10)
else:
    conn = psycopg2.connect(sslmode="disable", connect_timeout=10)
with conn, conn.cursor() as cur:
    cur.execute("SELECT current_user, %s + 1", (41,))
    user, n = cur.fetchone()
    print(user, n)
conn.close()
