package starttask_test

import (
	"testing"

	"github.com/uplinkhq/uplink/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }
