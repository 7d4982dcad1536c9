package pgwire

import (
	"encoding/binary"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// Found in a review of the wire protocol's edges: the relay's protocol
// tracker kept the whole body of every ErrorResponse, NoticeResponse and
// ParameterStatus the backend sent, for the life of the session. Any role
// makes PostgreSQL send a 32 MB ErrorResponse with one short query (the
// error quotes its input), and the gateway then held 32 MB for as long as
// the session stayed open, however idle: a few clients could exhaust the
// memory of the process that serves every cluster. Only the first fields
// of those messages matter to the tracker.
func TestHugeBackendMessageIsNotKept(t *testing.T) {
	plainRelays(t, func(t *testing.T, relay func(*Gateway)) {
		_, addr := newGateway(t, relay)
		conn := rawLogin(t, addr)
		defer conn.Close()
		heap := func() int64 {
			var ms runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&ms)
			return int64(ms.HeapAlloc)
		}
		const size = 32 << 20
		before := heap()
		q, _ := (&pgproto3.Query{String: "SELECT repeat('x', 32 << 20)::int"}).Encode(nil)
		if _, err := conn.Write(q); err != nil {
			t.Fatal(err)
		}
		// Read the answer without keeping it: the ErrorResponse, then
		// ReadyForQuery.
		conn.SetReadDeadline(time.Now().Add(60 * time.Second))
		var got []string
		for {
			typ, n := readHeader(t, conn)
			if _, err := io.CopyN(io.Discard, conn, n); err != nil {
				t.Fatal(err)
			}
			got = append(got, string(typ))
			if typ == 'E' && n < size {
				t.Fatalf("ErrorResponse of %d bytes, want over %d", n, size)
			}
			if typ == 'Z' {
				break
			}
		}
		if len(got) != 2 || got[0] != "E" {
			t.Fatalf("answer %v, want E Z", got)
		}
		// The session is open and idle: what the gateway still holds for
		// it is a few kilobytes, not the message.
		if grew := heap() - before; grew > 8<<20 {
			t.Fatalf("the gateway holds %d MB more after relaying a %d MB ErrorResponse to an idle session", grew>>20, size>>20)
		}
	})
}

// readHeader reads a backend message's type and body length from c.
func readHeader(t *testing.T, c net.Conn) (byte, int64) {
	t.Helper()
	var hdr [5]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		t.Fatal(err)
	}
	return hdr[0], int64(binary.BigEndian.Uint32(hdr[1:])) - 4
}

// What the tracker keeps of a long message is enough for what it decides:
// a FATAL whose message is far longer than what is kept still ends the
// session, and a ParameterStatus too long to keep whole is not recorded
// cut short: the backend is not pooled (its statuses are not known).
func TestTrackerReadsTheHeadOfLongMessages(t *testing.T) {
	feed := func(st *relayState, b []byte) {
		for len(b) > 0 { // as a relay reads: in pieces
			n := min(len(b), 1000)
			st.FromBackend(b[:n])
			b = b[n:]
		}
	}
	st := &relayState{txStatus: 'I', params: map[string]string{}}
	fatal, _ := (&pgproto3.ErrorResponse{Severity: "FATAL", SeverityUnlocalized: "FATAL", Code: "XX000", Message: strings.Repeat("m", 100<<10)}).Encode(nil)
	feed(st, fatal)
	if !st.EndedByBackend() {
		t.Fatal("a FATAL with a 100 KB message was not taken as the backend ending the session")
	}
	q, _ := (&pgproto3.Query{String: "SET application_name = 'x'"}).Encode(nil)
	term, _ := (&pgproto3.Terminate{}).Encode(nil)
	for _, n := range []int{10, 100 << 10} {
		st := &relayState{txStatus: 'I', params: map[string]string{}}
		st.FromClient(q)
		ps, _ := (&pgproto3.ParameterStatus{Name: "application_name", Value: strings.Repeat("v", n)}).Encode(nil)
		rfq, _ := (&pgproto3.ReadyForQuery{TxStatus: 'I'}).Encode(nil)
		feed(st, append(ps, rfq...))
		st.FromClient(term)
		long := n > maxKept
		if v, ok := st.params["application_name"]; ok == long || ok && len(v) != n {
			t.Errorf("a %d-byte status recorded as %d bytes (recorded: %v)", n, len(v), ok)
		}
		if st.Clean() == long {
			t.Errorf("a %d-byte status: Clean() = %v", n, st.Clean())
		}
	}
}
