// Package serverless implements Redshift Serverless operations (AWS JSON
// 1.1, target prefix RedshiftServerless): namespaces, workgroups and
// GetCredentials.
package serverless

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/dbname"
)

// Service runs Redshift Serverless operations.
type Service struct {
	Store       shiftkey.Store
	Authorizer  shiftkey.Authorizer
	Issuer      Issuer // mints and stores credentials
	Provisioner shiftkey.Provisioner
	Now         func() time.Time
}

// Issuer issues a credential for the caller's own IAM identity under a
// credential scope (redshift.Service is one).
type Issuer interface {
	IssueForPrincipal(ctx context.Context, caller *shiftkey.Caller, scope, scopeID string, db string, duration time.Duration) (*shiftkey.IssuedCredential, error)
}

func (s *Service) now() time.Time { return shiftkey.Now(s.Now).UTC() }

func validation(format string, args ...any) error {
	return shiftkey.Errorf(shiftkey.CodeValidation, format, args...)
}

// Handle runs operation op with the JSON request body.
func (s *Service) Handle(ctx context.Context, c *shiftkey.Caller, op string, body []byte) (any, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	var in map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	// Nothing but whitespace may follow the object: a body with more is
	// not one JSON document, and what else reads it (the audit log) must
	// not see other members than the operation does.
	if err := dec.Decode(&in); err != nil || len(bytes.Trim(body[dec.InputOffset():], " \t\r\n")) != 0 {
		return nil, shiftkey.Errorf("SerializationException", "The request body is not a JSON object.")
	}
	h, ok := operations[op]
	if !ok {
		return nil, shiftkey.Errorf("UnknownOperationException", "Operation %s is not supported.", op)
	}
	r := &request{in: in}
	out, err := h(s, ctx, c, r)
	if err == nil && r.err != nil {
		err = r.err
	}
	return out, err
}

// operations are the Serverless operations, each reading its own members.
var operations = map[string]func(*Service, context.Context, *shiftkey.Caller, *request) (any, error){
	"GetCredentials":                (*Service).getCredentials,
	"CreateNamespace":               (*Service).createNamespace,
	"GetNamespace":                  (*Service).getNamespace,
	"ListNamespaces":                (*Service).listNamespaces,
	"DeleteNamespace":               (*Service).deleteNamespace,
	"CreateWorkgroup":               (*Service).createWorkgroup,
	"GetWorkgroup":                  (*Service).getWorkgroup,
	"ListWorkgroups":                (*Service).listWorkgroups,
	"UpdateWorkgroup":               (*Service).updateWorkgroup,
	"DeleteWorkgroup":               (*Service).deleteWorkgroup,
	"CreateCustomDomainAssociation": (*Service).createDomain,
	"GetCustomDomainAssociation":    (*Service).getDomain,
	"ListCustomDomainAssociations":  (*Service).listDomains,
	"UpdateCustomDomainAssociation": (*Service).updateDomain,
	"DeleteCustomDomainAssociation": (*Service).deleteDomain,
}

// request reads members of a JSON request, keeping the first type error.
type request struct {
	in  map[string]json.RawMessage
	err error
}

func (r *request) str(name string) *string {
	raw, ok := r.in[name]
	if !ok || string(raw) == "null" {
		return nil
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		if r.err == nil {
			r.err = validation("1 validation error detected: Value at '%s' failed to satisfy constraint: Member must be a string", name)
		}
		return nil
	}
	return &v
}

func (r *request) int(name string) *int {
	raw, ok := r.in[name]
	if !ok || string(raw) == "null" {
		return nil
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<31 {
		if r.err == nil {
			r.err = validation("1 validation error detected: Value at '%s' failed to satisfy constraint: Member must be an integer", name)
		}
		return nil
	}
	v := int(f)
	return &v
}

var resourceName = regexp.MustCompile(`^[a-z0-9-]+$`)

func checkName(member, v string) error {
	if len(v) < 3 || len(v) > 64 || !resourceName.MatchString(v) {
		return validation("1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: Member must have length between 3 and 64 and satisfy regular expression pattern: ^[a-z0-9-]+$", v, member)
	}
	return nil
}

func (r *request) name(member string) (string, error) {
	v := r.str(member)
	if r.err != nil {
		return "", r.err
	}
	if v == nil {
		return "", validation("1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null", member)
	}
	return *v, checkName(member, *v)
}

// page cuts one page of items, in the order of key: at most maxResults,
// after the key the nextToken names. The token names the last key of the
// page before, not an offset, so that an item deleted or created before
// it between two pages makes the client neither miss nor repeat one. It
// is at least 8 characters long: ListCustomDomainAssociations' nextToken
// is modelled 8-1024, and botocore refuses to send back a shorter one.
// The offsets (digits) given out before are still taken.
func page[T any](r *request, items []T, key func(T) string) ([]T, *string, error) {
	max := 100
	if m := r.int("maxResults"); m != nil {
		if *m < 1 || *m > 100 {
			return nil, nil, validation("1 validation error detected: Value '%d' at 'maxResults' failed to satisfy constraint: Member must have value between 1 and 100", *m)
		}
		max = *m
	}
	items = shiftkey.SortedByKey(items, key)
	start := 0
	if t := r.str("nextToken"); t != nil && *t != "" {
		if n, err := strconv.Atoi(*t); err == nil && n >= 0 {
			start = min(n, len(items))
		} else if after, ok := shiftkey.PageTokenKey(*t); ok {
			start = shiftkey.PageStart(items, key, after)
		} else {
			return nil, nil, shiftkey.Errorf("InvalidPaginationException", "The nextToken is not valid.")
		}
	}
	end := min(start+max, len(items))
	var next *string
	if end < len(items) {
		t := shiftkey.PageToken(key(items[end-1]))
		next = &t
	}
	return items[start:end], next, r.err
}

// regionPage is List*'s work: authorize action, read every item, keep
// those of the caller's region, and cut one page of them.
func regionPage[T any](ctx context.Context, s *Service, c *shiftkey.Caller, r *request, action string,
	read func(context.Context) ([]T, error), region, key func(T) string) ([]T, *string, error) {
	if err := s.authorize(ctx, c, action, "*"); err != nil {
		return nil, nil, err
	}
	all, err := read(ctx)
	if err != nil {
		return nil, nil, err
	}
	all = slices.DeleteFunc(all, func(v T) bool { return !shiftkey.InRegion(region(v), c.Region) })
	return page(r, all, key)
}

// ARNs.

func (s *Service) workgroupARN(c *shiftkey.Caller, id string) string {
	return fmt.Sprintf("arn:aws:redshift-serverless:%s:%s:workgroup/%s", c.Region, c.Principal.Account, id)
}

func (s *Service) namespaceARN(c *shiftkey.Caller, id string) string {
	return fmt.Sprintf("arn:aws:redshift-serverless:%s:%s:namespace/%s", c.Region, c.Principal.Account, id)
}

func (s *Service) authorize(ctx context.Context, c *shiftkey.Caller, action, resource string) error {
	return s.Authorizer.Authorize(ctx, c, shiftkey.AuthzRequest{Action: "redshift-serverless:" + action, Resource: resource})
}

// Shapes.

type namespaceJSON struct {
	NamespaceName string   `json:"namespaceName"`
	NamespaceID   string   `json:"namespaceId"`
	NamespaceArn  string   `json:"namespaceArn"`
	DBName        string   `json:"dbName"`
	AdminUsername string   `json:"adminUsername"`
	Status        string   `json:"status"`
	CreationDate  string   `json:"creationDate"`
	IamRoles      []string `json:"iamRoles"`
	LogExports    []string `json:"logExports"`
}

func (s *Service) namespaceJSON(c *shiftkey.Caller, n *shiftkey.Namespace) namespaceJSON {
	return namespaceJSON{n.Name, n.ID, s.namespaceARN(c, n.ID), n.DBName, n.AdminUsername, n.Status, isoTime(n.CreatedAt), []string{}, []string{}}
}

type endpointJSON struct {
	Address      string `json:"address"`
	Port         int    `json:"port"`
	VpcEndpoints []any  `json:"vpcEndpoints"`
}

type workgroupJSON struct {
	WorkgroupName      string       `json:"workgroupName"`
	WorkgroupID        string       `json:"workgroupId"`
	WorkgroupArn       string       `json:"workgroupArn"`
	NamespaceName      string       `json:"namespaceName"`
	Status             string       `json:"status"`
	BaseCapacity       int          `json:"baseCapacity"`
	Port               int          `json:"port"`
	Endpoint           endpointJSON `json:"endpoint"`
	EnhancedVpcRouting bool         `json:"enhancedVpcRouting"`
	PubliclyAccessible bool         `json:"publiclyAccessible"`
	CreationDate       string       `json:"creationDate"`
}

// workgroupStatus is w's status as its provisioner knows it (a dev
// workgroup whose server died or could not be resumed), else the stored one.
func (s *Service) workgroupStatus(w *shiftkey.Workgroup) string {
	if h, ok := s.Provisioner.(shiftkey.WorkgroupHealth); ok {
		if st := h.WorkgroupStatus(w); st != "" {
			return st
		}
	}
	return w.Status
}

func (s *Service) workgroupJSON(c *shiftkey.Caller, w *shiftkey.Workgroup) workgroupJSON {
	return workgroupJSON{WorkgroupName: w.Name, WorkgroupID: w.ID, WorkgroupArn: s.workgroupARN(c, w.ID), NamespaceName: w.Namespace,
		Status: s.workgroupStatus(w), BaseCapacity: w.BaseCapacity, Port: w.Endpoint.Port,
		Endpoint:     endpointJSON{Address: w.Endpoint.Address, Port: w.Endpoint.Port, VpcEndpoints: []any{}},
		CreationDate: isoTime(w.CreatedAt)}
}

// isoTime is the date-time form the model asks for (ISO strings).
func isoTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// epochSeconds is how GetCredentials' timestamps travel: a JSON number.
type epochSeconds time.Time

func (e epochSeconds) MarshalJSON() ([]byte, error) {
	ms := time.Time(e).UnixMilli()
	return []byte(strconv.FormatFloat(float64(ms)/1000, 'f', 3, 64)), nil
}

// Namespaces.

func (s *Service) createNamespace(ctx context.Context, c *shiftkey.Caller, r *request) (any, error) {
	name, err := r.name("namespaceName")
	if err != nil {
		return nil, err
	}
	n := &shiftkey.Namespace{Name: name, ID: shiftkey.NewUUID(), Region: c.Region, DBName: "dev", AdminUsername: "admin", Status: "AVAILABLE", CreatedAt: s.now()}
	if v := r.str("dbName"); v != nil {
		if len(*v) < 1 || len(*v) > 64 || dbname.IsReserved(*v) || !resourceNameDB.MatchString(*v) {
			return nil, validation("1 validation error detected: Value '%s' at 'dbName' failed to satisfy constraint: Member must be 1-64 lowercase letters, digits or underscores, starting with a letter, and not a reserved word", *v)
		}
		n.DBName = *v
	}
	if v := r.str("adminUsername"); v != nil {
		if len(*v) < 1 || len(*v) > 63 || !resourceNameDB.MatchString(*v) || dbname.IsReserved(*v) {
			return nil, validation("1 validation error detected: Value at 'adminUsername' failed to satisfy constraint: Member must be 1-63 lowercase letters, digits or underscores, starting with a letter")
		}
		n.AdminUsername = *v
	}
	if r.err != nil {
		return nil, r.err
	}
	if err := s.authorize(ctx, c, "CreateNamespace", s.namespaceARN(c, n.ID)); err != nil {
		return nil, err
	}
	if err := s.Store.CreateNamespace(ctx, n); err != nil {
		return nil, err
	}
	return map[string]any{"namespace": s.namespaceJSON(c, n)}, nil
}

var resourceNameDB = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

func (s *Service) namespace(ctx context.Context, c *shiftkey.Caller, r *request, action string) (*shiftkey.Namespace, error) {
	name, err := r.name("namespaceName")
	if err != nil {
		return nil, err
	}
	n, err := s.regionNamespace(ctx, c, name)
	if err != nil {
		return nil, err
	}
	return n, s.authorize(ctx, c, action, s.namespaceARN(c, n.ID))
}

// regionNamespace is the namespace name of the caller's region.
func (s *Service) regionNamespace(ctx context.Context, c *shiftkey.Caller, name string) (*shiftkey.Namespace, error) {
	n, err := s.Store.Namespace(ctx, name)
	if err == nil && !shiftkey.InRegion(n.Region, c.Region) {
		return nil, shiftkey.NamespaceNotFound(name)
	}
	return n, err
}

func (s *Service) getNamespace(ctx context.Context, c *shiftkey.Caller, r *request) (any, error) {
	n, err := s.namespace(ctx, c, r, "GetNamespace")
	if err != nil {
		return nil, err
	}
	return map[string]any{"namespace": s.namespaceJSON(c, n)}, nil
}

func (s *Service) listNamespaces(ctx context.Context, c *shiftkey.Caller, r *request) (any, error) {
	page, next, err := regionPage(ctx, s, c, r, "ListNamespaces", s.Store.Namespaces,
		func(n *shiftkey.Namespace) string { return n.Region }, func(n *shiftkey.Namespace) string { return n.Name })
	if err != nil {
		return nil, err
	}
	out := []namespaceJSON{}
	for _, n := range page {
		out = append(out, s.namespaceJSON(c, n))
	}
	return map[string]any{"namespaces": out, "nextToken": next}, nil
}

func (s *Service) deleteNamespace(ctx context.Context, c *shiftkey.Caller, r *request) (any, error) {
	n, err := s.namespace(ctx, c, r, "DeleteNamespace")
	if err != nil {
		return nil, err
	}
	wgs, err := s.Store.Workgroups(ctx)
	if err != nil {
		return nil, err
	}
	for _, w := range wgs {
		if w.Namespace == n.Name {
			return nil, shiftkey.Errorf(shiftkey.CodeConflict, "Namespace %s has workgroup %s; delete the workgroup first.", n.Name, w.Name)
		}
	}
	if err := s.Store.DeleteNamespace(ctx, n.Name); err != nil {
		return nil, err
	}
	n.Status = "DELETING"
	return map[string]any{"namespace": s.namespaceJSON(c, n)}, nil
}

// Workgroups.

func validPort(p int) bool { return p >= 5431 && p <= 5455 || p >= 8191 && p <= 8215 }

func (s *Service) createWorkgroup(ctx context.Context, c *shiftkey.Caller, r *request) (any, error) {
	name, err := r.name("workgroupName")
	if err != nil {
		return nil, err
	}
	nsName, err := r.name("namespaceName")
	if err != nil {
		return nil, err
	}
	w := &shiftkey.Workgroup{Name: name, ID: shiftkey.NewUUID(), Region: c.Region, Namespace: nsName, Status: "AVAILABLE", BaseCapacity: 128,
		Endpoint: shiftkey.Endpoint{Port: 5439}, CreatedAt: s.now()}
	if p := r.int("port"); p != nil {
		if !validPort(*p) {
			return nil, validation("1 validation error detected: Value '%d' at 'port' failed to satisfy constraint: Member must be within 5431-5455 or 8191-8215", *p)
		}
		w.Endpoint.Port = *p
	}
	if b := r.int("baseCapacity"); b != nil {
		if *b < 8 || *b > 1024 || *b%8 != 0 {
			return nil, validation("1 validation error detected: Value '%d' at 'baseCapacity' failed to satisfy constraint: Member must be a multiple of 8 between 8 and 1024", *b)
		}
		w.BaseCapacity = *b
	}
	if r.err != nil {
		return nil, r.err
	}
	if err := s.authorize(ctx, c, "CreateWorkgroup", s.workgroupARN(c, w.ID)); err != nil {
		return nil, err
	}
	ns, err := s.regionNamespace(ctx, c, nsName)
	if err != nil {
		return nil, err
	}
	if _, err := s.Store.Workgroup(ctx, name); err == nil {
		return nil, shiftkey.Errorf(shiftkey.CodeConflict, "Workgroup %s already exists.", name)
	}
	if s.Provisioner == nil {
		return nil, validation("This shiftkey has no provisioner (shiftkey serve): declare workgroups in its configuration instead.")
	}
	if err := s.Provisioner.StartWorkgroup(ctx, w, ns); err != nil {
		return nil, err
	}
	if err := s.Store.CreateWorkgroup(ctx, w); err != nil {
		s.Provisioner.StopWorkgroup(context.WithoutCancel(ctx), w)
		return nil, err
	}
	return map[string]any{"workgroup": s.workgroupJSON(c, w)}, nil
}

func (s *Service) workgroup(ctx context.Context, c *shiftkey.Caller, r *request, action string) (*shiftkey.Workgroup, error) {
	name, err := r.name("workgroupName")
	if err != nil {
		return nil, err
	}
	w, err := s.regionWorkgroup(ctx, c, name)
	if err != nil {
		return nil, err
	}
	return w, s.authorize(ctx, c, action, s.workgroupARN(c, w.ID))
}

// regionWorkgroup is the workgroup name of the caller's region.
func (s *Service) regionWorkgroup(ctx context.Context, c *shiftkey.Caller, name string) (*shiftkey.Workgroup, error) {
	w, err := s.Store.Workgroup(ctx, name)
	if err == nil && !shiftkey.InRegion(w.Region, c.Region) {
		return nil, shiftkey.WorkgroupNotFound(name)
	}
	return w, err
}

func (s *Service) getWorkgroup(ctx context.Context, c *shiftkey.Caller, r *request) (any, error) {
	w, err := s.workgroup(ctx, c, r, "GetWorkgroup")
	if err != nil {
		return nil, err
	}
	return map[string]any{"workgroup": s.workgroupJSON(c, w)}, nil
}

func (s *Service) listWorkgroups(ctx context.Context, c *shiftkey.Caller, r *request) (any, error) {
	page, next, err := regionPage(ctx, s, c, r, "ListWorkgroups", s.Store.Workgroups,
		func(w *shiftkey.Workgroup) string { return w.Region }, func(w *shiftkey.Workgroup) string { return w.Name })
	if err != nil {
		return nil, err
	}
	out := []workgroupJSON{}
	for _, w := range page {
		out = append(out, s.workgroupJSON(c, w))
	}
	return map[string]any{"workgroups": out, "nextToken": next}, nil
}

func (s *Service) updateWorkgroup(ctx context.Context, c *shiftkey.Caller, r *request) (any, error) {
	// Every member is read and checked before anything changes: a bad one
	// must not leave the gateway moved.
	b, p := r.int("baseCapacity"), r.int("port")
	if r.err != nil {
		return nil, r.err
	}
	if b != nil && (*b < 8 || *b > 1024 || *b%8 != 0) {
		return nil, validation("1 validation error detected: Value '%d' at 'baseCapacity' failed to satisfy constraint: Member must be a multiple of 8 between 8 and 1024", *b)
	}
	if p != nil && !validPort(*p) {
		return nil, validation("1 validation error detected: Value '%d' at 'port' failed to satisfy constraint: Member must be within 5431-5455 or 8191-8215", *p)
	}
	w, err := s.workgroup(ctx, c, r, "UpdateWorkgroup")
	if err != nil {
		return nil, err
	}
	if b != nil {
		w.BaseCapacity = *b
	}
	if p != nil && *p != w.Endpoint.Port {
		if s.Provisioner == nil {
			return nil, validation("This shiftkey has no provisioner (shiftkey serve): change the port in its configuration instead.")
		}
		if err := s.Provisioner.MoveWorkgroup(ctx, w, *p); err != nil {
			return nil, err
		}
	}
	if err := s.Store.UpdateWorkgroup(ctx, w); err != nil {
		return nil, err
	}
	return map[string]any{"workgroup": s.workgroupJSON(c, w)}, nil
}

func (s *Service) deleteWorkgroup(ctx context.Context, c *shiftkey.Caller, r *request) (any, error) {
	w, err := s.workgroup(ctx, c, r, "DeleteWorkgroup")
	if err != nil {
		return nil, err
	}
	if s.Provisioner == nil {
		return nil, validation("This shiftkey has no provisioner (shiftkey serve): remove the workgroup from its configuration instead.")
	}
	if err := s.Store.DeleteWorkgroup(ctx, w.Name); err != nil { // its domains too
		return nil, err
	}
	// No snapshot is kept: the workgroup's data is removed with it.
	if err := s.Provisioner.StopWorkgroup(ctx, w); err != nil {
		return nil, err
	}
	w.Status = "DELETING"
	return map[string]any{"workgroup": s.workgroupJSON(c, w)}, nil
}

// GetCredentials.

// domainUnknown answers a custom domain with no workgroup in the caller's
// region.
func domainUnknown(domain string) error {
	return shiftkey.Errorf(shiftkey.CodeResourceNotFound, "Custom domain name %s is not associated with a workgroup.", domain)
}

func (s *Service) getCredentials(ctx context.Context, c *shiftkey.Caller, r *request) (any, error) {
	wgName, domain, db, dur := r.str("workgroupName"), r.str("customDomainName"), r.str("dbName"), r.int("durationSeconds")
	if r.err != nil {
		return nil, r.err
	}
	switch {
	case wgName == nil && domain == nil:
		return nil, validation("The custom domain name or the workgroup name must be included in the request.")
	case domain != nil:
		if !shiftkey.ValidDomainName(*domain) {
			return nil, validation("1 validation error detected: Value at 'customDomainName' failed to satisfy constraint: Member must be a valid domain name of 1 to 253 characters")
		}
		d, ok, err := s.domains().Of(ctx, *domain, "")
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, domainUnknown(*domain)
		}
		if wgName != nil && *wgName != d.Target {
			return nil, validation("Custom domain name %s is not associated with workgroup %s.", *domain, *wgName)
		}
		wgName = &d.Target
	}
	if err := checkName("workgroupName", *wgName); err != nil {
		return nil, err
	}
	duration, ok := shiftkey.CredentialDuration(dur)
	if !ok {
		return nil, validation("1 validation error detected: Value '%d' at 'durationSeconds' failed to satisfy constraint: Member must have value between 900 and 3600", *dur)
	}
	var dbName string
	if db != nil {
		// The database is named as Redshift names it, and folded once here.
		var err error
		if dbName, err = dbname.Normalize("dbName", *db, false); err != nil {
			return nil, validation("1 validation error detected: Value at 'dbName' failed to satisfy constraint: %s", err.Error())
		}
	}
	w, err := s.regionWorkgroup(ctx, c, *wgName)
	if domain != nil && shiftkey.ErrorCode(err) == shiftkey.CodeResourceNotFound {
		// The domain's workgroup is not of the caller's region: answered
		// as an unknown domain, not naming a workgroup the caller never
		// gave (as Redshift answers for a cluster's domain).
		return nil, domainUnknown(*domain)
	}
	if err != nil {
		return nil, err
	}
	if err := s.authorize(ctx, c, "GetCredentials", s.workgroupARN(c, w.ID)); err != nil {
		return nil, err
	}
	// Its logins would fail (08006): refused, as Serverless refuses a
	// call on a workgroup an operation is running on (ConflictException).
	if st := s.workgroupStatus(w); st != "AVAILABLE" {
		return nil, shiftkey.Errorf(shiftkey.CodeConflict, "The workgroup %s is not available: its status is %s. Try again once GetWorkgroup says AVAILABLE.", w.Name, st)
	}
	creds, err := s.Issuer.IssueForPrincipal(ctx, c, w.CredentialScope(), w.ID, dbName, duration)
	if shiftkey.ErrorCode(err) == shiftkey.CodeResourceNotFound {
		// Deleted while the credential was issued: named as the caller named it.
		return nil, shiftkey.WorkgroupNotFound(w.Name)
	}
	if err != nil {
		return nil, err
	}
	return struct {
		DBUser          string       `json:"dbUser"`
		DBPassword      string       `json:"dbPassword"`
		Expiration      epochSeconds `json:"expiration"`
		NextRefreshTime epochSeconds `json:"nextRefreshTime"`
	}{creds.DBUser, creds.DBPassword, epochSeconds(creds.Expiration), epochSeconds(creds.NextRefreshTime)}, nil
}
