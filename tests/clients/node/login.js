// node-postgres against the gateway: PGHOST, PGPORT, PGUSER, PGPASSWORD,
// PGDATABASE from the environment; CA_FILE turns on verify-full TLS.
const fs = require('fs');
const net = require('net');
const { Client } = require('pg');

async function main() {
  const ssl = process.env.CA_FILE
    ? { ca: fs.readFileSync(process.env.CA_FILE), rejectUnauthorized: true,
        // SNI carries host names only; an IP address is checked against the certificate's IP SANs.
        servername: net.isIP(process.env.PGHOST) ? undefined : process.env.PGHOST }
    : false;
  // Over TLS, SCRAM-SHA-256-PLUS: the gateway's certificate is bound to the exchange.
  const client = new Client({ ssl, enableChannelBinding: !!process.env.CA_FILE });
  await client.connect();
  const res = await client.query('SELECT current_user AS u, $1::int + 1 AS n', [41]);
  console.log(res.rows[0].u + ' ' + res.rows[0].n);
  await client.end();
}
main().catch((e) => { console.error(e.code || '', e.message); process.exit(1); });
