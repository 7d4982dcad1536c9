#!/usr/bin/env bash
# The AWS CLI against a running shiftkey: credential calls, errors, logins.
# Environment as for compat.py. AWS CLI v2 before 2.13 ignores
# AWS_ENDPOINT_URL, so the endpoint is passed explicitly.
set -euo pipefail
AWS=${AWS:-aws}
ep=(--endpoint-url "$SHIFTKEY_ENDPOINT" --output text)
fail() { echo "FAIL: $*" >&2; exit 1; }

read -r user pass < <($AWS "${ep[@]}" redshift get-cluster-credentials --cluster-identifier dev-cluster \
  --db-user cli_user --db-name dev --auto-create --query '[DbUser,DbPassword]')
[ "$user" = "IAMA:cli_user" ] || fail "DbUser $user"
got=$(PGUSER=$user PGPASSWORD=$pass PGDATABASE=dev psql -XAtc 'SELECT current_user')
[ "$got" = "cli_user" ] || fail "current_user $got"
echo "ok: aws redshift get-cluster-credentials + psql login"

if err=$($AWS "${ep[@]}" redshift get-cluster-credentials --cluster-identifier nope --db-user x 2>&1); then
  fail "unknown cluster accepted"
fi
grep -q "ClusterNotFound" <<<"$err" || fail "unknown cluster: $err"
echo "ok: aws CLI shows ClusterNotFound"

read -r user pass < <($AWS "${ep[@]}" redshift-serverless get-credentials --workgroup-name default-workgroup \
  --db-name dev --query '[dbUser,dbPassword]')
got=$(PGUSER=$user PGPASSWORD=$pass PGPORT=$WG_PORT PGDATABASE=dev psql -XAtc 'SELECT current_user')
[ "$got" = "IAM:admin" ] || fail "serverless current_user $got"
echo "ok: aws redshift-serverless get-credentials + psql login"

# A name of this run's own: the dev instance may outlive one run (go test -count=2).
iamuser=cli-compat-$$
$AWS "${ep[@]}" iam create-user --user-name "$iamuser" >/dev/null
arn=$($AWS "${ep[@]}" iam get-user --user-name "$iamuser" --query User.Arn)
[ "$arn" = "arn:aws:iam::000000000000:user/$iamuser" ] || fail "iam get-user $arn"
echo "ok: aws iam create-user/get-user"
echo "AWS CLI compatibility: all checks passed"
