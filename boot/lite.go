package boot

import (
	"github.com/uplinkhq/uplink/provision"
	"github.com/uplinkhq/uplink/status"
)

// newLite builds the lite-mode provisioner.
func newLite(cfg Config) (provision.Provisioner, error) {
	return nil, &status.ActionError{
		Problem: "lite mode is not in this build yet",
		Hint:    "set DATABASE_URL to use pro mode",
	}
}
