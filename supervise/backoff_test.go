package supervise

import (
	"testing"
	"time"
)

func TestBackoffDoublesToTheCapWithJitter(t *testing.T) {
	cfg, err := Config{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	for n, d := range map[int]time.Duration{
		1: time.Second, 2: 2 * time.Second, 5: 16 * time.Second,
		6: 30 * time.Second, 7: 30 * time.Second, 1000: 30 * time.Second,
	} {
		lo, hi := d, time.Duration(0)
		for range 200 {
			w := cfg.backoff(n)
			lo, hi = min(lo, w), max(hi, w)
		}
		if lo < d/2 || hi > d {
			t.Errorf("failure %d: waits within [%s, %s], want within [%s, %s]", n, lo, hi, d/2, d)
		}
		if hi-lo < d/10 {
			t.Errorf("failure %d: waits within [%s, %s]: no jitter", n, lo, hi)
		}
	}
}
