package metrics

import (
	"context"
	"time"

	"github.com/shiftkey/shiftkey"
)

// Store times the calls on a login's and an API request's path (credential
// lookups and issues, key and session lookups, grants, decisions) and
// passes every other call through.
func (m *Metrics) Store(st shiftkey.Store) shiftkey.Store { return &timedStore{Store: st, m: m} }

type timedStore struct {
	shiftkey.Store
	m *Metrics
}

// observe records a call that began at start and ended with err; a
// not-found answer is an answer, not a failure.
func (t *timedStore) observe(op string, start time.Time, err error) {
	t.m.storeDuration.WithLabelValues(op).Observe(time.Since(start).Seconds())
	if err != nil {
		switch shiftkey.ErrorCode(err) {
		case shiftkey.CodeNoSuchEntity, shiftkey.CodeClusterNotFound, shiftkey.CodeResourceNotFound:
		default:
			t.m.storeErrors.WithLabelValues(op).Inc()
		}
	}
}

func (t *timedStore) LiveCredentials(ctx context.Context, cluster, login string, now time.Time) ([]*shiftkey.Credential, shiftkey.LoginSalt, bool, error) {
	start := time.Now()
	c, s, ok, err := t.Store.LiveCredentials(ctx, cluster, login, now)
	t.observe("LiveCredentials", start, err)
	return c, s, ok, err
}

func (t *timedStore) MissedCredentials(ctx context.Context, cluster, login string, known []*shiftkey.Credential, now time.Time) ([]*shiftkey.Credential, error) {
	start := time.Now()
	c, err := t.Store.MissedCredentials(ctx, cluster, login, known, now)
	t.observe("MissedCredentials", start, err)
	return c, err
}

func (t *timedStore) CreateCredential(ctx context.Context, c *shiftkey.Credential) error {
	start := time.Now()
	err := t.Store.CreateCredential(ctx, c)
	t.observe("CreateCredential", start, err)
	return err
}

func (t *timedStore) LoginSalt(ctx context.Context, cluster, login, scopeID string, fresh shiftkey.LoginSalt) (shiftkey.LoginSalt, error) {
	start := time.Now()
	s, err := t.Store.LoginSalt(ctx, cluster, login, scopeID, fresh)
	t.observe("LoginSalt", start, err)
	return s, err
}

func (t *timedStore) AccessKey(ctx context.Context, id string) (*shiftkey.AccessKey, error) {
	start := time.Now()
	k, err := t.Store.AccessKey(ctx, id)
	t.observe("AccessKey", start, err)
	return k, err
}

func (t *timedStore) Session(ctx context.Context, accessKeyID string) (*shiftkey.Session, error) {
	start := time.Now()
	s, err := t.Store.Session(ctx, accessKeyID)
	t.observe("Session", start, err)
	return s, err
}

func (t *timedStore) EntityByID(ctx context.Context, kind shiftkey.EntityKind, id string) (*shiftkey.Entity, error) {
	start := time.Now()
	e, err := t.Store.EntityByID(ctx, kind, id)
	t.observe("EntityByID", start, err)
	return e, err
}

func (t *timedStore) Entity(ctx context.Context, kind shiftkey.EntityKind, name string) (*shiftkey.Entity, error) {
	start := time.Now()
	e, err := t.Store.Entity(ctx, kind, name)
	t.observe("Entity", start, err)
	return e, err
}

func (t *timedStore) RecordGrant(ctx context.Context, g shiftkey.SessionGrant) error {
	start := time.Now()
	err := t.Store.RecordGrant(ctx, g)
	t.observe("RecordGrant", start, err)
	return err
}

func (t *timedStore) ForgetGrant(ctx context.Context, g shiftkey.SessionGrant) error {
	start := time.Now()
	err := t.Store.ForgetGrant(ctx, g)
	t.observe("ForgetGrant", start, err)
	return err
}

func (t *timedStore) RecordDecision(ctx context.Context, d *shiftkey.DecisionRecord) error {
	start := time.Now()
	err := t.Store.RecordDecision(ctx, d)
	t.observe("RecordDecision", start, err)
	return err
}
