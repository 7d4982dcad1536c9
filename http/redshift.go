package http

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/awsquery"
	"github.com/shiftkey/shiftkey/redshift"
)

// form returns the Query parameters of a call: the body of a header-signed
// POST, else the URL query. A presigned request's signature covers only its
// query string (sigv4 refuses one with a body), so its parameters come from
// there whatever the method.
func (c *call) form() (url.Values, error) {
	raw := c.r.URL.RawQuery
	if c.r.Method == "POST" && !c.presigned {
		raw = string(c.body)
	}
	v, err := awsquery.ParseForm(raw)
	if err != nil {
		return nil, queryError(err)
	}
	return v, nil
}

// queryError is an awsquery decoding error as the client sees it.
func queryError(err error) error {
	e := err.(*awsquery.Error)
	return &shiftkey.Error{Code: e.Code, Message: e.Message}
}

// Query API versions, one per service, as the SDKs send them.
const (
	redshiftVersion = "2012-12-01"
	iamVersion      = "2010-05-08"
	stsVersion      = "2011-06-15"
)

// serveQuery runs a Query-protocol service whose operations decode their
// own parameters. AWS resolves an operation by action and version, so an
// action under a missing or other version is not found.
func (s *Server) serveQuery(c *call, ns, version string, handle func(context.Context, *shiftkey.Caller, string, url.Values) (any, error)) {
	v, err := c.form()
	if err != nil {
		s.writeError(c, err)
		return
	}
	action := v.Get("Action")
	c.op, c.params = action, v
	if action == "" {
		s.writeError(c, shiftkey.Errorf(shiftkey.CodeMissingAction, "The request must contain the parameter Action."))
		return
	}
	if got := v.Get("Version"); got != version {
		if got == "" {
			got = "NO_VERSION_SPECIFIED"
		}
		s.writeError(c, shiftkey.Errorf(shiftkey.CodeInvalidAction, "Could not find operation %s for version %s", action, got))
		return
	}
	result, err := handle(c.r.Context(), c.caller, action, v)
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.result = result
	s.writeResult(c, ns, action, result)
}

func (s *Server) writeResult(c *call, ns, action string, result any) {
	var buf bytes.Buffer
	if err := awsquery.WriteResult(&buf, ns, action, c.requestID, result); err != nil {
		s.writeError(c, err)
		return
	}
	c.w.Header().Set("Content-Type", "text/xml")
	c.w.Write(buf.Bytes())
}

// redshiftActions are the Redshift Query actions, each decoding its own
// parameters.
var redshiftActions = map[string]func(*Server, *call, url.Values) (any, error){
	"GetClusterCredentials":        (*Server).getClusterCredentials,
	"GetClusterCredentialsWithIAM": (*Server).getClusterCredentialsWithIAM,
	"DescribeClusters":             (*Server).describeClusters,
	"CreateCluster":                (*Server).createCluster,
	"ModifyCluster":                (*Server).modifyCluster,
	"DeleteCluster":                (*Server).deleteCluster,
	"CreateTags":                   (*Server).createTags,
	"DeleteTags":                   (*Server).deleteTags,
	"DescribeTags":                 (*Server).describeTags,
	"CreateCustomDomainAssociation": func(s *Server, c *call, v url.Values) (any, error) {
		return s.associateDomain(c, v, false)
	},
	"ModifyCustomDomainAssociation": func(s *Server, c *call, v url.Values) (any, error) {
		return s.associateDomain(c, v, true)
	},
	"DeleteCustomDomainAssociation": func(s *Server, c *call, v url.Values) (any, error) {
		return nil, s.Redshift.DeleteDomain(c.r.Context(), c.caller, optString(v, "ClusterIdentifier"), optString(v, "CustomDomainName"))
	},
	"DescribeCustomDomainAssociations": (*Server).describeDomains,
}

// redshiftAction dispatches a Redshift Query action.
func (s *Server) redshiftAction(c *call) func(context.Context, *shiftkey.Caller, string, url.Values) (any, error) {
	return func(_ context.Context, _ *shiftkey.Caller, action string, v url.Values) (any, error) {
		if h, ok := redshiftActions[action]; ok {
			return h(s, c, v)
		}
		return nil, shiftkey.Errorf(shiftkey.CodeInvalidAction, "The action %s is not valid for this web service.", action)
	}
}

// Scalar decoding of Query parameters.

func optString(v url.Values, name string) *string {
	if vals, ok := v[name]; ok {
		return &vals[0]
	}
	return nil
}

func missingParameter(name string) error {
	return shiftkey.Errorf(shiftkey.CodeMissingParameter, "The request must contain the parameter %s.", name)
}

func required(v url.Values, name string) (string, error) {
	if p := optString(v, name); p != nil {
		return *p, nil
	}
	return "", missingParameter(name)
}

func optInt(v url.Values, name string) (*int, error) {
	s := optString(v, name)
	if s == nil {
		return nil, nil
	}
	n, err := strconv.Atoi(*s)
	if err != nil {
		return nil, shiftkey.Errorf(shiftkey.CodeInvalidParameterValue, "Invalid value for parameter %s: %q is not an integer.", name, *s)
	}
	return &n, nil
}

func optBool(v url.Values, name string) (*bool, error) {
	s := optString(v, name)
	if s == nil {
		return nil, nil
	}
	switch strings.ToLower(*s) {
	case "true":
		b := true
		return &b, nil
	case "false":
		b := false
		return &b, nil
	}
	return nil, shiftkey.Errorf(shiftkey.CodeInvalidParameterValue, "Invalid value for parameter %s: %q is not a boolean.", name, *s)
}

func listParam(v url.Values, name, member string) ([]string, error) {
	items, _, err := awsquery.List(v, name, member)
	if err != nil {
		return nil, queryError(err)
	}
	return items, nil
}

// xmlTime is the timestamp form AWS sends in XML: milliseconds, UTC, "Z".
func xmlTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// credentialTarget decodes what both credential calls name.
func credentialTarget(v url.Values) (redshift.CredentialTarget, error) {
	t := redshift.CredentialTarget{
		DBName:            optString(v, "DbName"),
		ClusterIdentifier: optString(v, "ClusterIdentifier"),
		CustomDomainName:  optString(v, "CustomDomainName"),
	}
	var err error
	t.DurationSeconds, err = optInt(v, "DurationSeconds")
	return t, err
}

// logIssued records who was issued a credential for whom; never the
// password. At debug level: an issue is routine (thousands a second), and
// its durable trace is the credential row with principal and request id.
func (s *Server) logIssued(c *call, t redshift.CredentialTarget, dbUser string, expires time.Time) {
	s.logger().DebugContext(c.r.Context(), "credential issued", "request_id", c.requestID,
		"principal", c.caller.Principal.ARN, "cluster", derefOr(t.ClusterIdentifier, ""), "db_user", dbUser,
		"expires_at", expires)
}

type clusterCredentialsXML struct {
	DbUser     string
	DbPassword string
	Expiration string
}

func (s *Server) getClusterCredentials(c *call, v url.Values) (any, error) {
	t, err := credentialTarget(v)
	if err != nil {
		return nil, err
	}
	in := &redshift.GetClusterCredentialsInput{CredentialTarget: t, DBUser: optString(v, "DbUser")}
	if in.AutoCreate, err = optBool(v, "AutoCreate"); err != nil {
		return nil, err
	}
	if in.DBGroups, err = listParam(v, "DbGroups", "DbGroup"); err != nil {
		return nil, err
	}
	out, err := s.Redshift.GetClusterCredentials(c.r.Context(), c.caller, in)
	if err != nil {
		return nil, err
	}
	s.logIssued(c, t, out.DBUser, out.Expiration)
	return clusterCredentialsXML{DbUser: out.DBUser, DbPassword: out.DBPassword, Expiration: xmlTime(out.Expiration)}, nil
}

type clusterExtendedCredentialsXML struct {
	clusterCredentialsXML
	NextRefreshTime string
}

func (s *Server) getClusterCredentialsWithIAM(c *call, v url.Values) (any, error) {
	t, err := credentialTarget(v)
	if err != nil {
		return nil, err
	}
	out, err := s.Redshift.GetClusterCredentialsWithIAM(c.r.Context(), c.caller, &redshift.GetClusterCredentialsWithIAMInput{CredentialTarget: t})
	if err != nil {
		return nil, err
	}
	s.logIssued(c, t, out.DBUser, out.Expiration)
	return clusterExtendedCredentialsXML{clusterCredentialsXML{DbUser: out.DBUser, DbPassword: out.DBPassword, Expiration: xmlTime(out.Expiration)},
		xmlTime(out.NextRefreshTime)}, nil
}

func derefOr(p *string, def string) string {
	if p == nil {
		return def
	}
	return *p
}

type endpointXML struct {
	Address string
	Port    int
}

type clusterXML struct {
	ClusterIdentifier         string
	NodeType                  string
	ClusterStatus             string
	ClusterAvailabilityStatus string
	MasterUsername            string
	DBName                    string
	Endpoint                  *endpointXML `xml:",omitempty"` // none while creating
	ClusterCreateTime         string
	NumberOfNodes             int
	PubliclyAccessible        bool
	Encrypted                 bool
	ClusterNamespaceArn       string
	PendingModifiedValues     struct{}
	Tags                      []tagXML `xml:"Tags>Tag"`
	// The cluster's custom domain association, when it has one.
	CustomDomainName                  string `xml:",omitempty"`
	CustomDomainCertificateArn        string `xml:",omitempty"`
	CustomDomainCertificateExpiryDate string `xml:",omitempty"`
}

type tagXML struct {
	Key   string
	Value string
}

// clusterXML is the Cluster shape of cl; domains are the clusters' custom
// domain associations (Service.ClusterDomains), nil to read them here.
func (s *Server) clusterXML(c *call, cl *shiftkey.Cluster, domains map[string]*shiftkey.CustomDomain) (clusterXML, error) {
	tags, err := s.Redshift.ClusterTags(c.r.Context(), cl.Identifier)
	if err != nil {
		return clusterXML{}, err
	}
	if domains == nil {
		if domains, err = s.Redshift.ClusterDomains(c.r.Context()); err != nil {
			return clusterXML{}, err
		}
	}
	x := clusterXML{
		ClusterIdentifier:         cl.Identifier,
		NodeType:                  cl.NodeType,
		ClusterStatus:             cl.Status,
		ClusterAvailabilityStatus: availability(cl.Status),
		MasterUsername:            cl.MasterUsername,
		DBName:                    cl.DBName,
		Endpoint:                  &endpointXML{Address: cl.Endpoint.Address, Port: cl.Endpoint.Port},
		ClusterCreateTime:         xmlTime(cl.CreatedAt),
		NumberOfNodes:             1,
		ClusterNamespaceArn:       "arn:aws:redshift:" + c.caller.Region + ":" + c.caller.Principal.Account + ":namespace:" + cl.NamespaceID,
		Tags:                      tagsXML(tags),
	}
	if d := domains[cl.Identifier]; d != nil {
		x.CustomDomainName, x.CustomDomainCertificateArn, x.CustomDomainCertificateExpiryDate = d.Name, d.CertificateARN, xmlTime(d.CertExpiry)
	}
	return x, nil
}

func tagsXML(tags []shiftkey.Tag) []tagXML {
	out := make([]tagXML, 0, len(tags))
	for _, t := range tags {
		out = append(out, tagXML{t.Key, t.Value})
	}
	return out
}

type clusterResultXML struct {
	Cluster clusterXML
}

func tagsParam(v url.Values) ([]shiftkey.Tag, error) {
	items, _, err := awsquery.Structs(v, "Tags", "Tag")
	if err != nil {
		return nil, queryError(err)
	}
	var tags []shiftkey.Tag
	for _, it := range items {
		k, val := it["Key"], it["Value"]
		if k == "" || len(k) > 128 || len(val) > 256 || strings.HasPrefix(strings.ToLower(k), "aws:") {
			return nil, shiftkey.Errorf("InvalidTagFault", "Tag keys must be 1-128 characters and not start with aws:, values at most 256: %q.", k)
		}
		tags = append(tags, shiftkey.Tag{Key: k, Value: val})
	}
	return tags, nil
}

func (s *Server) createCluster(c *call, v url.Values) (any, error) {
	in := &redshift.CreateClusterInput{
		ClusterIdentifier:  optString(v, "ClusterIdentifier"),
		NodeType:           optString(v, "NodeType"),
		MasterUsername:     optString(v, "MasterUsername"),
		MasterUserPassword: optString(v, "MasterUserPassword"),
		DBName:             optString(v, "DBName"),
	}
	var err error
	if in.Port, err = optInt(v, "Port"); err != nil {
		return nil, err
	}
	if in.NumberOfNodes, err = optInt(v, "NumberOfNodes"); err != nil {
		return nil, err
	}
	if in.Tags, err = tagsParam(v); err != nil {
		return nil, err
	}
	cl, err := s.Redshift.CreateCluster(c.r.Context(), c.caller, in)
	if err != nil {
		return nil, err
	}
	x, err := s.clusterXML(c, cl, nil)
	if err != nil {
		return nil, err
	}
	x.Endpoint = nil // AWS has no endpoint while creating
	return clusterResultXML{x}, nil
}

func (s *Server) modifyCluster(c *call, v url.Values) (any, error) {
	in := &redshift.ModifyClusterInput{ClusterIdentifier: optString(v, "ClusterIdentifier"), MasterUserPassword: optString(v, "MasterUserPassword")}
	var err error
	if in.Port, err = optInt(v, "Port"); err != nil {
		return nil, err
	}
	cl, err := s.Redshift.ModifyCluster(c.r.Context(), c.caller, in)
	if err != nil {
		return nil, err
	}
	x, err := s.clusterXML(c, cl, nil)
	return clusterResultXML{x}, err
}

func (s *Server) deleteCluster(c *call, v url.Values) (any, error) {
	skip, err := optBool(v, "SkipFinalClusterSnapshot")
	if err != nil {
		return nil, err
	}
	tags, err := s.Redshift.ClusterTags(c.r.Context(), derefOr(optString(v, "ClusterIdentifier"), ""))
	if err != nil {
		return nil, err
	}
	domains, err := s.Redshift.ClusterDomains(c.r.Context())
	if err != nil {
		return nil, err
	}
	cl, err := s.Redshift.DeleteCluster(c.r.Context(), c.caller, optString(v, "ClusterIdentifier"), skip, optString(v, "FinalClusterSnapshotIdentifier"))
	if err != nil {
		return nil, err
	}
	// The cluster's tags and custom domain are gone with it: answer with
	// those read before.
	x, err := s.clusterXML(c, cl, domains)
	x.Tags = tagsXML(tags)
	return clusterResultXML{x}, err
}

func (s *Server) createTags(c *call, v url.Values) (any, error) {
	arn, err := required(v, "ResourceName")
	if err != nil {
		return nil, err
	}
	tags, err := tagsParam(v)
	if err != nil {
		return nil, err
	}
	if len(tags) == 0 {
		return nil, missingParameter("Tags")
	}
	return nil, s.Redshift.CreateTags(c.r.Context(), c.caller, arn, tags)
}

func (s *Server) deleteTags(c *call, v url.Values) (any, error) {
	arn, err := required(v, "ResourceName")
	if err != nil {
		return nil, err
	}
	keys, err := listParam(v, "TagKeys", "TagKey")
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, missingParameter("TagKeys")
	}
	return nil, s.Redshift.DeleteTags(c.r.Context(), c.caller, arn, keys)
}

type taggedResourceXML struct {
	Tag          tagXML
	ResourceName string
	ResourceType string
}

func (s *Server) describeTags(c *call, v url.Values) (any, error) {
	res := struct {
		TaggedResources []taggedResourceXML `xml:"TaggedResources>TaggedResource"`
		Marker          string              `xml:",omitempty"`
	}{[]taggedResourceXML{}, ""}
	max, err := optInt(v, "MaxRecords")
	if err != nil {
		return nil, err
	}
	if max != nil && *max < 1 {
		return nil, shiftkey.Errorf(shiftkey.CodeInvalidParameterValue, "MaxRecords must be at least 1: %d.", *max)
	}
	if rt := optString(v, "ResourceType"); rt != nil && !strings.EqualFold(*rt, "cluster") {
		return res, nil // only clusters have tags here
	}
	keys, err := listParam(v, "TagKeys", "TagKey")
	if err != nil {
		return nil, err
	}
	values, err := listParam(v, "TagValues", "TagValue")
	if err != nil {
		return nil, err
	}
	tagged, err := s.Redshift.DescribeTags(c.r.Context(), c.caller, optString(v, "ResourceName"), keys, values)
	if err != nil {
		return nil, err
	}
	for _, tc := range tagged {
		arn := redshift.ClusterARN(c.caller.Region, c.caller.Principal.Account, tc.Cluster.Identifier)
		for _, t := range tc.Tags {
			res.TaggedResources = append(res.TaggedResources, taggedResourceXML{tagXML{t.Key, t.Value}, arn, "cluster"})
		}
	}
	// Pages of MaxRecords in (resource, key) order; the Marker names the
	// pair the next page starts with, so a deletion between pages skips
	// nothing else.
	pos := func(r taggedResourceXML) string { return r.ResourceName + "\x00" + r.Tag.Key }
	slices.SortFunc(res.TaggedResources, func(a, b taggedResourceXML) int { return strings.Compare(pos(a), pos(b)) })
	start := 0
	if m := optString(v, "Marker"); m != nil && *m != "" {
		from, err := base64.RawURLEncoding.DecodeString(*m)
		if err != nil {
			return nil, shiftkey.Errorf(shiftkey.CodeInvalidParameterValue, "The Marker is not valid.")
		}
		start, _ = slices.BinarySearchFunc(res.TaggedResources, string(from), func(r taggedResourceXML, from string) int {
			return strings.Compare(pos(r), from)
		})
	}
	end := min(start+cmp.Or(derefInt(max), 100), len(res.TaggedResources))
	if end < len(res.TaggedResources) {
		res.Marker = base64.RawURLEncoding.EncodeToString([]byte(pos(res.TaggedResources[end])))
	}
	res.TaggedResources = res.TaggedResources[start:end]
	return res, nil
}

type describeClustersXML struct {
	Clusters []clusterXML `xml:"Clusters>Cluster"`
	Marker   string       `xml:",omitempty"`
}

func (s *Server) describeClusters(c *call, v url.Values) (any, error) {
	in := &redshift.DescribeClustersInput{
		ClusterIdentifier: optString(v, "ClusterIdentifier"),
		Marker:            optString(v, "Marker"),
	}
	var err error
	if in.MaxRecords, err = optInt(v, "MaxRecords"); err != nil {
		return nil, err
	}
	if in.TagKeys, err = listParam(v, "TagKeys", "TagKey"); err != nil {
		return nil, err
	}
	if in.TagValues, err = listParam(v, "TagValues", "TagValue"); err != nil {
		return nil, err
	}
	out, err := s.Redshift.DescribeClusters(c.r.Context(), c.caller, in)
	if err != nil {
		return nil, err
	}
	res := describeClustersXML{Clusters: []clusterXML{}, Marker: out.Marker}
	domains, err := s.Redshift.ClusterDomains(c.r.Context())
	if err != nil {
		return nil, err
	}
	for _, cl := range out.Clusters {
		x, err := s.clusterXML(c, cl, domains)
		if err != nil {
			return nil, err
		}
		res.Clusters = append(res.Clusters, x)
	}
	return res, nil
}

func availability(status string) string {
	switch status {
	case "available":
		return "Available"
	case "creating", "modifying":
		return "Modifying"
	case "deleting":
		return "Unavailable"
	case "hardware-failure":
		return "Failed"
	}
	return "Unavailable"
}

type domainAssociationXML struct {
	CustomDomainName           string
	CustomDomainCertificateArn string
	ClusterIdentifier          string
	CustomDomainCertExpiryTime string
}

func (s *Server) associateDomain(c *call, v url.Values, modify bool) (any, error) {
	d, err := s.Redshift.AssociateDomain(c.r.Context(), c.caller, optString(v, "CustomDomainName"), optString(v, "CustomDomainCertificateArn"),
		optString(v, "ClusterIdentifier"), modify)
	if err != nil {
		return nil, err
	}
	return domainAssociationXML{d.Name, d.CertificateARN, d.Target, xmlTime(d.CertExpiry)}, nil
}

type certificateAssociationXML struct {
	CustomDomainName  string
	ClusterIdentifier string
}

type associationXML struct {
	CustomDomainCertificateArn        string
	CustomDomainCertificateExpiryDate string
	CertificateAssociations           []certificateAssociationXML `xml:"CertificateAssociations>CertificateAssociation"`
}

func (s *Server) describeDomains(c *call, v url.Values) (any, error) {
	max, err := optInt(v, "MaxRecords")
	if err != nil {
		return nil, err
	}
	if max != nil && (*max < 20 || *max > 100) {
		return nil, shiftkey.Errorf(shiftkey.CodeInvalidParameterValue, "MaxRecords must be between 20 and 100: %d.", *max)
	}
	domains, err := s.Redshift.DescribeDomains(c.r.Context(), c.caller, optString(v, "CustomDomainName"), optString(v, "CustomDomainCertificateArn"))
	if err != nil {
		return nil, err
	}
	// One Association per certificate, listing the domains that use it.
	res := struct {
		Associations []associationXML `xml:"Associations>Association"`
		Marker       string           `xml:",omitempty"`
	}{[]associationXML{}, ""}
	byCert := map[string]int{}
	for _, d := range domains {
		i, ok := byCert[d.CertificateARN]
		if !ok {
			i = len(res.Associations)
			byCert[d.CertificateARN] = i
			res.Associations = append(res.Associations, associationXML{CustomDomainCertificateArn: d.CertificateARN, CustomDomainCertificateExpiryDate: xmlTime(d.CertExpiry)})
		}
		res.Associations[i].CertificateAssociations = append(res.Associations[i].CertificateAssociations, certificateAssociationXML{d.Name, d.Target})
	}
	// Pages of MaxRecords associations in certificate order; the Marker is
	// the certificate the next page starts with, as DescribeClusters' is
	// the identifier.
	slices.SortFunc(res.Associations, func(a, b associationXML) int {
		return strings.Compare(a.CustomDomainCertificateArn, b.CustomDomainCertificateArn)
	})
	start := 0
	if m := optString(v, "Marker"); m != nil && *m != "" {
		start, _ = slices.BinarySearchFunc(res.Associations, *m, func(a associationXML, m string) int {
			return strings.Compare(a.CustomDomainCertificateArn, m)
		})
	}
	end := min(start+cmp.Or(derefInt(max), 100), len(res.Associations))
	if end < len(res.Associations) {
		res.Marker = res.Associations[end].CustomDomainCertificateArn
	}
	res.Associations = res.Associations[start:end]
	return res, nil
}

func derefInt(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}
