package server

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shiftkey/shiftkey/config"
)

// Finding 1, serve: a store readable by others is refused with the chmod
// that fixes it.
func TestFinding1ServeRefusesReadableStore(t *testing.T) {
	dir := t.TempDir()
	c := config.StoreConfig{SQLite: filepath.Join(dir, "s.db")}
	db, err := OpenStore(context.Background(), c, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	os.Chmod(c.SQLite, 0o640)
	if db, err = OpenStore(context.Background(), c, slog.New(slog.DiscardHandler)); err == nil {
		db.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "chmod 600 "+c.SQLite) {
		t.Fatalf("store 0640: %v", err)
	}
}
