"""boto3 against a running shiftkey: the credential calls, their typed
errors, and logins with what they return. Exits non-zero on the first
failure. Environment: AWS_* keys and region, SHIFTKEY_ENDPOINT, PGHOST,
PGPORT (dev-cluster), WG_PORT (default-workgroup)."""
import os
import subprocess
import sys
from datetime import datetime, timezone

import boto3
import botocore.exceptions

endpoint = os.environ["SHIFTKEY_ENDPOINT"]
rs = boto3.client("redshift", endpoint_url=endpoint)
rss = boto3.client("redshift-serverless", endpoint_url=endpoint)
sts = boto3.client("sts", endpoint_url=endpoint)


def check(cond, what):
    if not cond:
        print("FAIL:", what, file=sys.stderr)
        sys.exit(1)
    print("ok:", what)


def login(user, password, port, db="dev"):
    env = dict(os.environ, PGUSER=user, PGPASSWORD=password, PGPORT=str(port), PGDATABASE=db, PGCONNECT_TIMEOUT="10")
    out = subprocess.run(["psql", "-XAtc", "SELECT current_user"], env=env, capture_output=True, text=True)
    check(out.returncode == 0, "psql login as %s: %s" % (user, out.stderr.strip()))
    return out.stdout.strip()


def error_code(fn, **kw):
    try:
        fn(**kw)
    except botocore.exceptions.ClientError as e:
        return e.response["Error"]["Code"], e
    return None, None


ident = sts.get_caller_identity()
check(ident["Arn"].endswith(":user/admin"), "sts get_caller_identity")

c = rs.describe_clusters(ClusterIdentifier="dev-cluster")["Clusters"][0]
check(c["Endpoint"]["Port"] == int(os.environ["PGPORT"]), "describe_clusters endpoint port")

cred = rs.get_cluster_credentials(ClusterIdentifier="dev-cluster", DbUser="boto_user", DbName="dev", AutoCreate=True, DbGroups=[])
check(cred["DbUser"] == "IAMA:boto_user", "get_cluster_credentials DbUser")
check(cred["Expiration"] > datetime.now(timezone.utc), "Expiration parsed as a future datetime")
check(login(cred["DbUser"], cred["DbPassword"], os.environ["PGPORT"]) == "boto_user", "login with GetClusterCredentials")

code, e = error_code(rs.get_cluster_credentials, ClusterIdentifier="nope", DbUser="x")
check(code == "ClusterNotFound" and isinstance(e, rs.exceptions.ClusterNotFoundFault), "ClusterNotFoundFault")
check(e.response["ResponseMetadata"]["HTTPStatusCode"] == 404, "ClusterNotFound is 404")
code, _ = error_code(rs.get_cluster_credentials, ClusterIdentifier="dev-cluster", DbUser="select")
check(code == "InvalidParameterValue", "reserved DbUser is InvalidParameterValue")
code, _ = error_code(rs.get_cluster_credentials, ClusterIdentifier="dev-cluster", DbUser="x", DurationSeconds=60)
check(code == "InvalidParameterValue", "DurationSeconds 60 is InvalidParameterValue")

# Each error of the credential calls and DescribeClusters as the modelled
# exception, with its status and the request id of the header.
for what, fn, kw in [("get_cluster_credentials_with_iam", rs.get_cluster_credentials_with_iam, {"ClusterIdentifier": "nope"}),
                     ("describe_clusters", rs.describe_clusters, {"ClusterIdentifier": "nope"})]:
    code, e = error_code(fn, **kw)
    check(code == "ClusterNotFound" and isinstance(e, rs.exceptions.ClusterNotFoundFault)
          and e.response["ResponseMetadata"]["HTTPStatusCode"] == 404, what + ": ClusterNotFoundFault 404")
    md = e.response["ResponseMetadata"]
    check(md["RequestId"] and md["RequestId"] == md["HTTPHeaders"].get("x-amzn-requestid"), what + ": request id")
code, e = error_code(rs.create_cluster_snapshot, ClusterIdentifier="dev-cluster", SnapshotIdentifier="s")
check(code == "InvalidAction" and e.response["ResponseMetadata"]["HTTPStatusCode"] == 400, "an action not implemented is InvalidAction 400")

iam_cred = rs.get_cluster_credentials_with_iam(ClusterIdentifier="dev-cluster", DbName="dev")
check(iam_cred["DbUser"] == "IAM:admin", "get_cluster_credentials_with_iam DbUser")
check(login(iam_cred["DbUser"], iam_cred["DbPassword"], os.environ["PGPORT"]) == "IAM:admin", "login with WithIAM")

wg = rss.get_workgroup(workgroupName="default-workgroup")["workgroup"]
check(wg["endpoint"]["port"] == int(os.environ["WG_PORT"]), "get_workgroup endpoint port")
sc = rss.get_credentials(workgroupName="default-workgroup", dbName="dev")
check(isinstance(sc["expiration"], datetime), "serverless expiration parsed as a datetime")
check(login(sc["dbUser"], sc["dbPassword"], os.environ["WG_PORT"]) == "IAM:admin", "login with serverless GetCredentials")
code, e = error_code(rss.get_credentials, workgroupName="nope-wg")
check(code == "ResourceNotFoundException" and isinstance(e, rss.exceptions.ResourceNotFoundException), "ResourceNotFoundException")
code, e = error_code(rss.get_workgroup, workgroupName="nope-wg")
check(code == "ResourceNotFoundException" and isinstance(e, rss.exceptions.ResourceNotFoundException), "get_workgroup: ResourceNotFoundException")
md = e.response["ResponseMetadata"]
check(md["RequestId"] and md["RequestId"] == md["HTTPHeaders"].get("x-amzn-requestid"), "serverless error: request id")
code, e = error_code(rss.get_credentials, workgroupName="default-workgroup", durationSeconds=10)
check(code == "ValidationException" and isinstance(e, rss.exceptions.ValidationException), "ValidationException")
print("boto3 compatibility: all checks passed")
