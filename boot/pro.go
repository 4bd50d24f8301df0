package boot

import (
	"github.com/uplinkhq/uplink/provision"
	"github.com/uplinkhq/uplink/status"
)

// newPro builds the pro-mode provisioner.
func newPro(cfg Config) (provision.Provisioner, error) {
	return nil, &status.ActionError{Problem: "pro mode is not in this build yet"}
}
