package backoff_test

import (
	"testing"
	"time"

	"github.com/uplinkhq/uplink/internal/backoff"
)

func TestExp(t *testing.T) {
	steps := map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 5: 16 * time.Second, 6: 30 * time.Second, 100: 30 * time.Second}
	for n, step := range steps {
		seen := map[time.Duration]bool{}
		for range 200 {
			d := backoff.Exp(n, time.Second, 30*time.Second)
			if d < step/2 || d > step {
				t.Fatalf("Exp(%d) = %s, want within [%s, %s]", n, d, step/2, step)
			}
			seen[d] = true
		}
		if len(seen) < 10 {
			t.Errorf("Exp(%d) drew only %d distinct waits in 200: no jitter", n, len(seen))
		}
	}
	if d := backoff.Exp(3, 0, time.Second); d != 0 {
		t.Errorf("Exp with lo 0 = %s, want 0", d)
	}
	if d := backoff.Exp(1, 2*time.Second, time.Second); d < time.Second || d > 2*time.Second {
		t.Errorf("Exp with hi < lo = %s, want lo's step", d)
	}
}
