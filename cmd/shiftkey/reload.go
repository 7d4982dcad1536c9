package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
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
		if err := s.Audit.Reopen(); err != nil {
			errs = append(errs, err)
		}
	}
	cfg, err := config.Load(path)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	changes, err := cfg.ApplyIdentities(ctx, s.Store)
	changes.Log(ctx, s.Logger)
	if err != nil {
		errs = append(errs, fmt.Errorf("apply iam config: %w", err))
	}
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
				errs = append(errs, err)
				continue
			}
			c.cur.Store(cert)
		}
	}
	if cfg.Audit.File != s.Config.Audit.File || cfg.Admin.Listen != s.Config.Admin.Listen || cfg.API.Listen != s.Config.API.Listen {
		s.Logger.Warn("reload: listeners and audit.file change at the next restart")
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	s.Logger.Info("config reloaded", "identities_changed", len(changes))
	return nil
}
