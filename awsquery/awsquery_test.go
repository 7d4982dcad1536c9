package awsquery

import (
	"bytes"
	"encoding/xml"
	"slices"
	"testing"
)

func TestList(t *testing.T) {
	tests := []struct {
		name        string
		form        string
		want        []string
		present     bool
		wantErrCode string
	}{
		{"absent", "Action=X", nil, false, ""},
		{"empty list", "DbGroups=", nil, true, ""},
		{"locationName members in order", "DbGroups.DbGroup.2=b&DbGroups.DbGroup.1=a&DbGroups.DbGroup.10=c", []string{"a", "b", "c"}, true, ""},
		{"member spelling", "DbGroups.member.1=a&DbGroups.member.2=b", []string{"a", "b"}, true, ""},
		{"plus decodes to space", "DbGroups.DbGroup.1=a+b", []string{"a b"}, true, ""},
		{"percent-20 decodes to space", "DbGroups.DbGroup.1=a%20b", []string{"a b"}, true, ""},
		{"index zero", "DbGroups.DbGroup.0=a", nil, true, "InvalidParameterValue"},
		{"leading zero index", "DbGroups.DbGroup.01=a", nil, true, "InvalidParameterValue"},
		{"non-numeric index", "DbGroups.DbGroup.x=a", nil, true, "InvalidParameterValue"},
		{"unknown member", "DbGroups.Group.1=a", nil, true, "InvalidParameterValue"},
		{"index twice via both spellings", "DbGroups.DbGroup.1=a&DbGroups.member.1=b", nil, true, "InvalidParameterValue"},
		{"bare list with value", "DbGroups=a", nil, true, "InvalidParameterValue"},
		{"empty list with members too", "DbGroups=&DbGroups.DbGroup.1=a", nil, true, "InvalidParameterValue"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := ParseForm(tt.form)
			if err != nil {
				t.Fatal(err)
			}
			got, present, err := List(v, "DbGroups", "DbGroup")
			if tt.wantErrCode != "" {
				e, ok := err.(*Error)
				if !ok || e.Code != tt.wantErrCode {
					t.Fatalf("err = %v, want code %s", err, tt.wantErrCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) || present != tt.present {
				t.Fatalf("got %q present=%v, want %q present=%v", got, present, tt.want, tt.present)
			}
		})
	}
}

func TestParseFormRefusesRepeatsAndBadEscapes(t *testing.T) {
	if _, err := ParseForm("DbUser=a&DbUser=b"); err == nil {
		t.Fatal("repeated key accepted")
	}
	if _, err := ParseForm("DbUser=%zz"); err == nil || err.(*Error).Code != "MalformedQueryString" {
		t.Fatalf("bad escape: %v", err)
	}
}

func TestEnvelopes(t *testing.T) {
	var b bytes.Buffer
	type res struct{ DbUser string }
	if err := WriteResult(&b, "http://redshift.amazonaws.com/doc/2012-12-01/", "GetClusterCredentials", "req-1", res{"IAM:a<b"}); err != nil {
		t.Fatal(err)
	}
	want := `<GetClusterCredentialsResponse xmlns="http://redshift.amazonaws.com/doc/2012-12-01/"><GetClusterCredentialsResult><DbUser>IAM:a&lt;b</DbUser></GetClusterCredentialsResult><ResponseMetadata><RequestId>req-1</RequestId></ResponseMetadata></GetClusterCredentialsResponse>`
	if b.String() != want {
		t.Fatalf("result envelope:\n got %s\nwant %s", b.String(), want)
	}
	b.Reset()
	if err := WriteError(&b, "ns", "ClusterNotFound", "Cluster x not found.", "req-2", false); err != nil {
		t.Fatal(err)
	}
	var e struct {
		Type      string `xml:"Error>Type"`
		Code      string `xml:"Error>Code"`
		Message   string `xml:"Error>Message"`
		RequestID string `xml:"RequestId"`
	}
	if err := xml.Unmarshal(b.Bytes(), &e); err != nil {
		t.Fatal(err)
	}
	if e.Type != "Sender" || e.Code != "ClusterNotFound" || e.Message != "Cluster x not found." || e.RequestID != "req-2" {
		t.Fatalf("error envelope: %+v from %s", e, b.String())
	}
}

func TestStructs(t *testing.T) {
	v, _ := ParseForm("Tags.member.2.Key=b&Tags.member.2.Value=2&Tags.member.1.Key=a&Tags.member.1.Value=1")
	got, present, err := Structs(v, "Tags", "member")
	if err != nil || !present || len(got) != 2 || got[0]["Key"] != "a" || got[1]["Value"] != "2" {
		t.Fatalf("%v %v %v", got, present, err)
	}
	v, _ = ParseForm("Tags.member.x.Key=a")
	if _, _, err := Structs(v, "Tags", "member"); err == nil {
		t.Fatal("bad index accepted")
	}
}

// A field of one element given under both member spellings is refused,
// as List refuses an index given twice: otherwise which one the call used
// was map order's choice, and the audit log recorded both.
func TestStructsFieldUnderBothSpellings(t *testing.T) {
	v, _ := ParseForm("Tags.Tag.1.Key=a&Tags.Tag.1.Value=1&Tags.member.1.Key=b")
	for range 20 { // map order varies: each try must refuse
		if got, _, err := Structs(v, "Tags", "Tag"); err == nil || err.(*Error).Code != "InvalidParameterValue" {
			t.Fatalf("Tags.Tag.1.Key and Tags.member.1.Key: %v %v, want InvalidParameterValue", got, err)
		}
	}
	// An empty list with elements too says two things.
	v, _ = ParseForm("Tags=&Tags.Tag.1.Key=a")
	if got, _, err := Structs(v, "Tags", "Tag"); err == nil {
		t.Fatalf("Tags= and Tags.Tag.1.Key: %v, want InvalidParameterValue", got)
	}
	// Different fields of one element may mix the spellings.
	v, _ = ParseForm("Tags.Tag.1.Key=a&Tags.member.1.Value=1")
	if got, _, err := Structs(v, "Tags", "Tag"); err != nil || len(got) != 1 || got[0]["Key"] != "a" || got[0]["Value"] != "1" {
		t.Fatalf("mixed spellings of different fields: %v %v", got, err)
	}
}

// List indexes are 1, 2, … as written: no sign, no leading zero.
func TestIndex(t *testing.T) {
	for s, want := range map[string]int{"1": 1, "12": 12, "0": 0, "01": 0, "+1": 0, "-1": 0, " 1": 0, "": 0, "x": 0} {
		n, ok := Index(s)
		if ok != (want > 0) || n != want {
			t.Errorf("Index(%q) = %d, %v; want %d", s, n, ok, want)
		}
	}
}
