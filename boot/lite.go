package boot

import (
	"github.com/uplinkhq/uplink/provision"
	"github.com/uplinkhq/uplink/provision/lite"
)

// newLite builds the lite-mode provisioner: a private PostgreSQL in
// DataDir, run as a supervised child.
func newLite(cfg Config) (provision.Provisioner, error) {
	return lite.New(lite.Config{
		DataDir: cfg.DataDir, BinDir: cfg.PGBinDir, Install: cfg.PGInstall, Logger: cfg.Logger,
	})
}
