package boot

import (
	"github.com/uplinkhq/uplink/provision"
	"github.com/uplinkhq/uplink/provision/pro"
)

// newPro builds the pro-mode provisioner for DATABASE_URL.
func newPro(cfg Config) (provision.Provisioner, error) {
	return pro.New(pro.Config{
		URL: cfg.DatabaseURL, CAFile: cfg.DatabaseCAFile, Logger: cfg.Logger,
		InitialBackoff: cfg.RetryMin, MaxBackoff: cfg.RetryMax,
	})
}
