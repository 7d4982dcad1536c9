package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"slices"
	"time"
)

// Filter selects records; zero fields match everything, and a record must
// match every field set.
type Filter struct {
	// Principal matches the ARN of the record's identity, or of the role
	// behind an assumed-role session.
	Principal string
	// AccessKey matches API calls signed with that access key, and the
	// gateway records of the credentials those calls issued (a leaked
	// key's every login), once the issuing call has been read.
	AccessKey string
	// Credential matches the records of one issued credential: the call
	// that issued it, its logins, session ends and group changes.
	Credential string
}

// matcher is a Filter read over a log in time order: it remembers the
// credentials that API calls matching AccessKey issued.
type matcher struct {
	Filter
	issued map[string]bool // credential ids issued through AccessKey
}

// learn notes the credential an API call signed with AccessKey issued.
func (m *matcher) learn(r *Record) {
	if m.AccessKey == "" || r.EventType != typeAPICall || r.UserIdentity.AccessKeyID != m.AccessKey || r.ErrorCode != "" {
		return
	}
	if cred := credentialOf(r); cred != "" {
		if m.issued == nil {
			m.issued = map[string]bool{}
		}
		m.issued[cred] = true
	}
}

// match reports whether r is selected.
func (m *matcher) match(r *Record) bool {
	if r.EventType == typeOperatorEvent {
		return m.matchRevocation(r)
	}
	id := r.UserIdentity
	if m.Principal != "" && id.ARN != m.Principal && (id.SessionContext == nil || id.SessionContext.SessionIssuer.ARN != m.Principal) {
		return false
	}
	cred := credentialOf(r)
	if m.Credential != "" && cred != m.Credential {
		return false
	}
	if m.AccessKey != "" {
		switch r.EventType {
		case typeAPICall:
			return id.AccessKeyID == m.AccessKey
		case typeGatewayEvent:
			return cred != "" && m.issued[cred]
		}
		return false
	}
	return true
}

// matchRevocation selects an operator's revocation by the credentials it
// revoked: of the principal (or named for it), the credential, or those
// the access key issued.
func (m *matcher) matchRevocation(r *Record) bool {
	ids, principals := revokedOf(r)
	if m.Principal != "" && !slices.Contains(principals, m.Principal) &&
		r.RequestParameters["principal"] != m.Principal && r.RequestParameters["allForPrincipal"] != m.Principal {
		return false
	}
	if m.Credential != "" && !slices.Contains(ids, m.Credential) {
		return false
	}
	if m.AccessKey != "" && !slices.ContainsFunc(ids, func(id string) bool { return m.issued[id] }) {
		return false
	}
	return true
}

// credentialOf is the id of the credential a record is about: issued
// (responseElements) or used (a login's or session's responseElements, a
// grant's additionalEventData).
func credentialOf(r *Record) string {
	if s, ok := r.ResponseElements["credentialId"].(string); ok {
		return s
	}
	if s, ok := r.AdditionalEventData["credentialId"].(string); ok {
		return s
	}
	return ""
}

func parse(line []byte) (*Record, bool) {
	var rec Record
	// Numbers as written: a parameter recorded as sent may hold one no
	// float64 holds, and its record is still one to select.
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if dec.Decode(&rec) != nil || len(bytes.TrimSpace(line[dec.InputOffset():])) != 0 {
		return nil, false
	}
	return &rec, true
}

// FollowInterval is how often Follow looks for new lines and rotation.
var FollowInterval = 200 * time.Millisecond

// Tail writes the selected lines, unchanged, of the logs at paths (one per
// replica, say) merged into one timeline: each log's lines in their own
// order, the logs interleaved by eventTime, on a tie in the order of paths.
// A log is not sorted by eventTime: a login's record carries the second its
// login began and follows the grants the login made. With follow it keeps
// writing the records appended until ctx ends, each poll's merged the same
// way, across rotations.
func Tail(ctx context.Context, w io.Writer, paths []string, f Filter, follow bool) error {
	logs := make([]*logFile, len(paths))
	for i, p := range paths {
		file, err := os.Open(p)
		if err != nil {
			for _, l := range logs[:i] {
				l.file.Close()
			}
			return err
		}
		logs[i] = &logFile{path: p, file: file}
	}
	defer func() {
		for _, l := range logs {
			l.file.Close()
		}
	}()
	m := &matcher{Filter: f}
	var t *time.Ticker
	if follow {
		t = time.NewTicker(FollowInterval)
		defer t.Stop()
	}
	for {
		perLog := make([][]timedLine, len(logs))
		for i, l := range logs {
			lines, err := l.read(follow)
			if err != nil {
				return err
			}
			for _, line := range lines {
				if rec, ok := parse(line); ok {
					perLog[i] = append(perLog[i], timedLine{at: rec.EventTime, rec: rec, line: line})
				}
			}
		}
		// A batch's issuing calls are learnt before its records are
		// matched, so that a login merged before the call that issued its
		// credential (same second, another replica) is still followed.
		for _, lines := range perLog {
			for _, b := range lines {
				m.learn(b.rec)
			}
		}
		for _, b := range merge(perLog) {
			if m.match(b.rec) {
				if _, err := w.Write(b.line); err != nil {
					return err
				}
			}
		}
		if !follow {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// timedLine is a record line with what orders it in a merge.
type timedLine struct {
	at   string // eventTime: fixed-width UTC, so it compares as text
	rec  *Record
	line []byte
}

// merge interleaves logs, each kept in its own order, by the eventTime of
// their next lines; on a tie the earlier log goes first.
func merge(logs [][]timedLine) []timedLine {
	var out []timedLine
	next := make([]int, len(logs))
	for {
		pick := -1
		for i, lines := range logs {
			if next[i] < len(lines) && (pick < 0 || lines[next[i]].at < logs[pick][next[pick]].at) {
				pick = i
			}
		}
		if pick < 0 {
			return out
		}
		out = append(out, logs[pick][next[pick]])
		next[pick]++
	}
}

// logFile is one log being read, followed across rotations.
type logFile struct {
	path    string
	file    *os.File
	partial []byte // a last line not yet ended
}

// read returns the complete lines appended since the last read. Following,
// a rotated log (the path names another file now) is read to its end, then
// the new file from its start.
func (l *logFile) read(follow bool) ([][]byte, error) {
	lines, err := l.lines(!follow)
	if err != nil || !follow {
		return lines, err
	}
	cur, err := os.Stat(l.path)
	if errors.Is(err, os.ErrNotExist) {
		return lines, nil
	} else if err != nil {
		return nil, err
	}
	if old, err := l.file.Stat(); err != nil || os.SameFile(cur, old) {
		return lines, nil
	}
	more, err := l.lines(true)
	if err != nil {
		return nil, err
	}
	lines = append(lines, more...)
	nf, err := os.Open(l.path)
	if err != nil {
		return lines, nil // not there yet: next poll
	}
	l.file.Close()
	l.file, l.partial = nf, nil
	newLines, err := l.lines(false)
	return append(lines, newLines...), err
}

// lines reads to the end of the file; an unended last line waits for the
// next read unless final.
func (l *logFile) lines(final bool) ([][]byte, error) {
	b, err := io.ReadAll(l.file)
	if err != nil {
		return nil, err
	}
	b = append(l.partial, b...)
	l.partial = nil
	var out [][]byte
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			if final {
				out = append(out, append(b[:len(b):len(b)], '\n'))
			} else {
				l.partial = append([]byte(nil), b...)
			}
			break
		}
		out = append(out, b[:i+1])
		b = b[i+1:]
	}
	return out, nil
}
