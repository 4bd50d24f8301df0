// Package backoff computes the waits between retries that every part of
// Uplink shares: the connect loop of pro mode, the restarts of lite's
// server and of supervised services, the migration lock's polls and the
// boot steps.
//
// It is one function rather than a library's stateful object
// (cenkalti/backoff's ExponentialBackOff was used here first): every
// caller already counts its failures, and asking "how long after the n-th"
// keeps the loops free of a second piece of state to reset.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Exp returns the wait after the n-th failure in a row (n ≥ 1): lo doubled
// n-1 times and capped at hi, then drawn at random from its upper half
// ("equal jitter"), so that replicas failing together do not retry
// together, and no wait is shorter than half its step. lo ≤ 0 gives 0.
func Exp(n int, lo, hi time.Duration) time.Duration {
	if lo <= 0 {
		return 0
	}
	d := lo
	for i := 1; i < n && d < hi; i++ {
		d *= 2
	}
	d = min(d, max(hi, lo))
	return d/2 + rand.N(d/2+1)
}
