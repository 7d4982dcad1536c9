package shiftkey

import (
	"errors"
	"strings"
)

// The errors both stores and the services answer alike, in AWS's words:
// one text per error, whichever store or service finds it.

// NoSuchEntity is IAM's answer for a user, group or role that does not exist.
func NoSuchEntity(kind EntityKind, name string) error {
	return Errorf(CodeNoSuchEntity, "The %s with name %s cannot be found.", kind, name)
}

// NoSuchEntityID is NoSuchEntity for an entity looked up by its unique id.
func NoSuchEntityID(kind EntityKind, id string) error {
	return Errorf(CodeNoSuchEntity, "The %s with id %s cannot be found.", kind, id)
}

// EntityExists is IAM's answer for a user, group or role created twice.
func EntityExists(kind EntityKind, name string) error {
	k := string(kind)
	if k != "" {
		k = strings.ToUpper(k[:1]) + k[1:]
	}
	return Errorf(CodeEntityAlreadyExists, "%s with name %s already exists.", k, name)
}

// EntityChanged is IAM's ConcurrentModification (409) for a user or group
// another request changed (renamed, moved, deleted and created again)
// between a call's read of it, which its authorization used, and its
// write: the caller may read it again and retry.
func EntityChanged(kind EntityKind, name string) error {
	return Errorf(CodeConcurrentModification, "The %s with name %s was modified by another request. Please retry.", kind, name)
}

// NoSuchInlinePolicy is IAM's answer for an inline policy that does not exist.
func NoSuchInlinePolicy(kind EntityKind, name string) error {
	return Errorf(CodeNoSuchEntity, "The %s policy with name %s cannot be found.", kind, name)
}

// NoSuchPolicy is IAM's answer for a managed policy that does not exist
// (or, notAttachable, one an attachment names).
func NoSuchPolicy(arn string, notAttachable bool) error {
	if notAttachable {
		return Errorf(CodeNoSuchEntity, "Policy %s does not exist or is not attachable.", arn)
	}
	return Errorf(CodeNoSuchEntity, "Policy %s was not found.", arn)
}

// PolicyAttached is IAM's answer for a managed policy deleted while
// attached (DeleteConflict, 409).
func PolicyAttached() error {
	return Errorf("DeleteConflict", "Cannot delete a policy attached to entities.")
}

// PolicyHasVersions is IAM's answer for a managed policy deleted while it
// has versions besides its default (DeleteConflict, 409).
func PolicyHasVersions() error {
	return Errorf("DeleteConflict", "This policy has more than one version. Before you delete a policy, you must delete the policy's versions. The default version is deleted with the policy.")
}

// DefaultPolicyVersion is IAM's answer for deleting a policy's default
// version (DeleteConflict, 409).
func DefaultPolicyVersion() error {
	return Errorf("DeleteConflict", "Cannot delete the default version of a policy.")
}

// NoSuchPolicyVersion is IAM's answer for a version a policy does not have.
func NoSuchPolicyVersion(arn, id string) error {
	return Errorf(CodeNoSuchEntity, "Policy %s version %s does not exist or is not attachable.", arn, id)
}

// PolicyVersionQuota is IAM's answer for a version past MaxPolicyVersions.
func PolicyVersionQuota() error {
	return Errorf(CodeLimitExceeded, "A managed policy can have up to %d versions. Before you create a new version, you must delete an existing version.", MaxPolicyVersions)
}

// PolicyExists is IAM's answer for a managed policy created twice.
func PolicyExists(name string) error {
	return Errorf(CodeEntityAlreadyExists, "A policy called %s already exists. Duplicate names are not allowed.", name)
}

// NoSuchAccessKey is IAM's answer for an access key that does not exist.
func NoSuchAccessKey(id string) error {
	return Errorf(CodeNoSuchEntity, "The Access Key with id %s cannot be found.", id)
}

// NotInGroup is IAM's answer for removing a user from a group it is not in.
func NotInGroup(user, group string) error {
	return Errorf(CodeNoSuchEntity, "User %s is not in group %s.", user, group)
}

// NoSuchSession is the stores' answer for an STS session that does not exist.
func NoSuchSession(accessKeyID string) error {
	return Errorf(CodeNoSuchEntity, "The session %s cannot be found.", accessKeyID)
}

// AccessKeyQuota is IAM's answer for a user's access key beyond
// MaxAccessKeysPerUser.
func AccessKeyQuota() error {
	return Errorf(CodeLimitExceeded, "Cannot exceed quota for AccessKeysPerUser: %d", MaxAccessKeysPerUser)
}

// AttachedPolicyQuota is IAM's answer to a managed policy attached past
// MaxAttachedPolicies to an entity of kind (PoliciesPerUser, …PerGroup,
// …PerRole).
func AttachedPolicyQuota(kind EntityKind) error {
	k := string(kind)
	return Errorf(CodeLimitExceeded, "Cannot exceed quota for PoliciesPer%s%s: %d", strings.ToUpper(k[:1]), k[1:], MaxAttachedPolicies)
}

// AccountQuota is IAM's answer to a user, group, role or (kind policy)
// customer managed policy created past the account's quota of them.
func AccountQuota(kind EntityKind) error {
	quota, max := map[EntityKind]string{KindUser: "Users", KindGroup: "Groups", KindRole: "Roles"}[kind], MaxEntities[kind]
	if kind == KindPolicy {
		quota, max = "Policies", MaxManagedPolicies
	}
	return Errorf(CodeLimitExceeded, "Cannot exceed quota for %sPerAccount: %d", quota, max)
}

// TagQuota is the answer to tags set past MaxTags on an entity of kind:
// Redshift's TagLimitExceededFault for a cluster, IAM's LimitExceeded
// otherwise.
func TagQuota(kind EntityKind) error {
	if kind == KindCluster {
		return Errorf("TagLimitExceededFault", "You have exceeded the number of tags allowed (%d).", MaxTags)
	}
	return Errorf(CodeLimitExceeded, "The number of tags has reached the maximum limit of %d.", MaxTags)
}

// GroupsPerUserQuota is IAM's answer to a user added to a group past
// MaxGroupsPerUser.
func GroupsPerUserQuota() error {
	return Errorf(CodeLimitExceeded, "Cannot exceed quota for GroupsPerUser: %d", MaxGroupsPerUser)
}

// ClusterNotFound is Redshift's answer for a cluster that does not exist.
func ClusterNotFound(id string) error {
	return Errorf(CodeClusterNotFound, "Cluster %s not found.", id)
}

// ClusterExists is Redshift's answer for a cluster created twice.
func ClusterExists() error {
	return Errorf(CodeClusterAlreadyExists, "Cluster already exists")
}

// NamespaceNotFound and WorkgroupNotFound are Redshift Serverless's answers
// for a namespace or workgroup that does not exist.
func NamespaceNotFound(name string) error {
	return Errorf(CodeResourceNotFound, "Serverless namespace %s not found.", name)
}

func WorkgroupNotFound(name string) error {
	return Errorf(CodeResourceNotFound, "Serverless workgroup %s not found.", name)
}

// NamespaceExists and WorkgroupExists are the stores' answers for a
// namespace created twice, or a workgroup created twice or on a namespace
// that has one.
func NamespaceExists(name string) error {
	return Errorf(CodeConflict, "Namespace %s already exists.", name)
}

func WorkgroupExists(name, namespace string) error {
	return Errorf(CodeConflict, "Workgroup %s already exists, or namespace %s already has a workgroup.", name, namespace)
}

// DomainNotAssociated and DomainAssociated are the stores' answers for a
// custom domain name missing, or taken, whichever resource holds it.
func DomainNotAssociated(name string) error {
	return Errorf(CodeResourceNotFound, "Custom domain name %s is not associated.", name)
}

func DomainAssociated(name string) error {
	return Errorf(CodeConflict, "Custom domain name %s is already associated.", name)
}

// StoreUnavailable is the answer for an issue whose credential the store
// did not record within its wait (a lock held on its table, a store that
// stopped answering or is failing over): nothing was acknowledged, and
// the caller may try again (the SDKs retry it).
func StoreUnavailable() error {
	return Errorf(CodeServiceUnavailable, "The credential store did not record the credential in time; no credential was issued. Try again.")
}

// RequestTimedOut is the answer for a call that did not complete within
// its deadline (a store that does not answer, a lock held on a table it
// reads): nothing was issued or changed by it that was acknowledged, and
// the caller may try again (the SDKs retry it).
func RequestTimedOut(requestID string) *Error {
	return Errorf(CodeServiceUnavailable, "The request did not complete in time; try again. Request ID: %s", requestID)
}

// ErrStoreUnavailable marks an error of a store that could not be reached
// (down, starting up or shutting down, a connection lost mid-call): an
// outage, not a bug. A store adapter wraps such errors with it (the
// PostgreSQL store: postgres/outage.go), and the API answers them
// StoreOutage, as it does a request that ran out of time.
var ErrStoreUnavailable = errors.New("store unavailable")

// ErrCommitUnknown: a transaction's COMMIT was sent and its answer lost,
// and the store could not learn what became of it; its changes may or may
// not be in the store.
var ErrCommitUnknown = errors.New("the commit's outcome is unknown")

// StoreOutage is the answer for a call that failed because the store
// could not be reached: the caller may try again (the SDKs retry it). A
// write whose commit was under way may have been recorded.
func StoreOutage(requestID string) *Error {
	return Errorf(CodeServiceUnavailable, "The service's store is unavailable; try again. Request ID: %s", requestID)
}
