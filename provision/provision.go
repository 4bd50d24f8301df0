// Package provision defines how Uplink obtains the PostgreSQL it runs on.
//
// Two implementations plug into the Provisioner interface: provision/lite
// sets up and supervises a private server as a child process, and
// provision/pro connects to the server named by DATABASE_URL. The boot
// sequence only ever talks to this interface.
package provision

import (
	"context"
	"fmt"
	"strings"

	"github.com/uplinkhq/uplink/status"
)

// Mode is how Uplink gets its database.
type Mode string

const (
	// ModeAuto picks pro when DATABASE_URL is set, lite otherwise.
	ModeAuto Mode = "auto"
	// ModeLite runs a private PostgreSQL as a child process.
	ModeLite Mode = "lite"
	// ModePro uses the server named by DATABASE_URL.
	ModePro Mode = "pro"
)

// ParseMode checks a mode word from a flag or the environment; "" is auto.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(strings.ToLower(strings.TrimSpace(s))); m {
	case "":
		return ModeAuto, nil
	case ModeAuto, ModeLite, ModePro:
		return m, nil
	}
	return "", &status.ActionError{
		Problem: fmt.Sprintf("unknown mode %q", s),
		Hint:    "set UPLINK_MODE (or --mode) to auto, lite or pro",
	}
}

// Resolve turns auto into lite or pro. An explicit pro without a URL is a
// configuration error: Uplink never falls back to lite behind the
// operator's back.
func (m Mode) Resolve(databaseURL string) (Mode, error) {
	switch m {
	case ModeAuto, "":
		if databaseURL != "" {
			return ModePro, nil
		}
		return ModeLite, nil
	case ModePro:
		if databaseURL == "" {
			return "", &status.ActionError{
				Problem: "mode pro needs a database URL",
				Hint:    "set DATABASE_URL (or --database-url), or use UPLINK_MODE=lite",
			}
		}
	}
	return m, nil
}

// Provisioner makes a PostgreSQL database available and keeps telling how
// that goes. Implementations are safe for concurrent use: Status is called
// from HTTP handlers while Provision runs.
type Provisioner interface {
	// Mode names the implementation.
	Mode() Mode
	// Provision blocks until the database accepts connections and returns
	// how to reach it. It retries what may fix itself (server down,
	// network) with capped, jittered back-off, reporting each attempt in
	// Status, and returns early only when ctx ends or when a person must
	// act, with a *status.ActionError. Calling it again after an error
	// starts over.
	Provision(ctx context.Context) (DSN, error)
	// Status reports progress and health for /status. It never blocks on
	// the database.
	Status() status.Check
	// Failed delivers an error once when the provisioner gives up on a
	// database it had provided (lite: the server keeps crashing). A nil
	// channel, which never delivers, is fine for implementations that
	// never give up.
	Failed() <-chan error
	// Stop releases what Provision set up (lite: stops the server, last of
	// everything). It is idempotent and bounded by ctx.
	Stop(ctx context.Context) error
}

// Probe is how a provisioner may let its caller open the first
// connection to the database it provides: called with the DSN Provision
// is about to return, it logs in, asks for server_version_num (the proof
// that the server answers), and may keep the connection. boot passes one
// that makes it the first connection of the app's pool, so that a boot
// opens one session where it would open two (the provisioner's check,
// then the pool's). Its errors are those of connecting: provisioners
// classify them as they would their own.
type Probe func(ctx context.Context, dsn DSN) (serverVersionNum int, err error)

// DSN is a PostgreSQL connection string, URL or key=value form. It may
// carry a password, so its String and LogValue forms are redacted; call
// Secret only where the connection is actually made.
type DSN string

// Secret returns the connection string with its password.
func (d DSN) Secret() string { return string(d) }

// String returns the connection string with any password replaced.
func (d DSN) String() string { return Redact(string(d)) }
