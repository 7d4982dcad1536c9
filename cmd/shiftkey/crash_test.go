package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	"github.com/jackc/pgx/v5"
	"github.com/shiftkey/shiftkey/internal/pgtest"
)

// freePort is a loopback address free now for a server the test starts
// later. It is drawn below Linux's ephemeral range (32768-60999 by
// default), not from it as port 0 would: there, any outgoing connection
// made in between could take it (a replica failed to bind its API port
// in one CI run), while nothing takes these but another such draw.
func freePort(t *testing.T) string {
	t.Helper()
	for range 1000 {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(20000+rand.IntN(12000)))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		l.Close()
		return addr
	}
	t.Fatal("no free port between 20000 and 32000")
	return ""
}

type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// startBinary runs `shiftkey dev` as its own process and waits until it
// prints its welcome, which it does once the API answers and dev.env is
// written.
func startBinary(t *testing.T, bin, dir, api, gw, wg string) *proc {
	t.Helper()
	cmd := exec.Command(bin, "dev", "--data-dir", dir, "--api-addr", api, "--gateway-addr", gw, "--workgroup-addr", wg, "--admin-addr", "127.0.0.1:0")
	log, err := os.Create(dir + ".log")
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	out, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = w, log
	err = cmd.Start()
	w.Close()
	if err != nil {
		out.Close()
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	ready := make(chan struct{})
	go func() {
		defer out.Close()
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "shiftkey dev is running.") {
				close(ready)
				io.Copy(io.Discard, out) // the rest of the welcome
				return
			}
		}
	}()
	select {
	case <-ready:
		return p
	case <-p.done:
		b, _ := os.ReadFile(log.Name())
		t.Fatalf("shiftkey dev exited:\n%s", b)
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		b, _ := os.ReadFile(log.Name())
		t.Fatalf("shiftkey dev did not come up:\n%s", b)
	}
	return nil
}

func (p *proc) stop() {
	select {
	case <-p.done:
	default:
		p.cmd.Process.Signal(syscall.SIGINT)
		<-p.done
	}
}

// A gateway killed with kill -9 while a session holds a DbGroups grant
// leaves the grant behind; the next start revokes it before serving.
func TestKill9LeavesNoGrantAfterRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	b := buildAndStartDev(t)
	base, bin, dir, api, gw, wg, vars := b.base, b.bin, b.dir, b.api, b.gw, b.wg, b.vars
	p := b.p
	defer func() { p.stop() }()
	adminConn := func() (*pgx.Conn, error) {
		// The server's port is picked afresh at each start: find its socket.
		socks, _ := filepath.Glob(filepath.Join(base, "data", "postgres.run", ".s.PGSQL.[0-9]*[0-9]"))
		if len(socks) != 1 {
			return nil, fmt.Errorf("sockets: %v", socks)
		}
		port := strings.TrimPrefix(filepath.Ext(socks[0]), ".")
		return pgx.Connect(context.Background(), fmt.Sprintf("host=%s port=%s user=%s dbname=dev sslmode=disable", filepath.Dir(socks[0]), port, DevMasterUser))
	}
	admin, err := adminConn()
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	if _, err := admin.Exec(context.Background(), "CREATE ROLE crashgrp NOLOGIN"); err != nil {
		t.Fatal(err)
	}
	isMember := func() bool { return pgtest.Member(t, admin, "crashuser", "crashgrp") }

	rs := redshift.New(redshift.Options{Region: DevRegion, BaseEndpoint: aws.String("http://" + api), Retryer: aws.NopRetryer{},
		Credentials: provider(aws.Credentials{AccessKeyID: vars["AWS_ACCESS_KEY_ID"], SecretAccessKey: vars["AWS_SECRET_ACCESS_KEY"]})})
	out, err := rs.GetClusterCredentials(context.Background(), &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String(DevCluster),
		DbUser: aws.String("crashuser"), AutoCreate: aws.Bool(true), DbGroups: []string{"crashgrp"}})
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(gw)
	session, err := pgx.Connect(context.Background(), fmt.Sprintf("host=%s port=%s dbname=dev sslmode=disable user=%s password=%s", host, port, aws.ToString(out.DbUser), aws.ToString(out.DbPassword)))
	if err != nil {
		t.Fatal(err)
	}
	defer session.Close(context.Background())
	if !isMember() {
		t.Fatal("the session's group was not granted")
	}

	p.cmd.Process.Kill() // kill -9: no chance to revoke
	<-p.done
	// The crash ends the backend's side of the session too.
	waitUntil(t, 20*time.Second, "crashuser's backend session to end", func() bool {
		var n int
		if err := admin.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity WHERE usename = 'crashuser'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 0
	})
	if !isMember() {
		t.Fatal("test premise: the crash should have left the grant behind")
	}
	admin.Close(context.Background())
	// Issue 13: what a crash leaves on disk (the store's WAL) holds no secret.
	assertNoSecrets(t, dir, map[string]string{"admin's secret key": vars["AWS_SECRET_ACCESS_KEY"], "DbPassword": aws.ToString(out.DbPassword)})

	p = startBinary(t, bin, dir, api, gw, wg)
	admin, err = adminConn()
	if err != nil {
		t.Fatal(err)
	}
	if isMember() {
		t.Fatal("the grant survived the restart")
	}
	// Finding 1: after kill -9 and a restart, the store's WAL and SHM are
	// still 0600, and under the binary's umask nothing is open to others.
	assertPrivateDataDir(t, dir)
	assertNoFileOpenToOthers(t, dir)
}

// Issue 16: a kill -9 in the middle of a burst of 64 concurrent issuers
// loses no acknowledged credential: after the restart every password the
// API returned logs in through the gateway.
func TestKill9MidBurstKeepsEveryAcknowledgedCredential(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	b := buildAndStartDev(t)
	bin, dir, api, gw, wg, vars := b.bin, b.dir, b.api, b.gw, b.wg, b.vars
	p := b.p
	defer func() { p.stop() }()
	rs := redshift.New(redshift.Options{Region: DevRegion, BaseEndpoint: aws.String("http://" + api), Retryer: aws.NopRetryer{},
		Credentials: provider(aws.Credentials{AccessKeyID: vars["AWS_ACCESS_KEY_ID"], SecretAccessKey: vars["AWS_SECRET_ACCESS_KEY"]})})

	all := burstUntilKilled(t, rs, DevCluster, func() { p.cmd.Process.Kill() }, p.done)

	p = startBinary(t, bin, dir, api, gw, wg)
	host, port, _ := net.SplitHostPort(gw)
	for i, a := range all {
		conn, err := pgx.Connect(context.Background(), fmt.Sprintf("host=%s port=%s dbname=dev sslmode=disable user=%s password=%s", host, port, a.user, a.password))
		if err != nil {
			t.Fatalf("acknowledged credential %d of %d (%s) does not log in after kill -9: %v", i+1, len(all), a.user, err)
		}
		conn.Close(context.Background())
	}
	t.Logf("%d credentials acknowledged before and around the kill; all log in after the restart", len(all))
}

// acked is a credential the API returned: it must log in.
type acked struct{ user, password string }

// burstUntilKilled runs 64 concurrent issuers against rs for cluster,
// calls kill (a kill -9 with requests in flight) once killAfter
// credentials are acknowledged, and returns every credential acknowledged
// by the time exited closes.
func burstUntilKilled(t *testing.T, rs *redshift.Client, cluster string, kill func(), exited <-chan struct{}) []acked {
	t.Helper()
	return burstUntilKilledUsers(t, rs, cluster, kill, exited, func(w, i int) string { return fmt.Sprintf("burst%d", (w+i)%4) })
}

// burstUntilKilledUsers is burstUntilKilled with the DbUser of worker w's
// i-th call given by user.
func burstUntilKilledUsers(t *testing.T, rs *redshift.Client, cluster string, kill func(), exited <-chan struct{}, user func(w, i int) string) []acked {
	t.Helper()
	const killAfter = 300
	var (
		mu   sync.Mutex
		got  []acked
		stop atomic.Bool
		wg   sync.WaitGroup
	)
	for w := range 64 {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				out, err := rs.GetClusterCredentials(context.Background(), &redshift.GetClusterCredentialsInput{ClusterIdentifier: aws.String(cluster),
					DbUser: aws.String(user(w, i)), AutoCreate: aws.Bool(true), DurationSeconds: aws.Int32(3600)})
				if err != nil {
					select {
					case <-exited:
						return
					default:
						continue // refused connections once the process is gone
					}
				}
				mu.Lock()
				got = append(got, acked{aws.ToString(out.DbUser), aws.ToString(out.DbPassword)})
				n := len(got)
				mu.Unlock()
				if n == killAfter {
					kill()
				}
			}
		})
	}
	<-exited
	stop.Store(true)
	wg.Wait()
	if len(got) < killAfter {
		t.Fatalf("only %d credentials acknowledged", len(got))
	}
	return got
}

// builtDev is the shiftkey binary built into a temporary base dir and
// started as dev on free ports, with dev.env's variables.
type builtDev struct {
	base, bin, dir, api, gw, wg string
	p                           *proc
	vars                        map[string]string
}

// buildAndStartDev builds the binary and starts it; the base dir is
// removed when the test ends (stopping the process is the test's, which
// may restart it).
func buildAndStartDev(t *testing.T) *builtDev {
	t.Helper()
	base, err := tempDataDir() // traversable by the postgres OS user
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	b := &builtDev{base: base, bin: filepath.Join(base, "shiftkey"), dir: filepath.Join(base, "data"),
		api: freePort(t), gw: freePort(t), wg: freePort(t), vars: map[string]string{}}
	if out, err := exec.Command("go", "build", "-o", b.bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	b.p = startBinary(t, b.bin, b.dir, b.api, b.gw, b.wg)
	env, err := os.ReadFile(filepath.Join(b.dir, "dev.env"))
	if err != nil {
		b.p.stop()
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(env), "\n") {
		if k, v, ok := strings.Cut(strings.TrimPrefix(line, "export "), "="); ok {
			b.vars[k] = strings.Trim(v, "'")
		}
	}
	return b
}
