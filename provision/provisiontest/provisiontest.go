// Package provisiontest is the conformance suite every provision.Provisioner
// passes: what boot relies on, checked the same way for lite and pro.
package provisiontest

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/uplinkhq/uplink/provision"
	"github.com/uplinkhq/uplink/status"
)

// Harness makes provisioners for the suite.
type Harness struct {
	// New returns a provisioner whose database is, or will become,
	// available. The suite calls Stop on it; New may register more
	// cleanup with t.
	New func(t *testing.T) provision.Provisioner
	// Mode is the mode the provisioners must report.
	Mode provision.Mode
}

// Run runs the suite. Each subtest gets a provisioner of its own.
func Run(t *testing.T, h Harness) {
	t.Run("ProvisionGivesAWorkingDSN", func(t *testing.T) {
		p := h.New(t)
		defer stop(t, p)
		if p.Mode() != h.Mode {
			t.Errorf("Mode() = %q, want %q", p.Mode(), h.Mode)
		}
		dsn := provisionOK(t, p)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn.Secret())
		if err != nil {
			t.Fatalf("connect with the provisioned DSN %s: %v", dsn, err)
		}
		defer conn.Close(ctx)
		var n int
		if err := conn.QueryRow(ctx, "SELECT 1").Scan(&n); err != nil || n != 1 {
			t.Fatalf("SELECT 1 = %d, %v", n, err)
		}
		if c := p.Status(); c.Status != status.Pass {
			t.Errorf("Status after Provision = %+v, want pass", c)
		}
	})

	t.Run("StatusNeverShowsThePassword", func(t *testing.T) {
		p := h.New(t)
		defer stop(t, p)
		// Status is read while Provision runs, as /status does.
		done := make(chan struct{})
		var seen []status.Check
		go func() {
			defer close(done)
			for i := 0; i < 200; i++ {
				seen = append(seen, p.Status())
				time.Sleep(time.Millisecond)
			}
		}()
		dsn := provisionOK(t, p)
		<-done
		seen = append(seen, p.Status())
		_, password := provision.SplitPassword(dsn.Secret())
		if password == "" {
			return // nothing secret to leak
		}
		for _, c := range seen {
			b, err := json.Marshal(c)
			if err != nil {
				t.Fatalf("Status does not marshal: %v", err)
			}
			if strings.Contains(string(b), password) {
				t.Fatalf("Status shows the password: %s", b)
			}
		}
		if strings.Contains(dsn.String(), password) {
			t.Errorf("the DSN prints its password: %s", dsn)
		}
	})

	t.Run("FailedIsQuietWhileHealthy", func(t *testing.T) {
		p := h.New(t)
		defer stop(t, p)
		provisionOK(t, p)
		select {
		case err := <-p.Failed():
			t.Fatalf("Failed delivered on a healthy database: %v", err)
		case <-time.After(200 * time.Millisecond):
		}
	})

	t.Run("CancelReturnsPromptly", func(t *testing.T) {
		p := h.New(t)
		defer stop(t, p)
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() {
			_, err := p.Provision(ctx)
			errc <- err
		}()
		time.Sleep(20 * time.Millisecond)
		t0 := time.Now()
		cancel()
		select {
		case err := <-errc:
			// Having finished just before the cancel is fine too.
			if err != nil && ctx.Err() == nil {
				t.Fatalf("Provision = %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Provision still running 5s after its context was cancelled")
		}
		t.Logf("Provision returned %s after cancel", time.Since(t0))
	})

	t.Run("StopIsIdempotent", func(t *testing.T) {
		p := h.New(t)
		provisionOK(t, p)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := p.Stop(ctx); err != nil {
			t.Fatalf("first Stop: %v", err)
		}
		if err := p.Stop(ctx); err != nil {
			t.Fatalf("second Stop: %v", err)
		}
	})
}

func provisionOK(t *testing.T, p provision.Provisioner) provision.DSN {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dsn, err := p.Provision(ctx)
	if err != nil {
		t.Fatalf("Provision: %v (hint: %s)", err, status.HintOf(err))
	}
	return dsn
}

func stop(t *testing.T, p provision.Provisioner) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := p.Stop(ctx); err != nil {
		t.Errorf("Stop: %v", err)
	}
}
