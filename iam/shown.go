package iam

import (
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
)

// ReplaceAWSPrincipals returns the trust policy doc with each AWS
// principal (Statement's Principal.AWS, a string or a list) for which
// replace answers true replaced by what it answers, and the rest of the
// text as written: how IAM shows a trust policy whose principals were
// renamed or deleted since it was saved.
func ReplaceAWSPrincipals(doc string, replace func(principal string) (string, bool)) (string, error) {
	type edit struct {
		start, end int
		text       string
	}
	var edits []edit
	dec := json.NewDecoder(strings.NewReader(doc))
	dec.UseNumber()
	var value func(path []string) error
	value = func(path []string) error {
		before := int(dec.InputOffset())
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{':
				for dec.More() {
					key, err := dec.Token()
					if err != nil {
						return err
					}
					k, _ := key.(string)
					if err := value(append(path, k)); err != nil {
						return err
					}
				}
			case '[':
				for dec.More() {
					if err := value(append(path, "[]")); err != nil {
						return err
					}
				}
			}
			_, err := dec.Token() // the closing delimiter
			return err
		case string:
			if !awsPrincipalPath(path) {
				return nil
			}
			if text, ok := replace(t); ok {
				// Between the previous token and this one only a
				// separator and white space: the string starts at the
				// first quote.
				start := before + strings.IndexByte(doc[before:], '"')
				b, err := json.Marshal(text)
				if err != nil {
					return err
				}
				edits = append(edits, edit{start, int(dec.InputOffset()), string(b)})
			}
		}
		return nil
	}
	if err := value(nil); err != nil {
		return "", err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return "", errors.New("trust policy: text after the document")
	}
	if len(edits) == 0 {
		return doc, nil
	}
	var out strings.Builder
	last := 0
	for _, e := range edits {
		out.WriteString(doc[last:e.start])
		out.WriteString(e.text)
		last = e.end
	}
	out.WriteString(doc[last:])
	return out.String(), nil
}

// awsPrincipalPath reports whether path (object keys, "[]" for a list's
// element) leads to an AWS principal: Statement, Principal, AWS, where
// Statement and AWS may each be a list.
func awsPrincipalPath(path []string) bool {
	var keys []string
	for j, p := range path {
		if p != "[]" {
			keys = append(keys, p)
		} else if j == 0 || path[j-1] != "Statement" && path[j-1] != "AWS" {
			return false
		}
	}
	return slices.Equal(keys, []string{"Statement", "Principal", "AWS"})
}
