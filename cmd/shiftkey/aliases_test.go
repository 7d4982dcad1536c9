package main

import (
	"context"

	"github.com/shiftkey/shiftkey/devenv"
	"github.com/shiftkey/shiftkey/sqlite"
)

// The tests here drive `shiftkey dev` through package devenv; these are
// the names they were written with.
type Dev = devenv.Dev

const (
	DevRegion       = devenv.Region
	DevCluster      = devenv.Cluster
	DevDatabase     = devenv.Database
	DevMasterUser   = devenv.MasterUser
	DevAdminUser    = devenv.AdminUser
	DevWorkgroup    = devenv.Workgroup
	DevNamespace    = devenv.Namespace
	devStoreName    = devenv.StoreName
	devStoreKeyName = devenv.StoreKeyName
)

func openDevStore(ctx context.Context, dir string, create bool) (*sqlite.DB, error) {
	return devenv.OpenStore(ctx, dir, create)
}
