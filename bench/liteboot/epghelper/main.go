// Command epghelper starts PostgreSQL through
// github.com/fergusstrange/embedded-postgres, prints "ready" once Start
// has returned (it ends with its own SELECT 1), and stops the server when
// its standard input closes. The liteboot driver runs it as the postgres
// user: embedded-postgres runs initdb and pg_ctl as whoever calls it, and
// both refuse root.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	embeddedpostgres "github.com/fergusstrange/embedded-postgres"
)

func main() {
	binaries := flag.String("binaries", "/usr/lib/postgresql/15", "PostgreSQL installation (the directory holding bin/)")
	runtime := flag.String("runtime", "", "embedded-postgres's RuntimePath (emptied at every start)")
	data := flag.String("data", "", "data directory, outside -runtime so it survives a restart")
	socket := flag.String("socket", "", "unix socket directory")
	port := flag.Uint("port", 0, "TCP port")
	major := flag.String("major", "15", "PostgreSQL major version of -binaries")
	flag.Parse()

	// An explicit Version matching the cluster's PG_VERSION is what makes
	// a warm start reuse the data; without it the library re-runs initdb.
	// Database "uplink" makes it create an application database on a cold
	// start, as Uplink does.
	cfg := embeddedpostgres.DefaultConfig().
		Version(embeddedpostgres.PostgresVersion(*major + ".0.0")).
		BinariesPath(*binaries).
		RuntimePath(*runtime).
		DataPath(*data).
		Port(uint32(*port)).
		Username("postgres").
		Password("bench-password").
		Database("uplink").
		Encoding("UTF8").
		Locale("C").
		StartParameters(map[string]string{"unix_socket_directories": *socket}).
		Logger(io.Discard)
	pg := embeddedpostgres.NewDatabase(cfg)
	if err := pg.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "epghelper: start:", err)
		os.Exit(1)
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	if err := pg.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "epghelper: stop:", err)
		os.Exit(1)
	}
}
