package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"

	"github.com/shiftkey/shiftkey/config"
)

// Reload applies what can change while serving (SIGHUP): the config file
// at path is read again, its identities reconciled into the store (as at
// start), the certificates of the API and the gateways read again, and the
// audit file reopened (after rotation). Sessions and listeners stay. A
// config that does not load changes nothing; other changes wait for a
// restart, which the log says.
func (s *Serve) Reload(ctx context.Context, path string) error {
	var errs []error
	if s.Audit != nil {
		// First, so that rotation works even when the new config is bad.
		// Its failure is its own line: the config still applies, and an
		// error from Reload reads as "nothing changed".
		if err := s.Audit.Reopen(); err != nil {
			s.Logger.Error("reload: reopening the audit log failed: its records go on to the file it had open", "file", s.Config.Audit.File, "error", err)
		}
	}
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	// The certificates are read before anything changes: a reload that
	// fails on them applies nothing, identities included.
	type swap struct {
		cur  *atomic.Pointer[tls.Certificate]
		cert *tls.Certificate
	}
	var swaps []swap
	for _, c := range []struct {
		field string
		pair  config.CertPair
		cur   *atomic.Pointer[tls.Certificate]
	}{{"tls", cfg.TLS.CertPair, &s.gatewayCert}, {"api.tls", cfg.API.TLS, &s.apiCert}} {
		switch {
		case c.pair.Enabled() != (c.cur.Load() != nil):
			s.Logger.Warn("reload: turning TLS on or off needs a restart", "field", c.field)
		case c.pair.Enabled():
			cert, err := c.pair.Certificate(c.field)
			if err != nil {
				return err
			}
			swaps = append(swaps, swap{c.cur, cert})
		}
	}
	// In the running account: account_id, as the other settings, waits
	// for a restart, and identities made with another account's ARNs
	// would keep them.
	declared := *cfg
	declared.AccountID = s.AccountID
	changes, err := declared.ApplyIdentities(ctx, s.DeclaringStore())
	if err != nil {
		// The store applies them in one transaction, rolled back: the
		// changes made before the error are not there to log or audit.
		errs = append(errs, fmt.Errorf("apply iam config (none of its identity changes applied): %w", err))
	} else {
		changes.Log(ctx, s.Logger)
		s.auditIdentities(changes, "reload", path)
	}
	for _, sw := range swaps {
		sw.cur.Store(sw.cert)
	}
	if fields := restartFields(s.Config, cfg); len(fields) > 0 {
		s.Logger.Warn("reload: these settings change at the next restart", "fields", fields)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	s.Logger.Info("config reloaded", "identities_changed", len(changes))
	return nil
}

// restartFields names the top-level settings of next that differ from
// cur's and that a reload does not apply: all but iam and the
// certificate files of tls and api.tls.
func restartFields(cur, next *config.Config) []string {
	a, b := *cur, *next
	for _, c := range []*config.Config{&a, &b} {
		c.IAM = config.IAMConfig{}
		c.TLS.CertFile, c.TLS.KeyFile, c.API.TLS.CertFile, c.API.TLS.KeyFile = "", "", "", ""
	}
	var out []string
	va, vb, ty := reflect.ValueOf(a), reflect.ValueOf(b), reflect.TypeOf(a)
	for i := range ty.NumField() {
		if !reflect.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
			name, _, _ := strings.Cut(ty.Field(i).Tag.Get("yaml"), ",")
			out = append(out, name)
		}
	}
	return out
}
