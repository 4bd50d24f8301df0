package pro_test

import (
	"testing"

	"github.com/uplinkhq/uplink/internal/pgtest"
	"github.com/uplinkhq/uplink/provision"
	"github.com/uplinkhq/uplink/provision/pro"
	"github.com/uplinkhq/uplink/provision/provisiontest"
)

func TestConformance(t *testing.T) {
	provisiontest.Run(t, provisiontest.Harness{
		Mode: provision.ModePro,
		New: func(t *testing.T) provision.Provisioner {
			p, err := pro.New(pro.Config{URL: pgtest.Shared(t).NewDatabase(t)})
			if err != nil {
				t.Fatal(err)
			}
			return p
		},
	})
}
