// postgres.js (npm "postgres", its own wire protocol and SCRAM in JS)
// against the gateway: PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE from
// the environment; CA_FILE turns on verify-full TLS. Prints
// "<current_user> 42 20 1000 57014 ok" or exits non-zero with the error.
import fs from 'node:fs';
import net from 'node:net';
import postgres from 'postgres';

const env = process.env;
const ssl = env.CA_FILE
  ? { ca: fs.readFileSync(env.CA_FILE), rejectUnauthorized: true,
      // SNI carries host names only; an IP address is checked against the certificate's IP SANs.
      servername: net.isIP(env.PGHOST) ? undefined : env.PGHOST }
  : false;

function fail(what, got) {
  throw new Error(what + ': got ' + JSON.stringify(got));
}

async function main(sql) {
  // (a) who the gateway made us
  const [{ u }] = await sql`select current_user as u`;

  // (b) a parameter, sent in the extended protocol
  const [{ n }] = await sql`select ${41}::int + 1 as n`;
  if (n !== 42) fail('$1::int + 1 with 41', n);

  // (c) 20 queries at once on a pool of 2: postgres.js pipelines them on
  // its connections; each answer must be its own query's.
  const rows = await Promise.all(Array.from({ length: 20 }, (_, i) => sql`select ${i}::int as i`));
  rows.forEach((r, i) => { if (r[0].i !== i) fail('pipelined query ' + i, r[0].i); });

  // (d) a transaction on one reserved connection
  const count = await sql.begin(async (tx) => {
    await tx`create temp table pgjs_rows (i int) on commit drop`;
    await tx`insert into pgjs_rows select generate_series(1, 1000)`;
    const [{ c }] = await tx`select count(*)::int as c from pgjs_rows`;
    return c;
  });
  if (count !== 1000) fail('rows in the transaction', count);

  // (e) cancel a running query: postgres.js sends a CancelRequest on a new
  // connection with the key the gateway gave it; the error must come back
  // from the server (a PostgresError), not be made up locally.
  const sleeping = sql`select pg_sleep(30)`.execute();
  const started = Date.now();
  const timer = setTimeout(() => sleeping.cancel(), 300);
  let code;
  try {
    await sleeping;
    fail('pg_sleep(30) finished', 'no error');
  } catch (e) {
    if (!(e instanceof postgres.PostgresError)) throw e;
    code = e.code;
  } finally {
    clearTimeout(timer);
  }
  const waited = Date.now() - started;
  if (waited > 5000) fail('cancel took (ms)', waited);

  // (f) the pool still answers afterwards
  const [{ s }] = await sql`select 7 as s`;
  if (s !== 7) fail('select 7 after the cancel', s);

  console.log([u, n, rows.length, count, code, 'ok'].join(' '));
}

const sql = postgres({
  host: env.PGHOST, port: Number(env.PGPORT), database: env.PGDATABASE,
  username: env.PGUSER, password: env.PGPASSWORD,
  ssl, max: 2, connect_timeout: 10, onnotice: () => {},
});
main(sql)
  .then(() => sql.end({ timeout: 5 }))
  .catch(async (e) => {
    console.error(e.code || '', e.message);
    await sql.end({ timeout: 1 }).catch(() => {});
    process.exit(1);
  });
