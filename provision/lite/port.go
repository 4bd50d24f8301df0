package lite

import (
	"math/rand/v2"
	"net"
	"strconv"
	"time"
)

// freePort asks the kernel for a free port on 127.0.0.1. Another program
// may take it before PostgreSQL binds it; the next start then moves on.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// portFree reports whether PostgreSQL could bind port on 127.0.0.1 now.
func portFree(port int) bool {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

// backoff is the wait before restart number n (from 1): lo doubled per
// earlier failure, capped at hi, plus up to a fifth more so that many
// Uplinks on one host do not restart in step.
func backoff(n int, lo, hi time.Duration) time.Duration {
	d := lo
	for i := 1; i < n && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	return d + rand.N(d/5+1)
}
