package boot

import (
	"github.com/uplinkhq/uplink/provision"
	"github.com/uplinkhq/uplink/provision/lite"
)

// newLite builds the lite-mode provisioner: a private PostgreSQL in
// DataDir, run as a supervised child. Its readiness check on an existing
// cluster is the app's pool's first connection (App.probe).
func (a *App) newLite() (provision.Provisioner, error) {
	cfg := a.cfg
	return lite.New(lite.Config{
		DataDir: cfg.DataDir, BinDir: cfg.PGBinDir, Install: cfg.PGInstall, Logger: cfg.Logger,
		Probe: a.probe,
	})
}
