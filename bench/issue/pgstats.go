package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// pgStats samples the store's PostgreSQL around each run: write
// transactions (xids assigned: exact, unlike pg_stat_database, whose
// counters backends publish up to a second late), WAL flushes
// (pg_stat_wal, published as late) and the CPU of every PostgreSQL
// process.
type pgStats struct {
	conn *pgx.Conn
	pid  int
}

type pgDelta struct {
	xacts, walSyncs int64
	commits         int64 // pg_stat_database: read-only ones too, published late
	sessions        int64 // connections opened (pg_stat_database, published late)
	cpu             time.Duration
}

func openPGStats(dsn string, pid int) (*pgStats, error) {
	c, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		return nil, err
	}
	return &pgStats{conn: c, pid: pid}, nil
}

// sample is a snapshot; a nil pgStats gives the zero one.
func (p *pgStats) sample() pgDelta {
	if p == nil {
		return pgDelta{}
	}
	var d pgDelta
	err := p.conn.QueryRow(context.Background(),
		`SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint, (SELECT wal_sync FROM pg_stat_wal),
		 (SELECT sum(xact_commit)::bigint FROM pg_stat_database), (SELECT sum(sessions)::bigint FROM pg_stat_database)`).Scan(
		&d.xacts, &d.walSyncs, &d.commits, &d.sessions)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pg stats:", err)
	}
	if p.pid > 0 {
		d.cpu = time.Duration(treeTicks(p.pid)) * 10 * time.Millisecond
	}
	return d
}

func (d pgDelta) since(o pgDelta) pgDelta {
	return pgDelta{xacts: d.xacts - o.xacts, walSyncs: d.walSyncs - o.walSyncs, commits: d.commits - o.commits,
		sessions: d.sessions - o.sessions, cpu: d.cpu - o.cpu}
}

func (d pgDelta) perIssue(n int) string {
	if n == 0 {
		return "-"
	}
	f := float64(n)
	return fmt.Sprintf("%.3f write transactions, %.3f commits (reads too), %.3f WAL flushes, %.3f ms CPU per issue; %d connections opened",
		float64(d.xacts)/f, float64(d.commits)/f, float64(d.walSyncs)/f, ms(d.cpu)/f, d.sessions)
}

// treeTicks is the CPU of pid and its children (PostgreSQL's processes are
// all the postmaster's children), exited children excluded.
func treeTicks(pid int) int64 {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if ppid, _ := strconv.Atoi(f[1]); n == pid || ppid == pid {
			pids = append(pids, n)
		}
	}
	var total int64
	for _, p := range pids {
		if t := cpuTicks(p); t >= 0 { // a backend that ended since the listing counts nothing
			total += t
		}
	}
	return total
}
