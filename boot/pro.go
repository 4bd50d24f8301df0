package boot

import (
	"github.com/uplinkhq/uplink/provision"
	"github.com/uplinkhq/uplink/provision/pro"
)

// newPro builds the pro-mode provisioner for DATABASE_URL. Its readiness
// check is the app's pool's first connection (App.probe).
func (a *App) newPro() (provision.Provisioner, error) {
	cfg := a.cfg
	return pro.New(pro.Config{
		URL: cfg.DatabaseURL, CAFile: cfg.DatabaseCAFile, Logger: cfg.Logger,
		InitialBackoff: cfg.RetryMin, MaxBackoff: cfg.RetryMax,
		Probe: a.probe,
	})
}
