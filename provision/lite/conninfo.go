package lite

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"strconv"

	"github.com/uplinkhq/uplink/internal/pgbin"
	"github.com/uplinkhq/uplink/provision"
	"github.com/uplinkhq/uplink/status"
)

// ConnInfo is how tools reach the server of a data directory, whether or
// not a server runs now. It is what `uplink db url|psql|dump` need.
type ConnInfo struct {
	Host      string // 127.0.0.1
	Port      int
	User      string // the application role
	Database  string
	SocketDir string // pg/run
	BinDir    string // where psql and pg_dump are
	Major     int
	// PID is the running postmaster's, 0 when no server runs on the data
	// directory.
	PID int

	password string
}

// URL is a TCP connection URL for tools, with the password.
func (c ConnInfo) URL() provision.DSN {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(c.User, c.password),
		Host:     net.JoinHostPort(c.Host, strconv.Itoa(c.Port)),
		Path:     "/" + c.Database,
		RawQuery: "sslmode=disable",
	}
	return provision.DSN(u.String())
}

// SocketDSN is the key=value DSN over the unix socket, the one Provision
// returns.
func (c ConnInfo) SocketDSN() provision.DSN {
	return socketDSN(c.SocketDir, c.Port, c.User, c.password, c.Database)
}

// Env is the libpq environment for psql and pg_dump over the unix socket.
// It holds the password (PGPASSWORD): pass it to a child process only.
func (c ConnInfo) Env() []string {
	return []string{
		"PGHOST=" + c.SocketDir,
		"PGPORT=" + strconv.Itoa(c.Port),
		"PGUSER=" + c.User,
		"PGDATABASE=" + c.Database,
		"PGPASSWORD=" + c.password,
		"PGSSLMODE=disable",
	}
}

// Tool returns the path of a client program (psql, pg_dump) of the
// cluster's own version.
func (c ConnInfo) Tool(name string) string { return pgbin.Binaries{Dir: c.BinDir}.Path(name) }

// ReadConnInfo reads the connection details of the cluster under dataDir
// from pg/state.json and pg/password, without starting anything. It needs
// the permissions of the Uplink that made the cluster (root, usually).
func ReadConnInfo(dataDir string) (ConnInfo, error) {
	lay := LayoutOf(dataDir)
	st, err := readState(lay.State)
	if errors.Is(err, fs.ErrNotExist) {
		return ConnInfo{}, &status.ActionError{
			Problem: "no Uplink PostgreSQL in " + dataDir,
			Err:     err,
			Hint:    "start `uplink serve` once in lite mode with this UPLINK_DATA_DIR, or set UPLINK_DATA_DIR to the right directory",
		}
	}
	if err != nil {
		return ConnInfo{}, err
	}
	pw, err := readPassword(lay.Password)
	if err != nil {
		return ConnInfo{}, fmt.Errorf("read password: %w", err)
	}
	ci := ConnInfo{
		Host: "127.0.0.1", Port: st.Port, User: st.User, Database: st.Database,
		SocketDir: lay.Run, BinDir: st.BinDir, Major: st.Major, password: pw,
	}
	if pid, err := pidFilePID(lay.Data); err == nil && pid > 0 && identify(pid, lay.Data) == procOurs {
		ci.PID = pid
	}
	return ci, nil
}
