// Package awsquery implements the server side of the AWS Query protocol:
// form decoding (including list members) and the XML response and error
// envelopes that AWS SDKs parse.
package awsquery

import (
	"encoding/xml"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Error is a decoding failure with the AWS error code to send.
type Error struct{ Code, Message string }

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// ParseForm decodes a form-encoded request. Both "+" and "%20" decode to a
// space. A key given twice is refused: the Query protocol never repeats one,
// and silently picking one of them would hide a client bug.
func ParseForm(raw string) (url.Values, error) {
	v, err := url.ParseQuery(raw)
	if err != nil {
		return nil, &Error{Code: "MalformedQueryString", Message: "The query string is malformed."}
	}
	for k, vals := range v {
		if len(vals) > 1 {
			return nil, &Error{Code: "InvalidParameterValue", Message: fmt.Sprintf("The parameter %s was given more than once.", k)}
		}
	}
	return v, nil
}

// List reads the list parameter name whose members are encoded as
// name.member.N; SDKs use the model's member locationName instead of
// "member" (Redshift's DbGroups.DbGroup.N), so the member name is given too
// and both spellings are accepted. "name=" with an empty value is an empty
// list. present reports whether the list was given at all.
func List(v url.Values, name, member string) (items []string, present bool, err error) {
	if vals, ok := v[name]; ok {
		if len(vals) != 1 || vals[0] != "" {
			return nil, true, &Error{Code: "InvalidParameterValue", Message: fmt.Sprintf("The parameter %s must be given as %s.%s.N.", name, name, member)}
		}
		present = true
	}
	type item struct {
		n   int
		val string
	}
	var found []item
	for k, vals := range v {
		rest, ok := strings.CutPrefix(k, name+".")
		if !ok {
			continue
		}
		idx, ok := strings.CutPrefix(rest, member+".")
		if !ok {
			idx, ok = strings.CutPrefix(rest, "member.")
		}
		if !ok {
			return nil, true, &Error{Code: "InvalidParameterValue", Message: fmt.Sprintf("Unknown parameter %s.", k)}
		}
		n, ok := Index(idx)
		if !ok {
			return nil, true, &Error{Code: "InvalidParameterValue", Message: fmt.Sprintf("Invalid list index in parameter %s.", k)}
		}
		found = append(found, item{n, vals[0]})
	}
	if len(found) == 0 {
		return nil, present, nil
	}
	if present {
		return nil, true, bothEmptyAndNot(name)
	}
	slices.SortFunc(found, func(a, b item) int { return a.n - b.n })
	for i := 1; i < len(found); i++ {
		if found[i].n == found[i-1].n {
			return nil, true, &Error{Code: "InvalidParameterValue", Message: fmt.Sprintf("The list %s has index %d twice.", name, found[i].n)}
		}
	}
	items = make([]string, len(found))
	for i, it := range found {
		items[i] = it.val
	}
	return items, true, nil
}

// bothEmptyAndNot refuses "name=" (an empty list) sent with elements of
// name: the call would use the elements, and the audit record show an
// empty list beside them. No SDK sends both.
func bothEmptyAndNot(name string) error {
	return &Error{Code: "InvalidParameterValue", Message: fmt.Sprintf("The list %s is given both empty (%s=) and with elements.", name, name)}
}

// Index reads a list index of the Query protocol: 1, 2, …, without
// leading zeros.
func Index(s string) (int, bool) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || s[0] == '0' || s[0] == '+' {
		return 0, false
	}
	return n, true
}

// WriteResult writes a success envelope:
//
//	<ActionResponse xmlns=ns><ActionResult>…result…</ActionResult>
//	<ResponseMetadata><RequestId>id</RequestId></ResponseMetadata></ActionResponse>
//
// result is marshalled with encoding/xml as the children of ActionResult; the
// wrapper is mandatory, SDKs fail without it.
func WriteResult(w io.Writer, ns, action, requestID string, result any) error {
	enc := xml.NewEncoder(w)
	root := xml.StartElement{Name: xml.Name{Local: action + "Response"}, Attr: []xml.Attr{{Name: xml.Name{Local: "xmlns"}, Value: ns}}}
	if err := enc.EncodeToken(root); err != nil {
		return err
	}
	wrapper := xml.StartElement{Name: xml.Name{Local: action + "Result"}}
	if result == nil {
		if err := enc.EncodeToken(wrapper); err != nil {
			return err
		}
		if err := enc.EncodeToken(wrapper.End()); err != nil {
			return err
		}
	} else if err := enc.EncodeElement(result, wrapper); err != nil {
		return err
	}
	meta := struct {
		RequestID string `xml:"RequestId"`
	}{requestID}
	if err := enc.EncodeElement(meta, xml.StartElement{Name: xml.Name{Local: "ResponseMetadata"}}); err != nil {
		return err
	}
	if err := enc.EncodeToken(root.End()); err != nil {
		return err
	}
	return enc.Flush()
}

type errorResponse struct {
	XMLName   xml.Name `xml:"ErrorResponse"`
	Xmlns     string   `xml:"xmlns,attr"`
	Type      string   `xml:"Error>Type"`
	Code      string   `xml:"Error>Code"`
	Message   string   `xml:"Error>Message"`
	RequestID string   `xml:"RequestId"`
}

// WriteError writes the Query error envelope; Error and RequestId must be
// direct children of ErrorResponse for the SDKs to find them. server marks
// a 5xx fault (Type Receiver instead of Sender).
func WriteError(w io.Writer, ns, code, message, requestID string, server bool) error {
	typ := "Sender"
	if server {
		typ = "Receiver"
	}
	return xml.NewEncoder(w).Encode(errorResponse{Xmlns: ns, Type: typ, Code: code, Message: message, RequestID: requestID})
}

// Structs reads a list of structures encoded as name.member.N.Field (or
// name.<member>.N.Field): one map of field to value per element, in index
// order. present reports whether the list was given at all.
func Structs(v url.Values, name, member string) (items []map[string]string, present bool, err error) {
	byIndex := map[int]map[string]string{}
	if vals, ok := v[name]; ok {
		if len(vals) != 1 || vals[0] != "" {
			return nil, true, &Error{Code: "InvalidParameterValue", Message: fmt.Sprintf("The parameter %s must be given as %s.%s.N.Field.", name, name, member)}
		}
		present = true
	}
	for k, vals := range v {
		rest, ok := strings.CutPrefix(k, name+".")
		if !ok {
			continue
		}
		present = true
		idx, ok := strings.CutPrefix(rest, member+".")
		if !ok {
			idx, ok = strings.CutPrefix(rest, "member.")
		}
		num, field, ok2 := strings.Cut(idx, ".")
		if !ok || !ok2 || field == "" {
			return nil, true, &Error{Code: "InvalidParameterValue", Message: fmt.Sprintf("Unknown parameter %s.", k)}
		}
		n, ok := Index(num)
		if !ok {
			return nil, true, &Error{Code: "InvalidParameterValue", Message: fmt.Sprintf("Invalid list index in parameter %s.", k)}
		}
		if byIndex[n] == nil {
			byIndex[n] = map[string]string{}
		}
		if _, dup := byIndex[n][field]; dup {
			// Name.member.N.F and Name.<member>.N.F: one would win by map order.
			return nil, true, &Error{Code: "InvalidParameterValue", Message: fmt.Sprintf("The list %s has field %s of index %d twice.", name, field, n)}
		}
		byIndex[n][field] = vals[0]
	}
	if _, empty := v[name]; empty && len(byIndex) > 0 {
		return nil, true, bothEmptyAndNot(name)
	}
	idxs := make([]int, 0, len(byIndex))
	for n := range byIndex {
		idxs = append(idxs, n)
	}
	slices.Sort(idxs)
	for _, n := range idxs {
		items = append(items, byIndex[n])
	}
	return items, present, nil
}
