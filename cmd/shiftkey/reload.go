package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"

	"github.com/shiftkey/shiftkey/certauth"
	"github.com/shiftkey/shiftkey/config"
)

// Reload applies what can change while serving (SIGHUP): the config file
// at path is read again, its identities reconciled into the store (as at
// start), the certificates of the API and the gateways and the backends'
// CA read again, and the audit file reopened (after rotation); a store key
// file that no longer holds the store's key is warned of. Sessions and
// listeners stay. A config that does not load, or names another
// account_id, changes nothing; other changes wait for a restart, which the
// log says.
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
	if cfg.AccountID != s.AccountID {
		// Every stored identity's ARN names the running account: they
		// cannot follow, and a start in another account is refused too.
		return fmt.Errorf("account_id: the file says %q, but this server and its store's identities are in account %q, whose ARNs cannot move to another: set account_id back to %q",
			cfg.AccountID, s.AccountID, s.AccountID)
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
	// backend_auth's CA, read again as the certificates are: its files
	// may have been replaced in place, or the config names others.
	var ca *certauth.CA
	switch {
	case (cfg.BackendAuth.CACertFile != "") != (s.backendCA.Load() != nil):
		s.Logger.Warn("reload: turning backend certificate logins on or off needs a restart", "field", "backend_auth.ca_cert_file")
	case cfg.BackendAuth.CACertFile != "":
		if ca, err = loadBackendCA(cfg.BackendAuth); err != nil {
			return err
		}
		if bytes.Equal(ca.CertPEM, s.backendCA.Load().CertPEM) {
			ca = nil // the same CA: keep its cache of client certificates
		}
	}
	changes, err := cfg.ApplyIdentities(ctx, s.DeclaringStore())
	if err != nil {
		// The store applies them in one transaction, rolled back: the
		// changes made before the error are not there to log or audit.
		errs = append(errs, applyFailed(err))
	} else {
		changes.Log(ctx, s.Logger)
		s.auditIdentities(changes, "reload", path)
	}
	for _, sw := range swaps {
		sw.cur.Store(sw.cert)
	}
	if ca != nil {
		s.backendCA.Store(ca)
		s.Logger.Info("reload: backend CA replaced: new backend connections use it", "file", cfg.BackendAuth.CACertFile)
	}
	s.checkStoreKey(ctx, cfg)
	if fields := restartFields(s.Config, cfg); len(fields) > 0 {
		s.Logger.Warn("reload: these settings change at the next restart", "fields", fields)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	s.Logger.Info("config reloaded", "identities_changed", len(changes))
	return nil
}

// checkStoreKey warns when the store key file of cfg no longer holds the
// key the store seals under (replaced in place, another file named, or
// left behind by a rotation): a reload cannot take a key, the secrets
// being sealed under the store's, and the next start would refuse it.
// Only `shiftkey store rotate-key` changes the key.
func (s *Serve) checkStoreKey(ctx context.Context, cfg *config.Config) {
	if s.keyFromEnv {
		return // no file; a secret_key_file set now waits for a restart ("store")
	}
	k, path, err := cfg.Store.Key(false, s.Logger)
	if path == "" {
		return
	}
	if err != nil {
		s.Logger.Warn("reload: the store key file does not load: the running server keeps its key, the next start will fail; put the key back (docs/security.md)", "file", path, "error", err)
		return
	}
	id, file, err := s.SealingKey(ctx)
	if err != nil {
		s.Logger.Warn("reload: the store key file could not be checked against the store", "file", path, "error", err)
		return
	}
	if id != "" && k.ID() != id {
		s.Logger.Warn("reload: the store key file holds another key than the one the store seals under, and is not used: the running server keeps its key, the next start will refuse the file; "+
			"after a rotate-key, point store.secret_key_file at the new key's file (store_key_file); a key replaced by hand is never taken: put the store's key back, and change keys with shiftkey store rotate-key (docs/security.md)",
			"file", path, "file_key_id", k.ID(), "store_key_id", id, "store_key_file", file)
	}
}

// restartFields names the top-level settings of next that differ from
// cur's and that a reload does not apply: all but iam and the
// certificate files of tls, api.tls and backend_auth.
func restartFields(cur, next *config.Config) []string {
	a, b := *cur, *next
	for _, c := range []*config.Config{&a, &b} {
		c.IAM = config.IAMConfig{}
		c.TLS.CertFile, c.TLS.KeyFile, c.API.TLS.CertFile, c.API.TLS.KeyFile = "", "", "", ""
		c.BackendAuth.CACertFile, c.BackendAuth.CAKeyFile = "", ""
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
