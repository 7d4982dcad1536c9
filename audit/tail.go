package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"time"
)

// Filter selects records; zero fields match everything.
type Filter struct {
	// Principal matches the ARN of the record's identity, or of the role
	// behind an assumed-role session.
	Principal string
}

// Match reports whether the record r (one line of the log) is selected.
func (f Filter) Match(r *Record) bool {
	if f.Principal == "" {
		return true
	}
	id := r.UserIdentity
	return id.ARN == f.Principal || id.SessionContext != nil && id.SessionContext.SessionIssuer.ARN == f.Principal
}

// Copy writes to w the lines of r that f selects, unchanged; lines that
// are not records are skipped. It returns at the end of r.
func Copy(w io.Writer, r io.Reader, f Filter) error {
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 && line[len(line)-1] == '\n' {
			if err := emit(w, line, f); err != nil {
				return err
			}
		} else if len(line) > 0 && err == io.EOF {
			return emit(w, append(line, '\n'), f)
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func emit(w io.Writer, line []byte, f Filter) error {
	var rec Record
	if json.Unmarshal(bytes.TrimSpace(line), &rec) != nil || !f.Match(&rec) {
		return nil
	}
	_, err := w.Write(line)
	return err
}

// FollowInterval is how often Follow looks for new lines and rotation.
var FollowInterval = 200 * time.Millisecond

// Follow writes the selected lines of the file at path as Copy does, then
// keeps writing those appended until ctx ends, following the path to a new
// file when the log is rotated (as tail -F).
func Follow(ctx context.Context, w io.Writer, path string, f Filter) error {
	file, err := os.Open(path)
	if err != nil {
		return err
	}
	defer func() { file.Close() }()
	var partial []byte
	read := func() error {
		b, err := io.ReadAll(file)
		if err != nil {
			return err
		}
		b = append(partial, b...)
		last := bytes.LastIndexByte(b, '\n')
		if last < 0 {
			partial = b
			return nil
		}
		partial = append([]byte(nil), b[last+1:]...)
		return Copy(w, bytes.NewReader(b[:last+1]), f)
	}
	t := time.NewTicker(FollowInterval)
	defer t.Stop()
	for {
		if err := read(); err != nil {
			return err
		}
		// Rotated: the path names another file now. Finish the old one,
		// then go on with the new.
		if cur, err := os.Stat(path); err == nil {
			if old, err := file.Stat(); err == nil && !os.SameFile(cur, old) {
				if err := read(); err != nil {
					return err
				}
				nf, err := os.Open(path)
				if err == nil {
					file.Close()
					file, partial = nf, nil
					continue
				}
			}
		} else if !errors.Is(err, os.ErrNotExist) {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
