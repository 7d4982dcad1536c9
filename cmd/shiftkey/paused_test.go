package main

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/redshift"
	"github.com/jackc/pgx/v5"
)

// A replica paused (SIGSTOP) for longer than its lease, whose session
// shares a group with a session on another replica: when the other
// replica's session ends, the group stays, because the paused replica's
// session is still open on the backend (the rule the sweep follows for a
// lapsed lease); once resumed, its session still has the group, and the
// group goes with that last session. Before, the release on B revoked the
// membership as soon as A's lease had lapsed (its record counted as no
// holder), and A's session, resumed, ran on without the group while A
// believed it held it.
func TestPausedReplicaKeepsItsSessionsGroup(t *testing.T) {
	ctx := context.Background()
	storeURL := newStoreDB(t, "paused_")
	group, victim := fresh("paused_grp"), fresh("paused_victim")
	adminExec(t, dev, "DO $$ BEGIN CREATE ROLE "+group+" NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
	keyFile := newStoreKey(t)
	a, cfgA := replicaConfig(t, storeURL, keyFile, "")
	b, cfgB := replicaConfig(t, storeURL, keyFile, "")
	pa := startReplicaProcess(t, cfgA)
	a.cmd, a.stdin = pa.cmd, pa.stdin
	serveInProcess(t, cfgB)
	vc, err := b.redshift("CI_KEY", "CI_SECRET").GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{
		ClusterIdentifier: aws.String("shared"), DbUser: aws.String(victim), AutoCreate: aws.Bool(true), DbGroups: []string{group}})
	if err != nil {
		t.Fatal(err)
	}
	login := func(r *replica) *pgx.Conn {
		t.Helper()
		c, err := r.connect(ctx, aws.ToString(vc.DbUser), aws.ToString(vc.DbPassword))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(ctx) })
		return c
	}
	inGroup := func(c *pgx.Conn) bool { return sessionInGroup(t, c, group) }
	onA, onB := login(a), login(b)
	if !inGroup(onA) || !inGroup(onB) {
		t.Fatalf("%s is not in %s in its sessions on A and B", victim, group)
	}

	// Pause A for longer than its lease (3s, renewed every second).
	pid := a.cmd.Process.Pid
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			syscall.Kill(pid, syscall.SIGCONT)
		}
	}
	t.Cleanup(resume)
	time.Sleep(4500 * time.Millisecond)
	onB.Close(ctx)
	poll(t, 5*time.Second, "B's session of "+victim+" ended on the backend", func() bool { return !active(t, victim, 2) })
	// B's release, and a sweep or two of B's (every half lease).
	time.Sleep(2 * time.Second)
	if !member(t, victim, group) {
		t.Fatal("with A paused past its lease, the end of B's session revoked the group A's open session holds")
	}
	// A new session on B asks for the group while A's lease is still out:
	// the membership is A's grant, not the role's own, so B shares it.
	again := login(b)
	if !inGroup(again) {
		t.Fatalf("B's new session is not in %s", group)
	}
	resume()
	if !inGroup(onA) {
		t.Fatal("A's session, resumed, lost the group A believes it holds")
	}
	// Past another lease, the membership stays for the sessions holding it.
	for end := time.Now().Add(4 * time.Second); time.Now().Before(end); time.Sleep(250 * time.Millisecond) {
		if !member(t, victim, group) {
			t.Fatal("the group went while A's resumed session and B's new one hold it")
		}
	}
	onA.Close(ctx)
	poll(t, 5*time.Second, "A's session of "+victim+" ended on the backend", func() bool { return !active(t, victim, 2) })
	time.Sleep(2 * time.Second)
	if !inGroup(again) {
		t.Fatal("the end of A's session revoked the group B's session asked for while A was paused")
	}
	again.Close(ctx)
	poll(t, 10*time.Second, "the group went with the last session", func() bool { return !member(t, victim, group) })
}

// Three replicas: A's session and C's share a group, and A is paused past
// its lease while B sweeps. B leaves A's record alone (C holds the
// membership, so there is nothing to revoke), so that A, resumed, renews
// it, and the end of C's session leaves the group to A's. Before, B's
// sweep deleted A's lapsed record as a dead owner's, A's renewal (an
// UPDATE of its records) found none, and when C's session ended C saw no
// other holder and revoked the group from under A's session.
func TestPausedReplicaKeepsItsRecordThroughAnotherReplicasSweep(t *testing.T) {
	ctx := context.Background()
	storeURL := newStoreDB(t, "paused3_")
	group, victim := fresh("paused3_grp"), fresh("paused3_victim")
	adminExec(t, dev, "DO $$ BEGIN CREATE ROLE "+group+" NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
	keyFile := newStoreKey(t)
	a, cfgA := replicaConfig(t, storeURL, keyFile, "")
	_, cfgB := replicaConfig(t, storeURL, keyFile, "")
	c, cfgC := replicaConfig(t, storeURL, keyFile, "")
	pa := startReplicaProcess(t, cfgA)
	a.cmd, a.stdin = pa.cmd, pa.stdin
	serveInProcess(t, cfgB)
	serveInProcess(t, cfgC)
	vc, err := c.redshift("CI_KEY", "CI_SECRET").GetClusterCredentials(ctx, &redshift.GetClusterCredentialsInput{
		ClusterIdentifier: aws.String("shared"), DbUser: aws.String(victim), AutoCreate: aws.Bool(true), DbGroups: []string{group}})
	if err != nil {
		t.Fatal(err)
	}
	login := func(r *replica) *pgx.Conn {
		t.Helper()
		conn, err := r.connect(ctx, aws.ToString(vc.DbUser), aws.ToString(vc.DbPassword))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close(ctx) })
		return conn
	}
	inGroup := func(c *pgx.Conn) bool { return sessionInGroup(t, c, group) }
	onA, onC := login(a), login(c)
	if !inGroup(onA) || !inGroup(onC) {
		t.Fatalf("%s is not in %s in its sessions on A and C", victim, group)
	}
	pid := a.cmd.Process.Pid
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			syscall.Kill(pid, syscall.SIGCONT)
		}
	}
	t.Cleanup(resume)
	// Past A's lease (3s), and a few of B's and C's sweeps (every 1.5s).
	time.Sleep(6 * time.Second)
	resume()
	time.Sleep(1500 * time.Millisecond) // A renews (every second)
	onC.Close(ctx)
	poll(t, 5*time.Second, "C's session of "+victim+" ended on the backend", func() bool { return !active(t, victim, 2) })
	time.Sleep(2 * time.Second)
	if !inGroup(onA) {
		t.Fatal("the end of C's session revoked the group A's resumed session holds")
	}
	onA.Close(ctx)
	poll(t, 10*time.Second, "the group went with the last session", func() bool { return !member(t, victim, group) })
}
