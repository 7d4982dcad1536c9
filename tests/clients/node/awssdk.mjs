// The AWS SDK for JavaScript v3 (@aws-sdk/client-redshift,
// client-redshift-serverless, client-sts: its own awsQuery and awsJson1_1
// serializers, SigV4 signer, error parsing and retries) against shiftkey,
// with an endpoint override, then node-postgres logging in with what it
// returns. Environment: what dev.env exports (AWS_REGION, AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY: the static keys shiftkey issued, AWS_ENDPOINT_URL,
// ...), SHIFTKEY_ENDPOINT (the plain-HTTP endpoint override), CLUSTER,
// WORKGROUP, PGHOST, PGPORT (the cluster's gateway), WG_HOST, WG_PORT (the
// workgroup's), ROLE_ARN (a role the keys may assume, allowed
// GetClusterCredentials except for DbUser js_denied and nothing on
// Redshift Serverless), DB_GROUP (a group role to join).
//
// Every check is asserted here (exit 1 naming it) and printed as one JSON
// object on the last line, which the Go test compares with its own table.
import pg from 'pg';
import {
  RedshiftClient, GetClusterCredentialsCommand, GetClusterCredentialsWithIAMCommand, ClusterNotFoundFault,
} from '@aws-sdk/client-redshift';
import {
  RedshiftServerlessClient, GetCredentialsCommand, AccessDeniedException, ResourceNotFoundException, ValidationException,
} from '@aws-sdk/client-redshift-serverless';
import { STSClient, AssumeRoleCommand, GetCallerIdentityCommand } from '@aws-sdk/client-sts';

const env = process.env;
const results = {};

class CheckFailed extends Error {}

function check(what, got, want) {
  results[what] = got;
  if (got !== want) throw new CheckFailed(`${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
}

function must(what, cond, detail) {
  if (!cond) throw new CheckFailed(`${what}: ${JSON.stringify(detail)}`);
}

// The SDK's default credential chain would read ~/.aws; the keys are given.
function clients(credentials) {
  const common = { region: env.AWS_REGION, endpoint: env.SHIFTKEY_ENDPOINT, credentials };
  return { rs: new RedshiftClient(common), rss: new RedshiftServerlessClient(common), sts: new STSClient(common) };
}

const adminKeys = { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY };
const admin = clients(adminKeys);

// A successful call: the request id the server sent back, one attempt.
async function call(what, client, command) {
  const out = await client.send(command).catch((e) => {
    throw new CheckFailed(`${what}: ${e.name} ${e.code || ''} (HTTP ${e.$metadata?.httpStatusCode}): ${e.message}`);
  });
  must(what + ' $metadata', out.$metadata.httpStatusCode === 200 && out.$metadata.requestId && out.$metadata.attempts === 1, out.$metadata);
  return out;
}

// A call that must fail: "<error.name> <HTTP status> attempts=<n>". The
// SDK retries what it classifies as transient, throttling or clock skew,
// so attempts=1 also says shiftkey's error looked like none of those.
async function failure(what, client, command, errorClass) {
  let e;
  try {
    await client.send(command);
  } catch (err) {
    e = err;
  }
  must(what + ' failed', e, 'succeeded');
  must(what + ' is a service error with a message and request id', e.$fault === 'client' && e.message && e.$metadata?.requestId,
    { name: e.name, fault: e.$fault, message: e.message, metadata: e.$metadata });
  if (errorClass) must(`${what} is an instance of ${errorClass.name}`, e instanceof errorClass, e.name);
  return `${e.name} ${e.$metadata.httpStatusCode} attempts=${e.$metadata.attempts}`;
}

// Expiration must be a Date about seconds ahead.
function expiresIn(what, date, seconds) {
  const ahead = (date?.getTime?.() - Date.now()) / 1000;
  must(what, date instanceof Date && Math.abs(ahead - seconds) < 60, { expiration: date, ahead });
}

// Logs in with node-postgres and returns current_user (and, given a
// group, whether the session is a member of it).
async function login(what, host, port, user, password, group, tls) {
  // verify-full TLS against Node's trust store, which is what dev.env can set.
  const ssl = tls ? { rejectUnauthorized: true } : false;
  const client = new pg.Client({ host, port: Number(port), database: 'dev', user, password, ssl, connectionTimeoutMillis: 10000 });
  try {
    await client.connect();
    const { rows: [{ u }] } = await client.query('SELECT current_user AS u');
    if (!group) return u;
    const { rows: [{ m }] } = await client.query('SELECT pg_has_role(current_user, $1, \'MEMBER\') AS m', [group]);
    return `${u} member=${m}`;
  } catch (e) {
    throw new CheckFailed(`${what}: login as ${user}: ${e.code || ''} ${e.message}`);
  } finally {
    await client.end().catch(() => {});
  }
}

async function main() {
  const me = await call('GetCallerIdentity', admin.sts, new GetCallerIdentityCommand({}));
  check('GetCallerIdentity Arn', me.Arn.replace(/^arn:aws:iam::\d+:/, ''), 'user/admin');

  // GetClusterCredentials with every member the SDK serializes.
  const gcc = await call('GetClusterCredentials', admin.rs, new GetClusterCredentialsCommand({
    ClusterIdentifier: env.CLUSTER, DbUser: 'js_user', DbName: 'dev', AutoCreate: true, DbGroups: [env.DB_GROUP], DurationSeconds: 1800,
  }));
  check('GetClusterCredentials DbUser', gcc.DbUser, 'IAMA:js_user');
  expiresIn('GetClusterCredentials Expiration in 1800s', gcc.Expiration, 1800);
  check('GetClusterCredentials login', await login('GetClusterCredentials', env.PGHOST, env.PGPORT, gcc.DbUser, gcc.DbPassword, env.DB_GROUP),
    'js_user member=true');

  const iam = await call('GetClusterCredentialsWithIAM', admin.rs, new GetClusterCredentialsWithIAMCommand({
    ClusterIdentifier: env.CLUSTER, DbName: 'dev', DurationSeconds: 900,
  }));
  check('GetClusterCredentialsWithIAM DbUser', iam.DbUser, 'IAM:admin');
  expiresIn('GetClusterCredentialsWithIAM Expiration in 900s', iam.Expiration, 900);
  check('GetClusterCredentialsWithIAM login', await login('GetClusterCredentialsWithIAM', env.PGHOST, env.PGPORT, iam.DbUser, iam.DbPassword),
    'IAM:admin');

  // STS AssumeRole, then the session's keys (with x-amz-security-token).
  const ar = await call('AssumeRole', admin.sts, new AssumeRoleCommand({ RoleArn: env.ROLE_ARN, RoleSessionName: 'jssdk', DurationSeconds: 900 }));
  expiresIn('AssumeRole Credentials.Expiration in 900s', ar.Credentials.Expiration, 900);
  const session = clients({
    accessKeyId: ar.Credentials.AccessKeyId, secretAccessKey: ar.Credentials.SecretAccessKey, sessionToken: ar.Credentials.SessionToken,
  });
  const who = await call('GetCallerIdentity (session)', session.sts, new GetCallerIdentityCommand({}));
  check('GetCallerIdentity (session) Arn', who.Arn, ar.AssumedRoleUser.Arn);
  const sgcc = await call('GetClusterCredentials (session)', session.rs, new GetClusterCredentialsCommand({
    // An empty list goes as "DbGroups=": no groups, so no redshift:JoinGroup (the role has none).
    ClusterIdentifier: env.CLUSTER, DbUser: 'js_session_user', AutoCreate: true, DbGroups: [],
  }));
  check('GetClusterCredentials (session) login', await login('GetClusterCredentials (session)', env.PGHOST, env.PGPORT, sgcc.DbUser, sgcc.DbPassword),
    'js_session_user');

  const sl = await call('GetCredentials', admin.rss, new GetCredentialsCommand({ workgroupName: env.WORKGROUP, dbName: 'dev', durationSeconds: 1200 }));
  check('GetCredentials dbUser', sl.dbUser, 'IAM:admin');
  expiresIn('GetCredentials expiration in 1200s', sl.expiration, 1200);
  check('GetCredentials login', await login('GetCredentials', env.WG_HOST, env.WG_PORT, sl.dbUser, sl.dbPassword), 'IAM:admin');

  // A user who sourced dev.env and configures nothing: region, keys and
  // AWS_ENDPOINT_URL (HTTPS, dev's own CA) from the environment.
  const fromEnv = await call('GetClusterCredentials (dev.env)', new RedshiftClient({}), new GetClusterCredentialsCommand({
    ClusterIdentifier: env.CLUSTER, DbUser: 'js_env_user', AutoCreate: true,
  }));
  check('GetClusterCredentials (dev.env) login', await login('GetClusterCredentials (dev.env)',
    env.PGHOST, env.PGPORT, fromEnv.DbUser, fromEnv.DbPassword, undefined, true), 'js_env_user');

  // A client whose clock is 10 minutes off: shiftkey refuses the signature
  // (SignatureDoesNotMatch on the Query APIs, InvalidSignatureException on the
  // JSON one), the SDK takes the server's time from the answer's Date
  // header, corrects its clock offset and retries once, signed right.
  for (const [clock, skew] of [['slow', -600_000], ['fast', 600_000]]) {
    const c = clients(adminKeys); // a fresh clock offset
    const realNow = Date.now;
    Date.now = () => realNow() + skew;
    let attempts;
    try {
      attempts = [
        await c.rs.send(new GetClusterCredentialsCommand({ ClusterIdentifier: env.CLUSTER, DbUser: 'js_user' })),
        await c.rss.send(new GetCredentialsCommand({ workgroupName: env.WORKGROUP })),
        await c.sts.send(new GetCallerIdentityCommand({})),
      ].map((out) => out.$metadata.attempts).join(' ');
    } catch (e) {
      throw new CheckFailed(`client clock 10 minutes ${clock}: ${e.name} (HTTP ${e.$metadata?.httpStatusCode}, attempts ${e.$metadata?.attempts}): ${e.message}`);
    } finally {
      Date.now = realNow;
    }
    check(`client clock 10 minutes ${clock}: attempts`, attempts, '2 2 2');
  }

  // Errors: the exception name and HTTP status the SDK surfaces.
  check('unknown cluster', await failure('unknown cluster', admin.rs,
    new GetClusterCredentialsCommand({ ClusterIdentifier: 'no-such-cluster', DbUser: 'js_user' }), ClusterNotFoundFault),
  'ClusterNotFoundFault 404 attempts=1');
  check('unknown cluster (WithIAM)', await failure('unknown cluster (WithIAM)', admin.rs,
    new GetClusterCredentialsWithIAMCommand({ ClusterIdentifier: 'no-such-cluster' }), ClusterNotFoundFault),
  'ClusterNotFoundFault 404 attempts=1');
  check('unknown workgroup', await failure('unknown workgroup', admin.rss,
    new GetCredentialsCommand({ workgroupName: 'no-such-workgroup' }), ResourceNotFoundException),
  'ResourceNotFoundException 400 attempts=1');
  check('access denied', await failure('access denied', session.rs,
    new GetClusterCredentialsCommand({ ClusterIdentifier: env.CLUSTER, DbUser: 'js_denied' })),
  'AccessDenied 403 attempts=1');
  check('access denied (Serverless)', await failure('access denied (Serverless)', session.rss,
    new GetCredentialsCommand({ workgroupName: env.WORKGROUP }), AccessDeniedException),
  'AccessDeniedException 403 attempts=1');
  check('DurationSeconds 60', await failure('DurationSeconds 60', admin.rs,
    new GetClusterCredentialsCommand({ ClusterIdentifier: env.CLUSTER, DbUser: 'js_user', DurationSeconds: 60 })),
  'InvalidParameterValue 400 attempts=1');
  check('durationSeconds 10 (Serverless)', await failure('durationSeconds 10 (Serverless)', admin.rss,
    new GetCredentialsCommand({ workgroupName: env.WORKGROUP, durationSeconds: 10 }), ValidationException),
  'ValidationException 400 attempts=1');

  const wrong = clients({ accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: 'not' + env.AWS_SECRET_ACCESS_KEY });
  check('wrong secret key', await failure('wrong secret key', wrong.rs,
    new GetClusterCredentialsCommand({ ClusterIdentifier: env.CLUSTER, DbUser: 'js_user' })),
  'SignatureDoesNotMatch 403 attempts=1');
  check('wrong secret key (Serverless)', await failure('wrong secret key (Serverless)', wrong.rss,
    new GetCredentialsCommand({ workgroupName: env.WORKGROUP })),
  'InvalidSignatureException 403 attempts=1');
  check('wrong secret key (STS)', await failure('wrong secret key (STS)', wrong.sts, new GetCallerIdentityCommand({})),
    'SignatureDoesNotMatch 403 attempts=1');

  console.log(JSON.stringify(results));
}

main().catch((e) => {
  console.error(e instanceof CheckFailed ? 'FAIL: ' + e.message : e);
  console.log(JSON.stringify(results));
  process.exit(1);
});
