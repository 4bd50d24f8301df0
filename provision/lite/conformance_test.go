package lite_test

import (
	"path/filepath"
	"testing"

	"github.com/uplinkhq/uplink/internal/pgtest"
	"github.com/uplinkhq/uplink/provision"
	"github.com/uplinkhq/uplink/provision/lite"
	"github.com/uplinkhq/uplink/provision/provisiontest"
)

func TestConformance(t *testing.T) {
	pgtest.Binaries(t)
	provisiontest.Run(t, provisiontest.Harness{
		Mode: provision.ModeLite,
		New: func(t *testing.T) provision.Provisioner {
			l, err := lite.New(lite.Config{DataDir: filepath.Join(pgtest.BaseDir(t), "uplink")})
			if err != nil {
				t.Fatal(err)
			}
			return l
		},
	})
}
