"""psycopg2 (Debian's python3-psycopg2, on libpq) against the gateway.

PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE come from the environment
(libpq reads them); CA_FILE turns on verify-full TLS. Run with
/usr/bin/python3. Prints "<current_user> 42".
"""
import os

import psycopg2

ca = os.environ.get("CA_FILE")
kw = {"sslmode": "verify-full", "sslrootcert": ca} if ca else {"sslmode": "disable"}
conn = psycopg2.connect(**kw)
with conn.cursor() as cur:
    cur.execute("SELECT current_user, %s + 1", (41,))
    user, n = cur.fetchone()
print(user, n)
conn.close()
