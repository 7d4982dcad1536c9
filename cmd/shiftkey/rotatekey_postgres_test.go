package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	"github.com/jackc/pgx/v5"
	"github.com/shiftkey/shiftkey/config"
	"github.com/shiftkey/shiftkey/secretbox"
)

// `shiftkey store rotate-key --config` on a PostgreSQL store next to a
// running replica: its issues never fail, its next credentials are sealed
// under the new key, a replica started with the new key logs them in, and
// one started with the old key is refused.
func TestRotateKeyPostgresStore(t *testing.T) {
	ctx := context.Background()
	storeURL := newStoreDB(t, "rotate_")
	dir := t.TempDir()
	oldFile, newFile := filepath.Join(dir, "old.key"), filepath.Join(dir, "new.key")
	if _, err := secretbox.CreateKeyFile(oldFile); err != nil {
		t.Fatal(err)
	}
	for k, v := range replicaKeys {
		t.Setenv(k, v)
	}
	start := func(name, keyFile string) (*replica, *Serve, error) {
		t.Helper()
		r := &replica{api: freePort(t), gw: freePort(t)}
		// Redshift's password exchange without TLS: the code-13 logins below.
		y := strings.Replace(replicaYAML(storeURL, keyFile, r.api, r.gw),
			`gateway: {listen: "`+r.gw+`"}`, `gateway: {listen: "`+r.gw+`", redshift_auth_plaintext: true}`, 1)
		path := filepath.Join(dir, name+".yaml")
		if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		s := &Serve{Config: cfg, Logger: dev.Logger}
		if err := s.Start(ctx); err != nil {
			s.Close()
			return nil, nil, err
		}
		t.Cleanup(func() { s.Close() })
		return r, s, nil
	}
	a, _, err := start("a", oldFile)
	if err != nil {
		t.Fatal(err)
	}
	issue := func(r *replica, user string) (*redshift.GetClusterCredentialsOutput, error) {
		return r.redshift("CI_KEY", "CI_SECRET").GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{
			ClusterIdentifier: aws.String("shared"), DbUser: aws.String(user), AutoCreate: aws.Bool(true)})
	}
	before, err := issue(a, "rot_before")
	if err != nil {
		t.Fatal(err)
	}

	var (
		stop  atomic.Bool
		calls atomic.Int64
		wg    sync.WaitGroup
		errs  = make(chan error, 64)
		// the last credential issued while the rotation ran
		during atomic.Pointer[redshift.GetClusterCredentialsOutput]
	)
	for range 4 {
		wg.Go(func() {
			for !stop.Load() {
				c, err := issue(a, "rot_load")
				if err != nil {
					errs <- err
					return
				}
				calls.Add(1)
				during.Store(c)
			}
		})
	}
	var out bytes.Buffer
	rotErr := run(ctx, []string{"store", "rotate-key", "--config", filepath.Join(dir, "a.yaml"), "--new-key-file", newFile}, &out, &out)
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("an issue on the running replica during the rotation: %v", err)
	}
	if rotErr != nil {
		t.Fatalf("rotate-key: %v\n%s", rotErr, out.String())
	}
	if calls.Load() == 0 {
		t.Fatal("test premise: no issue ran")
	}
	t.Logf("%d issues during the rotation; %s", calls.Load(), strings.TrimSpace(out.String()))
	newKey, err := secretbox.LoadKeyFile(newFile)
	if err != nil {
		t.Fatal(err)
	}

	after, err := issue(a, "rot_after")
	if err != nil {
		t.Fatalf("the running replica issues after the rotation: %v", err)
	}
	raw, err := pgx.Connect(ctx, storeURL)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close(ctx)
	var notNew int
	if err := raw.QueryRow(ctx, `SELECT count(*) FROM credentials WHERE digests IS NULL OR NOT starts_with(digests, $1)`,
		secretbox.Prefix(newKey.ID())).Scan(&notNew); err != nil {
		t.Fatal(err)
	}
	if notNew != 0 {
		t.Fatalf("%d credentials not sealed under the new key", notNew)
	}

	if _, _, err := start("old", oldFile); err == nil {
		t.Fatal("a replica with the old key started after the rotation")
	}
	b, _, err := start("b", newFile)
	if err != nil {
		t.Fatalf("a replica with the new key: %v", err)
	}
	for _, c := range []*redshift.GetClusterCredentialsOutput{before, after} {
		conn, err := b.connect(ctx, aws.ToString(c.DbUser), aws.ToString(c.DbPassword))
		if err != nil {
			t.Fatalf("%s does not log in on the replica with the new key: %v", aws.ToString(c.DbUser), err)
		}
		conn.Close(ctx)
	}
	// The Redshift drivers' code-13 exchange checks the sealed verifiers:
	// credentials issued before, during and after the rotation log in so
	// on the running replica (old key, reading the new one from its file)
	// and on the one started with the new key.
	for _, r := range []*replica{a, b} {
		for _, c := range []*redshift.GetClusterCredentialsOutput{before, during.Load(), after} {
			s, _, err := driverLogin(t, r.gw, nil, cred{aws.ToString(c.DbUser), aws.ToString(c.DbPassword)})
			if err != nil {
				t.Fatalf("%s: code-13 login on %s after the rotation: %v", aws.ToString(c.DbUser), r.gw, err)
			}
			s.Close()
		}
	}
}
