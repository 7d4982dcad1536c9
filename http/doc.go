// Package http serves shiftkey's AWS-compatible API: SigV4 authentication,
// routing by the credential scope's service and the action, and the wire
// protocols the SDKs speak. Import it as shttp.
//
// # One edge per protocol
//
// Every request goes through the same steps, in this order, and each step
// happens in one place only:
//
//  1. authenticate (server.go): SigV4 from the Authorization header or a
//     presigned query string. A presigned request takes its parameters
//     from the signed query string only and may not carry a body; every
//     x-amz-* header present must be signed, and given once; the credential
//     scope's region must be one the API serves (checkRegion), and its
//     service redshift-serverless when X-Amz-Target is sent.
//  2. decode (redshift.go for Redshift's Query actions; awsjson for
//     Serverless): the protocol's parameters become a typed input struct of
//     the service package, with nil for parameters not given. Version is
//     checked here. Nothing is interpreted yet.
//  3. normalize → authorize → act, in the service package (redshift,
//     serverless, iamapi, sts): names are checked and folded once
//     (package dbname), the resource is looked up in the caller's
//     region, and every ARN and condition key is built from the normalized
//     values, so that the name authorized is the name used.
//  4. answer: results through awsquery or awsjson, errors through the one
//     table in errors.go (StatusOf) in the protocol's envelope.
//
// # Adding an operation
//
// A Redshift Query operation touches the same files every time:
//
//   - redshift/: an XxxInput struct of pointers, and a Service method that
//     normalizes, authorizes (the actions and resources the AWS Service
//     Authorization Reference lists, with its condition keys) and acts.
//   - http/redshift.go: a row in redshiftActions, a decoder that fills
//     XxxInput from the form (optString, optInt, optBool, listParam), and
//     the XML result struct named as the AWS model names its members.
//   - http/errors.go: the HTTP status of any new error code.
//   - a test with the real aws-sdk-go-v2 client (server_test.go has the
//     fixture), a row in badinput_test.go per documented constraint, and
//     rows in the adversarial tables when the operation takes names.
//
// A Serverless operation is a row in serverless's operations table and a
// method that reads its members through the request helper; IAM and STS
// actions are rows in iamapi's handlers and cases in sts.Service.Handle.
// The edge knows those three services only as a QueryService or a
// JSONService; it decodes Redshift's actions itself into the typed inputs
// of package redshift.
package http
