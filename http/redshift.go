package http

import (
	"bytes"
	"context"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/awsquery"
	"github.com/shiftkey/shiftkey/redshift"
)

// form returns the Query parameters of a call: the body of a POST, the URL
// query of a GET.
func (c *call) form() (url.Values, error) {
	raw := c.r.URL.RawQuery
	if c.r.Method == "POST" {
		raw = string(c.body)
	}
	v, err := awsquery.ParseForm(raw)
	if err != nil {
		e := err.(*awsquery.Error)
		return nil, &shiftkey.Error{Code: e.Code, Message: e.Message}
	}
	return v, nil
}

// serveQuery runs a Query-protocol service whose operations decode their
// own parameters.
func (s *Server) serveQuery(c *call, ns string, handle func(context.Context, *shiftkey.Caller, string, url.Values) (any, error)) {
	v, err := c.form()
	if err != nil {
		s.writeError(c, err)
		return
	}
	action := v.Get("Action")
	if action == "" {
		s.writeError(c, shiftkey.Errorf(shiftkey.CodeMissingAction, "The request must contain the parameter Action."))
		return
	}
	result, err := handle(c.r.Context(), c.caller, action, v)
	if err != nil {
		s.writeError(c, err)
		return
	}
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

// redshiftAction dispatches a Redshift Query action.
func (s *Server) redshiftAction(c *call) func(context.Context, *shiftkey.Caller, string, url.Values) (any, error) {
	return func(_ context.Context, _ *shiftkey.Caller, action string, v url.Values) (any, error) {
		switch action {
		case "GetClusterCredentials":
			return s.getClusterCredentials(c, v)
		case "GetClusterCredentialsWithIAM":
			return s.getClusterCredentialsWithIAM(c, v)
		case "DescribeClusters":
			return s.describeClusters(c, v)
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
		e := err.(*awsquery.Error)
		return nil, &shiftkey.Error{Code: e.Code, Message: e.Message}
	}
	return items, nil
}

// xmlTime is the timestamp form AWS sends in XML: milliseconds, UTC, "Z".
func xmlTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

type clusterCredentialsXML struct {
	DbUser     string
	DbPassword string
	Expiration string
}

func (s *Server) getClusterCredentials(c *call, v url.Values) (any, error) {
	in := &redshift.GetClusterCredentialsInput{
		DBUser:            optString(v, "DbUser"),
		DBName:            optString(v, "DbName"),
		ClusterIdentifier: optString(v, "ClusterIdentifier"),
		CustomDomainName:  optString(v, "CustomDomainName"),
	}
	var err error
	if in.DurationSeconds, err = optInt(v, "DurationSeconds"); err != nil {
		return nil, err
	}
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
	s.logger().InfoContext(c.r.Context(), "credential issued", "request_id", c.requestID,
		"principal", c.caller.Principal.ARN, "cluster", derefOr(in.ClusterIdentifier, ""), "db_user", out.DBUser,
		"expires_at", out.Expiration)
	return clusterCredentialsXML{DbUser: out.DBUser, DbPassword: out.DBPassword, Expiration: xmlTime(out.Expiration)}, nil
}

type clusterExtendedCredentialsXML struct {
	DbUser          string
	DbPassword      string
	Expiration      string
	NextRefreshTime string
}

func (s *Server) getClusterCredentialsWithIAM(c *call, v url.Values) (any, error) {
	in := &redshift.GetClusterCredentialsWithIAMInput{
		DBName:            optString(v, "DbName"),
		ClusterIdentifier: optString(v, "ClusterIdentifier"),
		CustomDomainName:  optString(v, "CustomDomainName"),
	}
	var err error
	if in.DurationSeconds, err = optInt(v, "DurationSeconds"); err != nil {
		return nil, err
	}
	out, err := s.Redshift.GetClusterCredentialsWithIAM(c.r.Context(), c.caller, in)
	if err != nil {
		return nil, err
	}
	s.logger().InfoContext(c.r.Context(), "credential issued", "request_id", c.requestID,
		"principal", c.caller.Principal.ARN, "cluster", derefOr(in.ClusterIdentifier, ""), "db_user", out.DBUser,
		"expires_at", out.Expiration)
	return clusterExtendedCredentialsXML{DbUser: out.DBUser, DbPassword: out.DBPassword,
		Expiration: xmlTime(out.Expiration), NextRefreshTime: xmlTime(out.NextRefreshTime)}, nil
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
	Endpoint                  endpointXML
	ClusterCreateTime         string
	NumberOfNodes             int
	PubliclyAccessible        bool
	Encrypted                 bool
	ClusterNamespaceArn       string
	PendingModifiedValues     struct{}
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
	out, err := s.Redshift.DescribeClusters(c.r.Context(), c.caller, in)
	if err != nil {
		return nil, err
	}
	res := describeClustersXML{Clusters: []clusterXML{}, Marker: out.Marker}
	for _, cl := range out.Clusters {
		res.Clusters = append(res.Clusters, clusterXML{
			ClusterIdentifier:         cl.Identifier,
			NodeType:                  cl.NodeType,
			ClusterStatus:             cl.Status,
			ClusterAvailabilityStatus: availability(cl.Status),
			MasterUsername:            cl.MasterUsername,
			DBName:                    cl.DBName,
			Endpoint:                  endpointXML{Address: cl.Endpoint.Address, Port: cl.Endpoint.Port},
			ClusterCreateTime:         xmlTime(cl.CreatedAt),
			NumberOfNodes:             1,
			ClusterNamespaceArn:       "arn:aws:redshift:" + c.caller.Region + ":" + c.caller.Principal.Account + ":namespace:" + cl.NamespaceID,
		})
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
	}
	return "Unavailable"
}
