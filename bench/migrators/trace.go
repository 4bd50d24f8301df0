package main

import (
	"bufio"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
)

// runTrace applies 3 migrations with each tool on a database that logs
// every statement, and prints what reached the server: the count of
// statements a tool sends per migration, and the order, show where a
// tool's time goes beyond the SQL it was given.
func runTrace(base string, srv *server) {
	const n = 3
	dirs := writeFormats(filepath.Join(base, "trace"), n)
	fmt.Printf("#### Statements each tool sends for %d migrations on an empty database (log_statement = all)\n\n", n)
	for _, t := range tools {
		db := srv.createDB()
		srv.admin("ALTER DATABASE " + db + " SET log_statement = 'all'")
		if _, err := migrun(t, dirs[t.format], srv.url(db)); err != nil {
			log.Fatalf("trace %s: %v", t.name, err)
		}
		stmts := srv.statements(db)
		fmt.Printf("%s: %d statements\n\n```\n", t.name, len(stmts))
		for _, s := range stmts {
			fmt.Println(s)
		}
		fmt.Print("```\n\n")
		srv.dropDB(db)
	}
}

// statements returns the statements the server logged for db, one line
// each, shortened.
func (s *server) statements(db string) []string {
	f, err := os.Open(s.logPath)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	tag := " " + db + " LOG:  "
	for sc.Scan() {
		line := sc.Text()
		_, rest, ok := strings.Cut(line, tag)
		if !ok || strings.HasPrefix(rest, "duration") {
			continue
		}
		rest = strings.Join(strings.Fields(rest), " ")
		if len(rest) > 160 {
			rest = rest[:157] + "..."
		}
		out = append(out, rest)
	}
	return out
}
