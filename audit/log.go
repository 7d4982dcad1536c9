package audit

import (
	"cmp"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shiftkey/shiftkey"
)

// Log writes audit records to a file or standard output. It is a
// shiftkey.Observer. Safe for concurrent use.
type Log struct {
	// Region is the awsRegion of API records (the first served).
	Region string
	// Account is every record's recipientAccountId: the account shiftkey
	// serves, which received the event (an unauthenticated call's too).
	// "": the account of the record's identity, when it has one.
	Account string
	// Logger hears of write failures (never of records); nil: discard.
	Logger *slog.Logger
	// Replica names the process writing (host/pid/start id, as a
	// reconciled revoke's leftBy names a dead one) in every record's
	// additionalEventData: connection ids are the process's own, so a
	// login and its session end pair by both. "": none.
	Replica string

	path string
	mu   sync.Mutex
	w    io.Writer
	f    *os.File // nil for standard output
	// failing is the error of the last write, nil when it succeeded: while
	// records are being lost /readyz says so (Err) and the log repeats it
	// every failNoticeEvery.
	failing    error
	lastNotice time.Time
	// torn: the last write failed after writing part of its record (a
	// disk that filled mid-line), so the next record starts with the
	// newline that ends that fragment, as a reopened log's does.
	torn bool
	lost atomic.Uint64 // records not written since start (Lost)
}

// failNoticeEvery is how often a log that keeps failing says so.
const failNoticeEvery = 10 * time.Second

// Open opens the audit log at path ("-": standard output), appending.
func Open(path string) (*Log, error) {
	l := &Log{path: path}
	if path == "-" {
		l.w = os.Stdout
		return l, nil
	}
	f, err := openFile(path)
	if err != nil {
		return nil, err
	}
	l.w, l.f = f, f
	return l, nil
}

func openFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit.file: %w", err)
	}
	// A file that was there already keeps its mode at open: the records
	// (who got which credential, from where) are the owner's alone.
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o077 != 0 {
		if err := f.Chmod(0o600); err != nil {
			f.Close()
			return nil, fmt.Errorf("audit.file: %w", err)
		}
	}
	if err := endTornLine(path, f); err != nil {
		f.Close()
		return nil, fmt.Errorf("audit.file: %w", err)
	}
	return f, nil
}

// endTornLine ends the log's last line when it is unended (a writer killed
// mid-record, a disk that filled mid-line), so that the record appended
// next is a line of its own rather than glued onto the fragment, where no
// JSON-lines reader would find it. Best effort on what cannot be read.
func endTornLine(path string, f *os.File) error {
	r, err := os.Open(path)
	if err != nil {
		return nil // write-only for us: nothing to check with
	}
	defer r.Close()
	fi, err := r.Stat()
	if err != nil || !fi.Mode().IsRegular() || fi.Size() == 0 {
		return nil
	}
	last := make([]byte, 1)
	if _, err := r.ReadAt(last, fi.Size()-1); err != nil || last[0] == '\n' {
		return nil
	}
	_, err = f.Write([]byte{'\n'})
	return err
}

// Reopen opens the file at the log's path again (after a rotation moved
// the old one away) and closes the old one; standard output stays.
func (l *Log) Reopen() error {
	if l.f == nil {
		return nil
	}
	f, err := openFile(l.path)
	if err != nil {
		return err
	}
	l.mu.Lock()
	old := l.f
	l.w, l.f = f, f
	l.torn = false // a new file; openFile ended an old one's fragment
	l.mu.Unlock()
	return old.Close()
}

// Close closes the file.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f, l.w = nil, io.Discard
	return err
}

// write appends r as one line.
func (l *Log) write(r *Record) {
	r.ManagementEvent, r.EventCategory = true, categoryManagement
	r.RecipientAccountID = cmp.Or(l.Account, r.UserIdentity.AccountID)
	// CloudTrail puts awsRegion in every record, and its queries select
	// by it: a record whose scope names none (an operator's, a gateway's
	// of a scope stored without one) is in the first served region.
	r.AWSRegion = cmp.Or(r.AWSRegion, l.Region)
	if r.ReadOnly == nil && r.EventType == typeServiceEvent {
		// A login, a session's end, a group granted or revoked, a
		// revocation, identities applied: each changes what may log in or
		// what a session holds (a refused login too, as CloudTrail's
		// failed ConsoleLogin is not read-only).
		ro := false
		r.ReadOnly = &ro
	}
	if r.AdditionalEventData == nil && (l.Replica != "" || !r.at.IsZero()) {
		r.AdditionalEventData = map[string]any{}
	}
	if l.Replica != "" {
		r.AdditionalEventData["replica"] = l.Replica
	}
	if !r.at.IsZero() {
		r.AdditionalEventData["eventTimePrecise"] = r.at.UTC().Format(eventTimePreciseFormat)
	}
	b, err := encode(r)
	if err != nil {
		l.logger().Error("audit record not encoded", "event", r.EventName, "error", err)
		return
	}
	b = append(b, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	lead := 0 // the newline that ends a fragment
	if l.torn {
		b, lead = append([]byte{'\n'}, b...), 1
	}
	if n, err := l.w.Write(b); err != nil {
		if n >= lead {
			l.torn = n > lead // part of this record made a fragment
		}
		l.lost.Add(1)
		if now := time.Now(); l.failing == nil || now.Sub(l.lastNotice) >= failNoticeEvery {
			l.logger().Error("audit log write failed: records are being lost", "path", l.path, "error", err, "lost_since_start", l.lost.Load())
			l.lastNotice = now
		}
		l.failing = err
		return
	}
	l.torn = false
	if l.failing != nil {
		l.logger().Info("audit log writes again", "path", l.path, "lost_since_start", l.lost.Load())
	}
	l.failing = nil
}

// Err is the error of the last write when it failed (records are being
// lost), else nil: /readyz reports it.
func (l *Log) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failing != nil {
		return fmt.Errorf("audit log %s: last write failed: %w", l.path, l.failing)
	}
	return nil
}

// Lost is how many records could not be written since the log opened.
func (l *Log) Lost() uint64 { return l.lost.Load() }

func (l *Log) logger() *slog.Logger {
	if l.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l.Logger
}

// APICall records an API call.
func (l *Log) APICall(e *shiftkey.APICall) { l.write(apiRecord(e, l.Region)) }

// Login records a gateway login, let in or refused.
func (l *Log) Login(e *shiftkey.Login) { l.write(loginRecord(e)) }

// SessionEnd records a session's end.
func (l *Log) SessionEnd(e *shiftkey.SessionEnd) { l.write(sessionEndRecord(e)) }

// Grant records a session group granted or revoked.
func (l *Log) Grant(e *shiftkey.GrantChange) { l.write(grantRecord(e)) }
