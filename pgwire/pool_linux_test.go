package pgwire

import (
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// The answer to the DISCARD ALL that the event relay left unread decides
// whether a pooled socket serves again: idle and nothing more, with the
// parameter statuses it reports taken in; an error, a transaction, bytes
// after ReadyForQuery, a hang-up or silence refuse it.
func TestReadReset(t *testing.T) {
	msgs := encodeBackend
	done := &pgproto3.CommandComplete{CommandTag: []byte("DISCARD ALL")}
	idle := &pgproto3.ReadyForQuery{TxStatus: 'I'}
	long := make([]byte, 3000) // a message longer than the first read
	for i := range long {
		long[i] = 'v'
	}
	for _, tc := range []struct {
		name   string
		answer []byte
		hangUp bool
		ok     bool
	}{
		{"clean", msgs(done, idle), false, true},
		{"parameter status", msgs(&pgproto3.ParameterStatus{Name: "application_name", Value: string(long)}, done, idle), false, true},
		{"error", msgs(&pgproto3.ErrorResponse{Severity: "ERROR", Code: "25001"}, idle), false, false},
		{"in a transaction", msgs(done, &pgproto3.ReadyForQuery{TxStatus: 'T'}), false, false},
		{"more after ReadyForQuery", msgs(done, idle, &pgproto3.NoticeResponse{Message: "x"}), false, false},
		{"hung up", msgs(done), true, false},
		{"silent", nil, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer syscall.Close(fds[0])
			backend := os.NewFile(uintptr(fds[1]), "backend")
			defer backend.Close()
			// Written in two parts, as it may arrive.
			half := len(tc.answer) / 2
			backend.Write(tc.answer[:half])
			go func() {
				backend.Write(tc.answer[half:])
				if tc.hangUp {
					backend.Close()
				}
			}()
			pc := &pooledConn{fd: fds[0], params: map[string]string{"application_name": "before"}, resetDue: true}
			err = pc.readReset(time.Now().Add(500 * time.Millisecond))
			if (err == nil) != tc.ok {
				t.Fatalf("readReset: %v, want ok %v", err, tc.ok)
			}
			if tc.ok && pc.resetDue {
				t.Fatal("still resetDue after the answer was read")
			}
			if tc.name == "parameter status" && pc.params["application_name"] != string(long) {
				t.Fatalf("application_name %d bytes, want the %d reported", len(pc.params["application_name"]), len(long))
			}
		})
	}
}
