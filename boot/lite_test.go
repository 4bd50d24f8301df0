package boot_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/uplinkhq/uplink/backup"
	"github.com/uplinkhq/uplink/boot"
	"github.com/uplinkhq/uplink/internal/pgtest"
	"github.com/uplinkhq/uplink/internal/testutil"
	"github.com/uplinkhq/uplink/status"
)

// TestWarmLiteBootThroughThePoolsProbe: boot builds lite with its own
// probe (the pool's first connection proves the server ready). A warm
// boot whose application role refuses the login — its password changed
// inside the cluster — still gets to ready: the probe's refusal, which
// comes wrapped by pgxpool, sends lite to the superuser, who sets
// pg/password's again. The boot after that is a quick one again.
func TestWarmLiteBootThroughThePoolsProbe(t *testing.T) {
	pgtest.Binaries(t)
	cfg := boot.Config{Mode: "lite", DataDir: pgtest.BaseDir(t), Backups: backup.Config{Interval: -1}}
	const refused = "the application's role or database refused the login"
	boots := func(i int, changeOwnPassword bool) string {
		t.Helper()
		r := run(t, cfg, nil)
		testutil.Eventually(t, "ready", 60*time.Second, phaseIs(r.app, status.PhaseReady))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := r.app.Pool().Exec(ctx, "SELECT 1"); err != nil {
			t.Fatalf("boot %d: the pool: %v", i, err)
		}
		if changeOwnPassword {
			if _, err := r.app.Pool().Exec(ctx, "ALTER ROLE CURRENT_USER PASSWORD 'changed-inside'"); err != nil {
				t.Fatal(err)
			}
		}
		if err := r.stop(); err != nil {
			t.Fatalf("boot %d: stop: %v", i, err)
		}
		return r.logs.String()
	}
	boots(1, false)                                              // cold
	if logs := boots(2, true); strings.Contains(logs, refused) { // warm and quick
		t.Errorf("boot 2 fell back to the superuser:\n%s", tailString(logs, 3000))
	}
	if logs := boots(3, false); !strings.Contains(logs, refused) {
		t.Errorf("boot 3: the changed password was not noticed and repaired:\n%s", tailString(logs, 3000))
	}
	if logs := boots(4, false); strings.Contains(logs, refused) {
		t.Errorf("boot 4 fell back to the superuser:\n%s", tailString(logs, 3000))
	}
}
