package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey"
)

// olderGatewayType is the eventType of the gateway's records before it
// was CloudTrail's AwsServiceEvent: their logs are still read.
const olderGatewayType = "ShiftkeyGatewayEvent"

// line is one record of a test log, tagged by its event id.
func line(t *testing.T, id, at, eventType, key, cred, errCode string) string {
	t.Helper()
	r := Record{EventVersion: eventVersion, EventTime: at, EventType: eventType, EventID: id, ErrorCode: errCode,
		UserIdentity: UserIdentity{Type: "IAMUser", ARN: "arn:aws:iam::123456789012:user/" + key, AccessKeyID: key}}
	if eventType == typeAPICall {
		r.EventName = "GetClusterCredentials"
	} else {
		r.EventSource, r.EventName, r.UserIdentity.AccessKeyID = SourceGateway, EventLogin, ""
	}
	if cred != "" {
		r.ResponseElements = map[string]any{"credentialId": cred}
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b) + "\n"
}

func writeLog(t *testing.T, dir, name string, lines ...string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(strings.Join(lines, "")), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// ids are the event ids of the records in out, in order.
func ids(t *testing.T, out string) []string {
	t.Helper()
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		var r Record
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("output line %q: %v", l, err)
		}
		got = append(got, r.EventID)
	}
	return got
}

func tail(t *testing.T, paths []string, f Filter) []string {
	t.Helper()
	var out bytes.Buffer
	if err := Tail(context.Background(), &out, paths, f, false); err != nil {
		t.Fatal(err)
	}
	return ids(t, out.String())
}

// Two replicas' logs read as one timeline: by eventTime, and within a
// second in the order the logs were named, each log's lines in order.
func TestTailMergesLogsInTimeOrder(t *testing.T) {
	dir := t.TempDir()
	a := writeLog(t, dir, "a.log",
		line(t, "a1", "2026-12-05T10:00:01Z", typeAPICall, "K1", "", ""),
		"not a record\n",
		line(t, "a2", "2026-12-05T10:00:03Z", typeAPICall, "K1", "", ""),
		line(t, "a3", "2026-12-05T10:00:03Z", typeAPICall, "K1", "", ""))
	b := writeLog(t, dir, "b.log",
		line(t, "b1", "2026-12-05T10:00:02Z", typeAPICall, "K1", "", ""),
		line(t, "b2", "2026-12-05T10:00:03Z", typeAPICall, "K1", "", ""),
		strings.TrimSuffix(line(t, "b3", "2026-12-05T10:00:04Z", typeAPICall, "K1", "", ""), "\n")) // unended last line
	got := strings.Join(tail(t, []string{a, b}, Filter{}), " ")
	if want := "a1 b1 a2 a3 b2 b3"; got != want {
		t.Fatalf("merged: %s, want %s", got, want)
	}
}

// A log's own lines never change places: a login record carries the
// second its login began, so it can follow a grant of the next second in
// its log, and the merge keeps it there.
func TestTailKeepsEachLogsOrder(t *testing.T) {
	dir := t.TempDir()
	a := writeLog(t, dir, "a.log",
		line(t, "a1", "2026-12-05T10:00:01Z", typeAPICall, "K1", "", ""),
		line(t, "a-grant", "2026-12-05T10:00:03Z", typeServiceEvent, "K1", "", ""),
		line(t, "a-login", "2026-12-05T10:00:02Z", typeServiceEvent, "K1", "", ""),
		line(t, "a4", "2026-12-05T10:00:04Z", typeAPICall, "K1", "", ""))
	b := writeLog(t, dir, "b.log",
		line(t, "b1", "2026-12-05T10:00:02Z", typeAPICall, "K1", "", ""),
		line(t, "b2", "2026-12-05T10:00:03Z", typeAPICall, "K1", "", ""))
	if got, want := strings.Join(tail(t, []string{a}, Filter{}), " "), "a1 a-grant a-login a4"; got != want {
		t.Fatalf("one log: %s, want %s", got, want)
	}
	if got, want := strings.Join(tail(t, []string{a, b}, Filter{}), " "), "a1 b1 a-grant a-login b2 a4"; got != want {
		t.Fatalf("merged: %s, want %s", got, want)
	}
}

// --access-key follows a key to the logins of the credentials it issued,
// on any replica, also when a login is merged before its issuing call
// (the same second, an earlier log); a failed call issued nothing.
func TestTailFollowsAnAccessKeyToItsLogins(t *testing.T) {
	dir := t.TempDir()
	a := writeLog(t, dir, "a.log",
		line(t, "login-c1", "2026-12-05T10:00:01Z", olderGatewayType, "leaked", "c1", ""), // an older version's
		line(t, "login-c2", "2026-12-05T10:00:01Z", typeServiceEvent, "other", "c2", ""),
		line(t, "login-c3", "2026-12-05T10:00:05Z", typeServiceEvent, "leaked", "c3", ""))
	b := writeLog(t, dir, "b.log",
		line(t, "issue-c1", "2026-12-05T10:00:01Z", typeAPICall, "LEAKED", "c1", ""),
		line(t, "issue-c2", "2026-12-05T10:00:01Z", typeAPICall, "OTHER", "c2", ""),
		line(t, "denied", "2026-12-05T10:00:02Z", typeAPICall, "LEAKED", "c3", "AccessDenied"))
	got := strings.Join(tail(t, []string{a, b}, Filter{AccessKey: "LEAKED"}), " ")
	if want := "login-c1 issue-c1 denied"; got != want {
		t.Fatalf("--access-key: %s, want %s", got, want)
	}
	got = strings.Join(tail(t, []string{a, b}, Filter{Credential: "c2"}), " ")
	if want := "login-c2 issue-c2"; got != want {
		t.Fatalf("--credential: %s, want %s", got, want)
	}
	got = strings.Join(tail(t, []string{a, b}, Filter{Principal: "arn:aws:iam::123456789012:user/leaked", Credential: "c3"}), " ")
	if want := "login-c3"; got != want {
		t.Fatalf("--principal and --credential: %s, want %s", got, want)
	}
}

// syncBuffer is a bytes.Buffer the test reads while Tail writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// -f over two logs: what is appended to either is written, and a log
// rotated (renamed, a new file at its path) is read to its end, then the
// new file is followed.
func TestTailFollowsLogsAcrossRotation(t *testing.T) {
	old := FollowInterval
	FollowInterval = 5 * time.Millisecond
	t.Cleanup(func() { FollowInterval = old })
	dir := t.TempDir()
	a := writeLog(t, dir, "a.log", line(t, "a1", "2026-12-05T10:00:01Z", typeAPICall, "K", "", ""))
	b := writeLog(t, dir, "b.log", line(t, "b1", "2026-12-05T10:00:02Z", typeAPICall, "K", "", ""))
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- Tail(ctx, &out, []string{a, b}, Filter{}, true) }()
	waitFor := func(want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for strings.Join(ids(t, out.String()), " ") != want {
			if time.Now().After(deadline) {
				t.Fatalf("followed: %q, want %q", strings.Join(ids(t, out.String()), " "), want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	appendTo := func(p, s string) {
		t.Helper()
		f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString(s); err != nil {
			t.Fatal(err)
		}
	}
	waitFor("a1 b1")
	// Half a line, then its end: written once whole.
	l := line(t, "b2", "2026-12-05T10:00:03Z", typeAPICall, "K", "", "")
	appendTo(b, l[:10])
	appendTo(b, l[10:])
	waitFor("a1 b1 b2")
	// Rotation: a line still written to the renamed file, then the new one.
	if err := os.Rename(a, a+".1"); err != nil {
		t.Fatal(err)
	}
	appendTo(a+".1", line(t, "a2", "2026-12-05T10:00:04Z", typeAPICall, "K", "", ""))
	appendTo(a, line(t, "a3", "2026-12-05T10:00:05Z", typeAPICall, "K", "", ""))
	waitFor("a1 b1 b2 a2 a3")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A record whose parameters hold a number no float64 holds (a Serverless
// member the service ignores, recorded as sent) is still a record to
// tail: selected by its credential, written out unchanged.
func TestTailReadsRecordsOfAnyNumber(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	l.APICall(&shiftkey.APICall{Time: time.Now(), RequestID: "req-1", Service: "redshift-serverless", Operation: "GetCredentials",
		AccessKeyID: "AKIAEXAMPLE", Body: []byte(`{"workgroupName":"wg","padding":[1e400,-1e999]}`), CredentialID: "cred-1", Status: 200})
	l.Close()
	var out bytes.Buffer
	if err := Tail(context.Background(), &out, []string{path}, Filter{Credential: "cred-1"}, false); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"requestID":"req-1"`) || !strings.Contains(out.String(), "1e400") {
		t.Fatalf("tail --credential cred-1: %q, want the issuing call's record as written", out.String())
	}
}

// A log is read as a stream: a record is written out once the log has
// gone tailWindow past it, not after the whole log is in memory (an
// incident responder's week of logs did not fit). A FIFO stands for a log
// too large to hold: its first record must come out while the writer is
// still writing.
func TestTailStreamsALog(t *testing.T) {
	p := filepath.Join(t.TempDir(), "audit.fifo")
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	at := func(s time.Duration) string { return start.Add(s).Format(time.RFC3339) }
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- Tail(context.Background(), out, []string{p}, Filter{Credential: "c-first"}, false) }()
	w, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.WriteString(line(t, "first", at(0), typeAPICall, "AKIA1", "c-first", "")); err != nil {
		t.Fatal(err)
	}
	// Records well past the window, and the log stays open.
	for i := range 50 {
		if _, err := w.WriteString(line(t, "later", at(tailWindow+time.Duration(i)*time.Second), typeAPICall, "AKIA1", "c-other", "")); err != nil {
			t.Fatal(err)
		}
	}
	if !waitFor(5*time.Second, func() bool { return strings.Contains(out.String(), `"eventID":"first"`) }) {
		t.Fatal("the first record was not written while the log was still being written")
	}
	w.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := ids(t, out.String()); len(got) != 1 || got[0] != "first" {
		t.Fatalf("selected %v, want [first]", got)
	}
}

func waitFor(d time.Duration, ok func() bool) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if ok() {
			return true
		}
	}
	return ok()
}

// Records of one second from two replicas merge in the order their events
// happened, not in the order the logs were named: a credential's issue on
// one replica comes before its logins on the other, though both have the
// same eventTime (CloudTrail's, to the second). Records written before
// their precise time was kept merge as before, at their second's start.
func TestTailOrdersRecordsWithinASecond(t *testing.T) {
	dir := t.TempDir()
	second := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return second.Add(time.Duration(ms) * time.Millisecond) }
	write := func(name string, records ...func(*Log)) string {
		p := filepath.Join(dir, name)
		l, err := Open(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range records {
			r(l)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		return p
	}
	login := func(ms int, conn uint64) func(*Log) {
		return func(l *Log) {
			l.Login(&shiftkey.Login{Time: at(ms), ConnID: conn, OK: true, Scope: "analytics", User: "IAMA:dana",
				CredentialID: "cred1", PrincipalARN: "arn:aws:iam::123456789012:user/alice", AccessKeyID: "AKIAALICEEXAMPLE0001"})
		}
	}
	issuer := write("a.log", func(l *Log) {
		l.APICall(&shiftkey.APICall{Time: at(600), Service: "redshift", Operation: "GetClusterCredentials",
			AccessKeyID: "AKIAALICEEXAMPLE0001", RequestID: "issue"})
	}, login(900, 2))
	gateway := write("b.log", login(800, 1), login(950, 3))
	// An older log, to the second: it sorts at its second's start.
	old := writeLog(t, dir, "old.log", line(t, "old", "2026-12-05T10:00:00Z", typeAPICall, "K1", "", ""))

	var out bytes.Buffer
	if err := Tail(context.Background(), &out, []string{gateway, issuer, old}, Filter{}, false); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var r Record
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("output line %q: %v", l, err)
		}
		if r.EventTime != "2026-12-05T10:00:00Z" {
			t.Errorf("eventTime %q, want CloudTrail's form to the second", r.EventTime)
		}
		switch {
		case r.EventID == "old":
			got = append(got, "old")
		case r.RequestID != "":
			got = append(got, r.RequestID)
		default:
			got = append(got, "login"+fmt.Sprint(r.AdditionalEventData["connectionId"]))
		}
	}
	if got, want := strings.Join(got, " "), "old issue login1 login2 login3"; got != want {
		t.Fatalf("merged: %s, want %s", got, want)
	}
}

// Found in an operator's review: operations.md offers logrotate's
// copytruncate for the server's log, and -f promises to follow rotations
// as tail -F does, but a log truncated in place (the same file, now
// shorter than what had been read) was read on from the old offset: the
// records written after the truncation were never printed, or their ends
// were read as broken lines and dropped. As tail -F, a truncated log is
// read again from its start.
func TestTailFollowsALogTruncatedInPlace(t *testing.T) {
	old := FollowInterval
	FollowInterval = 5 * time.Millisecond
	t.Cleanup(func() { FollowInterval = old })
	dir := t.TempDir()
	a := writeLog(t, dir, "a.log",
		line(t, "a1", "2026-12-05T10:00:01Z", typeAPICall, "K", "", ""),
		line(t, "a2", "2026-12-05T10:00:02Z", typeAPICall, "K", "", ""))
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- Tail(ctx, &out, []string{a}, Filter{}, true) }()
	waitFor := func(want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for strings.Join(ids(t, out.String()), " ") != want {
			if time.Now().After(deadline) {
				t.Fatalf("followed: %q, want %q", strings.Join(ids(t, out.String()), " "), want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitFor("a1 a2")
	// copytruncate: the content copied away, the file emptied in place,
	// and the server appending on (O_APPEND writes at the new end).
	if err := os.Truncate(a, 0); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(a, os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(line(t, "a3", "2026-12-05T10:00:03Z", typeAPICall, "K", "", "")); err != nil {
		t.Fatal(err)
	}
	waitFor("a1 a2 a3")
	if _, err := f.WriteString(line(t, "a4", "2026-12-05T10:00:04Z", typeAPICall, "K", "", "")); err != nil {
		t.Fatal(err)
	}
	waitFor("a1 a2 a3 a4")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// An incident's window: --since, --until, --event and --failed narrow what
// is written, not what is learnt. A key followed with --since still
// selects the later logins of a credential it issued before the window.
func TestTailNarrowsByTimeEventAndFailure(t *testing.T) {
	dir := t.TempDir()
	log := writeLog(t, dir, "a.log",
		line(t, "a1", "2026-12-07T10:00:00Z", typeAPICall, "AKIAK", "c1", ""),
		line(t, "g1", "2026-12-07T10:00:01Z", typeServiceEvent, "AKIAK", "c1", ""),
		line(t, "a2", "2026-12-07T10:05:00Z", typeAPICall, "AKIAK", "", "AccessDenied"),
		line(t, "g2", "2026-12-07T10:06:00Z", typeServiceEvent, "AKIAK", "c1", "wrong_password"),
		line(t, "x1", "2026-12-07T10:07:00Z", typeAPICall, "AKIAOTHER", "c9", ""),
		line(t, "a3", "2026-12-07T10:10:00Z", typeAPICall, "AKIAK", "c2", ""),
		line(t, "g3", "2026-12-07T10:10:01Z", typeServiceEvent, "AKIAK", "c2", ""),
	)
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, c := range []struct {
		name string
		f    Filter
		want string
	}{
		{"since, inclusive", Filter{Since: at("2026-12-07T10:05:00Z")}, "a2 g2 x1 a3 g3"},
		{"until, inclusive", Filter{Until: at("2026-12-07T10:05:00Z")}, "a1 g1 a2"},
		{"a window", Filter{Since: at("2026-12-07T10:00:01Z"), Until: at("2026-12-07T10:07:00Z")}, "g1 a2 g2 x1"},
		{"logins only", Filter{Events: "GatewayLogin"}, "g1 g2 g3"},
		{"an event name in another case", Filter{Events: "gatewaylogin"}, "g1 g2 g3"},
		{"two events", Filter{Events: " GatewayLogin , GetClusterCredentials"}, "a1 g1 a2 g2 x1 a3 g3"},
		{"failed only", Filter{Failed: true}, "a2 g2"},
		{"failed logins", Filter{Failed: true, Events: "GatewayLogin"}, "g2"},
		{"a key's activity after a time, logins of a credential issued before it included", Filter{AccessKey: "AKIAK", Since: at("2026-12-07T10:06:00Z")}, "g2 a3 g3"},
		{"a key, failed", Filter{AccessKey: "AKIAK", Failed: true}, "a2 g2"},
	} {
		if got := strings.Join(tail(t, []string{log}, c.f), " "); got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
}

// A window alone keeps every record in it, a replica's reconciled revoke
// (which names no session) included: without a selecting filter nothing
// has to have joined its group first.
func TestTailWindowAloneKeepsReconciledRevokes(t *testing.T) {
	r := Record{EventVersion: eventVersion, EventTime: "2026-12-07T10:05:00Z", EventType: typeServiceEvent, EventID: "rv",
		EventSource: SourceGateway, EventName: EventRevokeGroup,
		RequestParameters:   map[string]any{"scope": "dev-cluster", "dbUser": "alice", "group": "etl"},
		AdditionalEventData: map[string]any{"reconciled": true, "replica": "b", "leftBy": "a"}}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	log := writeLog(t, t.TempDir(), "a.log",
		line(t, "a1", "2026-12-07T10:00:00Z", typeAPICall, "AKIAK", "c1", ""),
		string(b)+"\n")
	since, _ := time.Parse(time.RFC3339, "2026-12-07T10:01:00Z")
	if got := strings.Join(tail(t, []string{log}, Filter{Since: since}), " "); got != "rv" {
		t.Errorf("since alone: got %q, want the reconciled revoke", got)
	}
}
