package iam

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// The policy grammar forbids repeated keys in one object and policy element
// names are case-sensitive, neither of which encoding/json enforces when
// unmarshalling into structs or maps; so documents are read into this small
// ordered tree first.

type jkind uint8

const (
	jNull jkind = iota
	jBool
	jNumber
	jString
	jArray
	jObject
)

func (k jkind) String() string {
	switch k {
	case jNull:
		return "null"
	case jBool:
		return "a boolean"
	case jNumber:
		return "a number"
	case jString:
		return "a string"
	case jArray:
		return "an array"
	default:
		return "an object"
	}
}

type jvalue struct {
	kind    jkind
	text    string // string contents, number literal or "true"/"false"
	items   []jvalue
	members []jmember
}

type jmember struct {
	key string
	val jvalue
}

// maxDepth bounds nesting; real policies nest four levels deep at most.
const maxDepth = 16

func decodeJSON(doc []byte) (jvalue, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	v, err := decodeValue(dec, 0)
	if err != nil {
		return jvalue{}, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return jvalue{}, errors.New("invalid JSON: unexpected data after the document")
	}
	return v, nil
}

func decodeValue(dec *json.Decoder, depth int) (jvalue, error) {
	tok, err := dec.Token()
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return jvalue{}, fmt.Errorf("invalid JSON: %v", err)
	}
	switch t := tok.(type) {
	case json.Delim:
		if depth >= maxDepth {
			return jvalue{}, errors.New("invalid JSON: nested too deeply")
		}
		switch t {
		case '{':
			v := jvalue{kind: jObject}
			seen := map[string]bool{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return jvalue{}, fmt.Errorf("invalid JSON: %v", err)
				}
				key, ok := kt.(string)
				if !ok {
					return jvalue{}, errors.New("invalid JSON: object key is not a string")
				}
				if seen[key] {
					return jvalue{}, fmt.Errorf("duplicate key %q", key)
				}
				seen[key] = true
				val, err := decodeValue(dec, depth+1)
				if err != nil {
					return jvalue{}, err
				}
				v.members = append(v.members, jmember{key, val})
			}
			if _, err := dec.Token(); err != nil {
				return jvalue{}, fmt.Errorf("invalid JSON: %v", err)
			}
			return v, nil
		case '[':
			v := jvalue{kind: jArray}
			for dec.More() {
				item, err := decodeValue(dec, depth+1)
				if err != nil {
					return jvalue{}, err
				}
				v.items = append(v.items, item)
			}
			if _, err := dec.Token(); err != nil {
				return jvalue{}, fmt.Errorf("invalid JSON: %v", err)
			}
			return v, nil
		default:
			return jvalue{}, fmt.Errorf("invalid JSON: unexpected %q", rune(t))
		}
	case string:
		return jvalue{kind: jString, text: t}, nil
	case json.Number:
		return jvalue{kind: jNumber, text: t.String()}, nil
	case bool:
		if t {
			return jvalue{kind: jBool, text: "true"}, nil
		}
		return jvalue{kind: jBool, text: "false"}, nil
	case nil:
		return jvalue{kind: jNull}, nil
	}
	return jvalue{}, fmt.Errorf("invalid JSON: unexpected token %v", tok)
}
