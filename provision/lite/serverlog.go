package lite

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"sync"

	"github.com/uplinkhq/uplink/provision"
)

// The server's stderr comes to Uplink through a pipe, not through
// PostgreSQL's logging_collector: Uplink sees every line as it is written,
// so it can tell recovery and readiness without polling, forward warnings
// and errors into its own log, and keep a tail for /status; it also
// rotates by size itself, one process fewer. The cost: a server that
// outlives Uplink (an orphan, stopped at the next start) logs nowhere.

// logLinePrefix is set on the command line so lines parse the same
// whatever postgresql.conf says.
const logLinePrefix = "%m [%p] "

// severityRe finds the severity after "%m [%p] ".
var severityRe = regexp.MustCompile(`^.*? \[\d+\] ([A-Z]+[0-9]?):  (.*)$`)

// event is something the server said that changes what Uplink reports.
type event int

const (
	evNone       event = iota
	evRecovering       // crash recovery started
	evReady            // accepting connections
)

// eventOf recognises the lines that matter. lc_messages=C is set on the
// command line so they are in English.
func eventOf(msg string) event {
	switch {
	case strings.Contains(msg, "database system is ready to accept connections"):
		return evReady
	case strings.Contains(msg, "automatic recovery in progress"),
		strings.HasPrefix(msg, "database system was interrupted"),
		strings.Contains(msg, "all server processes terminated; reinitializing"):
		return evRecovering
	}
	return evNone
}

// expectedNoise are FATAL lines Uplink itself causes while probing a
// starting server or stopping one; they are not news for an operator.
var expectedNoise = []string{
	"the database system is starting up",
	"the database system is shutting down",
	"the database system is not yet accepting connections",
	"terminating connection due to administrator command",
}

const tailLines = 40

// sqlPassword finds PASSWORD '...' in SQL that the server echoes in a
// STATEMENT line when, say, an application's ALTER ROLE fails.
var sqlPassword = regexp.MustCompile(`(?i)(\bpassword\s+)'(?:[^']|'')*'`)

// redactLine hides passwords in a server log line, in SQL and in
// connection strings alike.
func redactLine(s string) string {
	return provision.Redact(sqlPassword.ReplaceAllString(s, "${1}'xxxxx'"))
}

// serverLog writes pg/log/postgres.log, rotating it by size, and keeps the
// last lines in memory.
type serverLog struct {
	path     string
	maxBytes int64
	keep     int
	logger   *slog.Logger

	mu   sync.Mutex
	f    *os.File
	size int64
	tail []string
}

func openServerLog(path string, maxBytes int64, keep int, logger *slog.Logger) (*serverLog, error) {
	l := &serverLog{path: path, maxBytes: maxBytes, keep: keep, logger: logger}
	if err := l.open(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *serverLog) open() error {
	f, err := os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	l.f, l.size = f, fi.Size()
	return nil
}

// rotate shifts postgres.log.N-1 to .N (the oldest is overwritten), the
// live file to .1, and starts a new one.
func (l *serverLog) rotate() error {
	l.f.Close()
	for i := l.keep - 1; i >= 1; i-- {
		os.Rename(fmt.Sprintf("%s.%d", l.path, i), fmt.Sprintf("%s.%d", l.path, i+1))
	}
	if err := os.Rename(l.path, l.path+".1"); err != nil {
		l.logger.Warn("rotate server log", "path", l.path, "err", err)
	}
	return l.open()
}

// consume copies the server's output into the file line by line until r
// ends (every process holding the pipe has exited), forwarding what an
// operator should see and reporting events to on.
func (l *serverLog) consume(r io.Reader, on func(event)) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		l.write(line)
		sev, msg := "", line
		if m := severityRe.FindStringSubmatch(line); m != nil {
			sev, msg = m[1], m[2]
		}
		l.forward(sev, msg)
		if ev := eventOf(msg); ev != evNone && on != nil {
			on(ev)
		}
	}
}

func (l *serverLog) write(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		if l.size+int64(len(line))+1 > l.maxBytes && l.size > 0 {
			if err := l.rotate(); err != nil {
				l.f = nil
				l.logger.Error("reopen server log", "path", l.path, "err", err)
			}
		}
		if l.f != nil {
			n, _ := l.f.WriteString(line + "\n")
			l.size += int64(n)
		}
	}
	l.tail = append(l.tail, line)
	if len(l.tail) > tailLines {
		l.tail = l.tail[len(l.tail)-tailLines:]
	}
}

func (l *serverLog) forward(sev, msg string) {
	var level slog.Level
	switch sev {
	case "WARNING":
		level = slog.LevelWarn
	case "ERROR", "FATAL", "PANIC":
		level = slog.LevelError
		for _, noise := range expectedNoise {
			if strings.Contains(msg, noise) {
				level = slog.LevelDebug
			}
		}
	default:
		level = slog.LevelDebug
	}
	ctx := context.Background()
	if l.logger.Enabled(ctx, level) {
		l.logger.Log(ctx, level, "postgres: "+redactLine(msg), "severity", sev)
	}
}

// Tail returns the last n lines seen, passwords redacted.
func (l *serverLog) Tail(n int) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	start := max(len(l.tail)-n, 0)
	out := make([]string, 0, len(l.tail)-start)
	for _, line := range l.tail[start:] {
		out = append(out, redactLine(line))
	}
	return out
}

func (l *serverLog) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
}
