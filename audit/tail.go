package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/shiftkey/shiftkey"
)

// Filter selects records; zero fields match everything, and a record must
// match every field set.
type Filter struct {
	// Principal matches the ARN of the record's identity, or of the role
	// behind an assumed-role session: every role of that name. Or it is
	// a unique id (userIdentity.principalId), which tells apart a user or
	// role deleted and created again under its name: a user's (AIDA…), a
	// role's (AROA…: each of its sessions) or one session's
	// (AROA…:name).
	Principal string
	// AccessKey matches API calls signed with that access key or with the
	// temporary keys of the STS sessions it started (AssumeRole…, and the
	// sessions those started), the calls and config applications that
	// created, changed or started one of those keys, the gateway records
	// (logins, session ends, grants) of every credential those calls
	// issued or that name one of the keys as its issuer, and the
	// revocations of those credentials or naming the key: all that a
	// leaked key did. A session is followed once the call that started it
	// has been read.
	AccessKey string
	// Credential matches the records of one issued credential: the call
	// that issued it, its logins, session ends and group changes.
	Credential string
	// SourceIP matches the records of calls and logins from that address
	// (sourceIPAddress): the failed logins, too, which name no credential.
	SourceIP string
	// With any field set, a reconciled RevokeSessionGroup (one replica
	// revoking what a dead one left, which names no session) is selected
	// when it revokes a membership that selected records joined on a
	// replica it names: what became of the groups of a dead replica's
	// sessions.

	// Since and Until bound the records written by their eventTime
	// (either end inclusive; zero: open). They narrow what is written,
	// not what is read: records before Since still teach AccessKey which
	// sessions and credentials the key started, and a login before Since
	// the group a later reconciled revoke ends.
	Since, Until time.Time
	// Events, comma-separated eventNames (GetClusterCredentials,
	// GatewayLogin, …), writes only records of those, in any case: a
	// name typed in lower case must not silently match nothing.
	Events string
	// Failed writes only records with an errorCode: refused calls and
	// logins.
	Failed bool
}

// narrows reports whether the record at (orderKey) passes the Filter's
// output bounds: Since, Until, Events and Failed.
func (m *matcher) narrows(r *Record, at string) bool {
	if m.Failed && r.ErrorCode == "" {
		return false
	}
	if m.events != nil && !m.events[strings.ToLower(r.EventName)] {
		return false
	}
	if !m.Since.IsZero() && at < m.Since.UTC().Format(eventTimePreciseFormat) {
		return false
	}
	if !m.Until.IsZero() && at > m.Until.UTC().Format(eventTimePreciseFormat) {
		return false
	}
	return true
}

// matcher is a Filter read over a log in time order: it remembers the
// session keys and credentials that API calls matching AccessKey started
// and issued.
type matcher struct {
	Filter
	keys   map[string]bool // AccessKey and the session keys started through it
	issued map[string]bool // credential ids issued through keys
	// joined holds the memberships selected gateway records joined (a
	// grant, a login with groups), each with the replicas that wrote them,
	// until a selected revoke there ends it.
	joined map[membership]map[string]bool
	// sessionsOf is what the ARNs of the sessions of the role Principal
	// names begin with ("" when it names no role): a session's ARN names
	// the role without its path, so the role is known by its name.
	sessionsOf string
	// events is Events as a set, lower-cased; nil for every event.
	events map[string]bool
	// principalID is Principal when it is a unique id, not an ARN;
	// idIssued the credentials issued to it, for the revocations, which
	// name a credential's principal by its ARN only.
	principalID string
	idIssued    map[string]bool
}

func newMatcher(f Filter) *matcher {
	m := &matcher{Filter: f, keys: map[string]bool{}, issued: map[string]bool{}, joined: map[membership]map[string]bool{}}
	m.sessionsOf, _ = shiftkey.RoleSessionsPrefix(f.Principal)
	if isPrincipalID(f.Principal) {
		m.principalID, m.idIssued = f.Principal, map[string]bool{}
	}
	if f.AccessKey != "" {
		m.keys[f.AccessKey] = true
	}
	for name := range strings.SplitSeq(f.Events, ",") {
		if name = strings.TrimSpace(name); name != "" {
			if m.events == nil {
				m.events = map[string]bool{}
			}
			m.events[strings.ToLower(name)] = true
		}
	}
	return m
}

// learn notes the credential an API call signed with a followed key
// issued, and the session key it started; and the credential of a
// gateway record naming a followed key as its issuer (so that the records
// of the same credential that do not name it, a revoked login's, follow).
func (m *matcher) learn(r *Record) {
	if m.principalID != "" && !isOperator(r) && m.hasID(r.UserIdentity) {
		if cred := credentialOf(r); cred != "" {
			m.idIssued[cred] = true
		}
	}
	if m.AccessKey == "" {
		return
	}
	if isGateway(r) {
		if cred := credentialOf(r); cred != "" && m.keys[issuingKeyOf(r)] {
			m.issued[cred] = true
		}
		return
	}
	if r.EventType != typeAPICall || !m.keys[r.UserIdentity.AccessKeyID] || r.ErrorCode != "" {
		return
	}
	if cred := credentialOf(r); cred != "" {
		m.issued[cred] = true
	}
	if k := sessionKeyOf(r); k != "" {
		m.keys[k] = true
	}
}

// match reports whether r is selected. Records are matched in time order.
func (m *matcher) match(r *Record) bool {
	if m.Principal == "" && m.AccessKey == "" && m.Credential == "" && m.SourceIP == "" {
		return true // only narrowed (narrows), if at all
	}
	if isReconciledRevoke(r) {
		return m.matchReconciled(r)
	}
	if !m.selects(r) {
		return false
	}
	m.noteMembership(r)
	return true
}

// membership is a group a session's role is made a member of.
type membership struct{ scope, role, group string }

// isGateway and isOperator tell the gateway's and the operator's records
// by their eventSource, which every version wrote: their eventType was
// ShiftkeyGatewayEvent and ShiftkeyOperatorEvent before it was CloudTrail's
// AwsServiceEvent, which both now share.
func isGateway(r *Record) bool  { return r.EventSource == SourceGateway }
func isOperator(r *Record) bool { return r.EventSource == SourceOperator }

// isReconciledRevoke reports whether r is a revoke the sweep made of a
// grant no session needs, a dead replica's (leftBy) or its own leftover:
// it names no session, credential or principal.
func isReconciledRevoke(r *Record) bool {
	reconciled, _ := r.AdditionalEventData["reconciled"].(bool)
	return isGateway(r) && r.EventName == EventRevokeGroup && reconciled && credentialOf(r) == ""
}

func replicaOf(r *Record) string {
	s, _ := r.AdditionalEventData["replica"].(string)
	return s
}

// noteMembership notes the memberships a selected gateway record joined
// on its replica, or ended there.
func (m *matcher) noteMembership(r *Record) {
	if !isGateway(r) {
		return
	}
	param := func(fields map[string]any, k string) string { s, _ := fields[k].(string); return s }
	replica, scope := replicaOf(r), param(r.RequestParameters, "scope")
	switch r.EventName {
	case EventGrantGroup, EventRevokeGroup:
		g := membership{scope, param(r.RequestParameters, "dbUser"), param(r.RequestParameters, "group")}
		if r.EventName == EventRevokeGroup {
			delete(m.joined[g], replica)
			return
		}
		m.join(g, replica)
	case EventLogin:
		// A login sharing a membership another session holds grants
		// nothing: its groups are what it joined.
		if r.ErrorCode != "" {
			return
		}
		// Nor does one told it did not join a group (its notices).
		groups, _ := r.ResponseElements["dbGroups"].([]any)
		notices, _ := r.AdditionalEventData["notices"].([]any)
		notJoined := map[string]bool{}
		for _, n := range notices {
			if s, ok := n.(string); ok {
				if g, ok := shiftkey.GroupNotJoined(s); ok {
					notJoined[g] = true
				}
			}
		}
		for _, g := range groups {
			if s, ok := g.(string); ok && !notJoined[s] {
				m.join(membership{scope, param(r.ResponseElements, "dbUser"), s}, replica)
			}
		}
	}
}

func (m *matcher) join(g membership, replica string) {
	if m.joined[g] == nil {
		m.joined[g] = map[string]bool{}
	}
	m.joined[g][replica] = true
}

// matchReconciled selects a reconciled revoke of a membership selected
// records joined on a replica that left it: one its leftBy names (a dead
// replica), or for its own record (leftBy empty) the revoking replica.
func (m *matcher) matchReconciled(r *Record) bool {
	g := membership{}
	g.scope, _ = r.RequestParameters["scope"].(string)
	g.role, _ = r.RequestParameters["dbUser"].(string)
	g.group, _ = r.RequestParameters["group"].(string)
	left := []string{replicaOf(r)}
	if s, _ := r.AdditionalEventData["leftBy"].(string); s != "" {
		left = strings.Split(s, ",")
	}
	found := false
	for _, replica := range left {
		if m.joined[g][replica] {
			found = true
			delete(m.joined[g], replica) // revoked: a later one is another grant's
		}
	}
	return found
}

// selects reports whether r matches the filter on its own fields.
func (m *matcher) selects(r *Record) bool {
	if m.SourceIP != "" && r.SourceIPAddress != m.SourceIP {
		return false
	}
	if isOperator(r) {
		if r.EventName == EventApplyIdentities {
			return m.matchIdentities(r)
		}
		return m.matchRevocation(r)
	}
	id := r.UserIdentity
	if m.Principal != "" && !m.isIdentity(id) {
		return false
	}
	cred := credentialOf(r)
	if m.Credential != "" && cred != m.Credential {
		return false
	}
	if m.AccessKey != "" {
		switch {
		case r.EventType == typeAPICall:
			return m.keys[id.AccessKeyID] || m.keys[keyNamedBy(r)] || m.keys[sessionKeyOf(r)]
		case isGateway(r):
			return cred != "" && (m.issued[cred] || m.keys[issuingKeyOf(r)])
		}
		return false
	}
	return true
}

// isIdentity reports whether id is the filter's principal: by its ARN or
// its role's, or by its unique id.
func (m *matcher) isIdentity(id UserIdentity) bool {
	if m.principalID != "" {
		return m.hasID(id)
	}
	return m.isPrincipal(id.ARN) || id.SessionContext != nil && m.isPrincipal(id.SessionContext.SessionIssuer.ARN)
}

// hasID reports whether id is the principal the filter's unique id
// names: the user or session whose principalId it is, or for a role's id
// any of that role's sessions (and no session of another role since
// created under its name).
func (m *matcher) hasID(id UserIdentity) bool {
	p := m.principalID
	return id.PrincipalID == p || strings.HasPrefix(id.PrincipalID, p+":") ||
		id.SessionContext != nil && id.SessionContext.SessionIssuer.PrincipalID == p
}

// isPrincipalID reports whether s is a principal's unique id (a user's
// AIDA…, a role's AROA…, a session's AROA…:name), not an ARN.
func isPrincipalID(s string) bool {
	return strings.HasPrefix(s, "AIDA") || strings.HasPrefix(s, "AROA")
}

// isPrincipal reports whether arn is the filter's principal; for a role's
// ARN, with its path or without, the role itself or one of its sessions.
func (m *matcher) isPrincipal(arn string) bool {
	if arn == m.Principal {
		return true
	}
	if m.sessionsOf == "" {
		return false
	}
	if strings.HasPrefix(arn, m.sessionsOf) {
		return true
	}
	p, ok := shiftkey.RoleSessionsPrefix(arn)
	return ok && p == m.sessionsOf
}

// issuingKeyOf is the key that got the credential a gateway record is
// about, when the record names it.
func issuingKeyOf(r *Record) string {
	if s, ok := r.ResponseElements["accessKeyId"].(string); ok {
		return s
	}
	s, _ := r.AdditionalEventData["accessKeyId"].(string)
	return s
}

// sessionKeyOf is the access key id of the STS session a call started
// (CloudTrail's responseElements.credentials.accessKeyId), or "".
func sessionKeyOf(r *Record) string {
	if r.EventSource != "sts.amazonaws.com" || r.ErrorCode != "" {
		return ""
	}
	c, _ := r.ResponseElements["credentials"].(map[string]any)
	k, _ := c["accessKeyId"].(string)
	return k
}

// keyNamedBy is the access key an IAM call created or changed
// (CreateAccessKey's result, UpdateAccessKey's and DeleteAccessKey's
// parameter), or "": when a leaked key came to be, and was deactivated.
func keyNamedBy(r *Record) string {
	if r.EventSource != "iam.amazonaws.com" {
		return ""
	}
	if k, ok := r.RequestParameters["accessKeyId"].(string); ok {
		return k
	}
	c, _ := r.ResponseElements["accessKey"].(map[string]any)
	k, _ := c["accessKeyId"].(string)
	return k
}

// matchIdentities selects the record of declared identities applied by
// the keys and users it changed (a user by its IAM user ARN).
func (m *matcher) matchIdentities(r *Record) bool {
	keys, users := changedKeys(r)
	if m.Credential != "" {
		return false
	}
	if m.Principal != "" {
		id := identityOfCredential(m.Principal, shiftkey.IssuedTo{})
		if id.Type != "IAMUser" || !slices.Contains(users, id.UserName) {
			return false
		}
	}
	return m.AccessKey == "" || slices.ContainsFunc(keys, func(k string) bool { return m.keys[k] })
}

// matchRevocation selects an operator's revocation by the credentials it
// revoked: of the principal (or named for it), the credential, or those
// the access key (or its sessions) issued or the revocation names.
func (m *matcher) matchRevocation(r *Record) bool {
	ids, principals, keys := revokedOf(r)
	named := func(k string) bool { s, _ := r.RequestParameters[k].(string); return s != "" && m.isPrincipal(s) }
	if m.Principal != "" && !slices.ContainsFunc(principals, m.isPrincipal) && !named("principal") && !named("allForPrincipal") &&
		!slices.ContainsFunc(ids, func(id string) bool { return m.idIssued[id] }) {
		return false
	}
	if m.Credential != "" && !slices.Contains(ids, m.Credential) {
		return false
	}
	if m.AccessKey != "" {
		named, _ := r.RequestParameters["accessKeyId"].(string)
		if !slices.ContainsFunc(ids, func(id string) bool { return m.issued[id] }) &&
			!slices.ContainsFunc(keys, func(k string) bool { return m.keys[k] }) && !m.keys[named] {
			return false
		}
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

// recordStart is how every record line begins (Record's first field): a
// record found after it within a line is one written after a fragment.
var recordStart = []byte(`{"eventVersion":`)

// parseLine reads line as a record, or when it is not one, the record
// glued onto a fragment at its start (appended by an older version after a
// writer was killed mid-line): the record, and the line from where it
// starts.
func parseLine(line []byte) (*Record, []byte, bool) {
	if rec, ok := parse(line); ok {
		return rec, line, true
	}
	for i := 1; i < len(line); {
		j := bytes.Index(line[i:], recordStart)
		if j < 0 {
			break
		}
		if rec, ok := parse(line[i+j:]); ok {
			return rec, line[i+j:], true
		}
		i += j + 1
	}
	return nil, nil, false
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

// tailWindow is how far (in eventTime) a merged timeline is read ahead of
// the record it writes out: the issuing calls in it are learnt first, so
// that a login merged before the call that issued its credential (same
// second or a little clock skew, another replica) is still followed, while
// a log of any size is read as a stream.
const tailWindow = 10 * time.Second

// Tail writes the selected lines, unchanged, of the logs at paths (one per
// replica, say) merged into one timeline: each log's lines in their own
// order, the logs interleaved by eventTime, on a tie in the order of paths.
// A log is not sorted by eventTime: a login's record carries the second its
// login began and follows the grants the login made. With follow it keeps
// writing the records appended until ctx ends, each poll's merged the same
// way, across rotations.
func Tail(ctx context.Context, w io.Writer, paths []string, f Filter, follow bool) error {
	_, err := TailCount(ctx, w, paths, f, follow)
	return err
}

// Counts is what a tail read and wrote.
type Counts struct{ Read, Written int }

// TailCount is Tail, and says how many records it read and wrote: a
// filter that kept nothing is told from a log that held nothing.
func TailCount(ctx context.Context, w io.Writer, paths []string, f Filter, follow bool) (Counts, error) {
	tl := &timeline{m: newMatcher(f), w: w}
	err := tl.tail(ctx, paths, follow)
	return tl.counts, err
}

func (tl *timeline) tail(ctx context.Context, paths []string, follow bool) error {
	logs := make([]*logFile, len(paths))
	for i, p := range paths {
		file, err := os.Open(p)
		if err != nil {
			for _, l := range logs[:i] {
				l.file.Close()
			}
			return err
		}
		logs[i] = &logFile{path: p, file: file, r: bufio.NewReaderSize(file, 64<<10)}
	}
	defer func() {
		for _, l := range logs {
			l.file.Close()
		}
	}()
	var t *time.Ticker
	if follow {
		t = time.NewTicker(FollowInterval)
		defer t.Stop()
	}
	for {
		// Each log's next record, and the merge of what the logs hold now.
		heads := make([]*timedLine, len(logs))
		next := func(i int) error {
			heads[i] = nil
			for {
				line, err := logs[i].next(follow)
				if err != nil || line == nil {
					return err
				}
				if rec, line, ok := parseLine(line); ok {
					heads[i] = &timedLine{at: orderKey(rec), rec: rec, line: line}
					return nil
				}
			}
		}
		for i := range logs {
			if err := next(i); err != nil {
				return err
			}
		}
		for {
			pick := -1
			for i, h := range heads {
				if h != nil && (pick < 0 || h.at < heads[pick].at) {
					pick = i
				}
			}
			if pick < 0 {
				break
			}
			if err := tl.add(heads[pick]); err != nil {
				return err
			}
			if err := next(pick); err != nil {
				return err
			}
		}
		// A poll's records are all written out before the next poll.
		if err := tl.flush(); err != nil {
			return err
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
	at   string // orderKey: fixed-width UTC, so it compares as text
	rec  *Record
	line []byte
}

// orderKey is when rec's event happened, in eventTimePreciseFormat: its
// eventTimePrecise, or for a record written without one, the start of its
// eventTime's second (which then sorts before that second's precise
// records). A record whose times do not parse keeps its eventTime as
// written.
func orderKey(rec *Record) string {
	if s, ok := rec.AdditionalEventData["eventTimePrecise"].(string); ok {
		if t, err := time.Parse(eventTimePreciseFormat, s); err == nil {
			return t.Format(eventTimePreciseFormat)
		}
	}
	t, err := time.Parse(time.RFC3339, rec.EventTime)
	if err != nil {
		return rec.EventTime
	}
	return t.UTC().Format(eventTimePreciseFormat)
}

// timeline holds the merged records of the last tailWindow: each is learnt
// as it comes in and matched once the timeline has gone tailWindow past it.
type timeline struct {
	m       *matcher
	w       io.Writer
	pending []*timedLine
	counts  Counts
}

func (tl *timeline) add(l *timedLine) error {
	tl.m.learn(l.rec)
	tl.counts.Read++
	tl.pending = append(tl.pending, l)
	now, err := time.Parse(time.RFC3339, l.at)
	if err != nil {
		return nil // kept until the flush
	}
	edge := now.Add(-tailWindow).UTC().Format(eventTimePreciseFormat)
	n := 0
	for n < len(tl.pending) && tl.pending[n].at < edge {
		n++
	}
	return tl.write(n)
}

func (tl *timeline) flush() error { return tl.write(len(tl.pending)) }

// write writes out the first n pending records that match.
func (tl *timeline) write(n int) error {
	for _, l := range tl.pending[:n] {
		// match first, always: it notes what a selected record joined,
		// for a later revoke, whether or not the record is written.
		if tl.m.match(l.rec) && tl.m.narrows(l.rec, l.at) {
			if _, err := tl.w.Write(l.line); err != nil {
				return err
			}
			tl.counts.Written++
		}
	}
	clear(tl.pending[:n])
	tl.pending = tl.pending[n:]
	return nil
}

// logFile is one log being read, followed across rotations.
type logFile struct {
	path    string
	file    *os.File
	r       *bufio.Reader
	partial []byte // a last line not yet ended
	// draining: the path names another file; the old one is read to its
	// end before the new one is opened.
	draining bool
}

// next returns the log's next complete line, or nil at its end for now.
// Not following, an unended last line is a line. Following, a rotated log
// (the path names another file now) is read to its end, then the new
// file from its start.
func (l *logFile) next(follow bool) ([]byte, error) {
	for {
		b, err := l.r.ReadBytes('\n')
		if len(l.partial) > 0 {
			b, l.partial = append(l.partial, b...), nil
		}
		switch {
		case err == nil:
			return b, nil
		case err != io.EOF:
			return nil, err
		case !follow:
			if len(b) == 0 {
				return nil, nil
			}
			return append(b, '\n'), nil
		}
		l.partial = b // the rest comes later, or the line ends with the file
		if truncated, err := l.truncated(); err != nil {
			return nil, err
		} else if truncated {
			// Truncated in place (logrotate's copytruncate): what was read
			// was copied away, and the writer appends from the start
			// again. Read from there, as tail -F does; an unended line's
			// rest went with the copy.
			if _, err := l.file.Seek(0, io.SeekStart); err != nil {
				return nil, err
			}
			l.r.Reset(l.file)
			l.partial = nil
			continue
		}
		if !l.draining {
			rotated, err := l.rotated()
			if err != nil || !rotated {
				return nil, err
			}
			// What was written before the rename is read first.
			l.draining = true
			continue
		}
		nf, err := os.Open(l.path)
		if err != nil {
			return nil, nil // not there yet: next poll
		}
		l.file.Close()
		l.file, l.r, l.draining = nf, bufio.NewReaderSize(nf, 64<<10), false
		if b, l.partial = l.partial, nil; len(b) > 0 {
			return append(b, '\n'), nil // the old file's last line, unended
		}
	}
}

// truncated reports whether the file being read is a regular file now
// shorter than what has been read of it. Called at its end, when the
// reader's buffer is empty and the file's offset is what was read.
func (l *logFile) truncated() (bool, error) {
	fi, err := l.file.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return false, err // a FIFO cannot be truncated, nor asked its offset
	}
	off, err := l.file.Seek(0, io.SeekCurrent)
	if err != nil {
		return false, err
	}
	return fi.Size() < off, nil
}

// rotated reports whether the log's path names another file than the one
// being read.
func (l *logFile) rotated() (bool, error) {
	cur, err := os.Stat(l.path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	old, err := l.file.Stat()
	return err == nil && !os.SameFile(cur, old), nil
}
