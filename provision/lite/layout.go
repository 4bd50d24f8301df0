package lite

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/uplinkhq/uplink/internal/pgbin"
	"github.com/uplinkhq/uplink/status"
)

// Layout names the files Lite keeps under a data directory:
//
//	<root>/uplink.lock         flock held for the life of the process
//	<root>/pg/                 0755, root's (or Uplink's user's)
//	<root>/pg/data/            the cluster, 0700, the postgres user's
//	<root>/pg/run/             unix socket, 0700, the postgres user's
//	<root>/pg/log/postgres.log server log, size-rotated (.1, .2, ...)
//	<root>/pg/state.json       major, bindir, port, created, app verifier MAC
//	<root>/pg/password         0600: the application role's password (the DSN's)
//	<root>/pg/superuser-password 0600: the postgres role's, for Uplink alone
type Layout struct {
	Root, PG, Data, Run, LogDir, LogFile, State, Password, SuperPassword, Lock string
}

// LayoutOf returns the layout under dataDir.
func LayoutOf(dataDir string) Layout {
	pg := filepath.Join(dataDir, "pg")
	return Layout{
		Root:          dataDir,
		PG:            pg,
		Data:          filepath.Join(pg, "data"),
		Run:           filepath.Join(pg, "run"),
		LogDir:        filepath.Join(pg, "log"),
		LogFile:       filepath.Join(pg, "log", "postgres.log"),
		State:         filepath.Join(pg, "state.json"),
		Password:      filepath.Join(pg, "password"),
		SuperPassword: filepath.Join(pg, "superuser-password"),
		Lock:          filepath.Join(dataDir, "uplink.lock"),
	}
}

// initdbPwfile is where initdb finds the superuser's password, as a SCRAM
// verifier (see Lite.initdb), readable by the postgres user for the
// second initdb needs it.
func (l Layout) initdbPwfile() string { return filepath.Join(l.PG, ".initdb-pwfile") }

// initdbMarker exists while initdb works in pg/data itself (a pg/data
// that existed, empty, as a mounted volume does): an initdb killed there
// leaves a PG_VERSION in a cluster that is not whole.
func (l Layout) initdbMarker() string { return filepath.Join(l.PG, "initdb-incomplete") }

// maxSocketPath is the longest unix socket path Linux accepts
// (sun_path holds 108 bytes with the terminating NUL).
const maxSocketPath = 107

// checkSocketPath refuses a data directory so deep that PostgreSQL could
// not create its socket in pg/run.
func (l Layout) checkSocketPath() error {
	if p := filepath.Join(l.Run, ".s.PGSQL.65535"); len(p) > maxSocketPath {
		return &status.ActionError{
			Problem: fmt.Sprintf("the socket path %s is %d bytes, over the %d a unix socket allows", p, len(p), maxSocketPath),
			Hint:    "set UPLINK_DATA_DIR to a shorter path (default /var/lib/uplink)",
		}
	}
	return nil
}

// mkdirRoot creates the data directory if needed, 0755 whatever the umask
// so that the postgres user can pass through it. An existing directory
// keeps its mode: it is the operator's.
func mkdirRoot(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.Chmod(dir, 0o755)
}

// clusterState is what Inspect finds in pg/data.
type clusterState int

const (
	noCluster     clusterState = iota // absent or empty: initdb will run
	clusterExists                     // PG_VERSION present
)

// inspect looks at the data directory without changing anything, and
// refuses what Uplink must not touch. It returns the cluster's major when
// one exists.
func (l Layout) inspect() (clusterState, int, error) {
	if _, err := os.Stat(l.initdbMarker()); err == nil {
		if entries, err := os.ReadDir(l.Data); err == nil && len(entries) > 0 {
			return 0, 0, &status.ActionError{
				Problem: "an initdb in " + l.Data + " was interrupted: it holds a cluster that is not whole, and no data of yours",
				Hint:    "empty it, keeping the directory (rm -rf " + l.Data + "/* and " + l.initdbMarker() + "), then restart Uplink; it will run initdb again",
			}
		}
	}
	if _, err := os.Stat(filepath.Join(l.Root, "PG_VERSION")); err == nil {
		return 0, 0, &status.ActionError{
			Problem: l.Root + " is itself a PostgreSQL data directory",
			Hint:    "point UPLINK_DATA_DIR at a directory of Uplink's own (the cluster lives in its pg/data); to adopt this cluster, move it to <UPLINK_DATA_DIR>/pg/data",
		}
	}
	major, err := pgbin.DataMajor(l.Data)
	switch {
	case err == nil:
		return clusterExists, major, nil
	case !errors.Is(err, fs.ErrNotExist):
		return 0, 0, &status.ActionError{Problem: "cannot read the cluster's version", Err: err, Hint: "check " + l.Data + "/PG_VERSION"}
	}
	entries, err := os.ReadDir(l.Data)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return noCluster, 0, nil
	case err != nil:
		return 0, 0, &status.ActionError{Problem: "cannot read " + l.Data, Err: err}
	case len(entries) > 0:
		return 0, 0, &status.ActionError{
			Problem: fmt.Sprintf("%s is not empty and is not a PostgreSQL cluster (no PG_VERSION; it holds %s)", l.Data, sample(entries)),
			Hint:    "Uplink never deletes data: move those files away, or set UPLINK_DATA_DIR to another directory",
		}
	}
	return noCluster, 0, nil
}

func sample(entries []fs.DirEntry) string {
	var names []string
	for i, e := range entries {
		if i == 3 {
			names = append(names, fmt.Sprintf("and %d more", len(entries)-3))
			break
		}
		names = append(names, e.Name())
	}
	return strings.Join(names, ", ")
}

// state is pg/state.json: what the last start chose, so that the next one
// and `uplink db ...` find the same server.
type state struct {
	Major   int    `json:"major"`
	Version string `json:"version"`
	BinDir  string `json:"bindir"`
	// Stamp is the size and modification time of BinDir/postgres when
	// Version was read from it; see binStamp.
	Stamp    string    `json:"postgres_stamp,omitempty"`
	Port     int       `json:"port"`
	Database string    `json:"database"`
	User     string    `json:"user"`
	Created  time.Time `json:"created"`
	// AppVerifierMAC is verifierMAC of the application role's verifier
	// when the last start set or checked it.
	AppVerifierMAC string `json:"app_verifier_mac,omitempty"`
	// SuperPasswordMAC is passwordMAC of pg/superuser-password when the
	// last start logged in with it: a start that finds the file changed
	// logs in as the superuser at once, and fails if the cluster refuses.
	SuperPasswordMAC string `json:"superuser_password_mac,omitempty"`
}

// binStamp identifies the postgres program in dir by size and
// modification time, which a package upgrade changes. "" if it is not
// there.
func binStamp(dir string) string {
	fi, err := os.Stat(filepath.Join(dir, "postgres"))
	if err != nil {
		return ""
	}
	return fmt.Sprintf("%d:%d", fi.Size(), fi.ModTime().UnixNano())
}

func readState(path string) (state, error) {
	var s state
	raw, err := os.ReadFile(path)
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return s, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// writeState replaces the file atomically: a crash leaves the old or the
// new state, never half of one.
func writeState(path string, s state) error {
	raw, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(path, append(raw, '\n'), 0o644)
}

func writeFileAtomic(path string, data []byte, perm fs.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // our own temp file; gone after the rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// readPassword reads pg/password, which must not be readable by others.
func readPassword(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", &status.ActionError{
			Problem: fmt.Sprintf("%s is readable by others (mode %v)", path, fi.Mode().Perm()),
			Hint:    "run: chmod 600 " + path,
		}
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	pw := strings.TrimSpace(string(raw))
	if pw == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return pw, nil
}

// newPassword makes and stores a random password; 24 random bytes in hex
// need no quoting in any connection string form.
func newPassword(path string) (string, error) {
	b := make([]byte, 24)
	rand.Read(b)
	pw := hex.EncodeToString(b)
	if err := writeFileAtomic(path, []byte(pw+"\n"), 0o600); err != nil {
		return "", err
	}
	return pw, nil
}
