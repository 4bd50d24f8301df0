package jobs

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestQuietHandlerLogsOncePerBackoffStep(t *testing.T) {
	var buf bytes.Buffer
	now := time.Unix(0, 0)
	h := newQuietHandler(slog.NewTextHandler(&buf, nil), time.Second, 8*time.Second, func() time.Time { return now })
	log := slog.New(h).With("component", "river")

	// A fetch error every 100ms for 20s, as River's producer logs while
	// the database is gone: lines at 0, 1, 3, 7, 15s (steps 1, 2, 4, 8, 8).
	for range 200 {
		log.Error("producer: Error fetching jobs", "queue", "default")
		log.Info("producer: Producer job counts") // below Warn: never held back
		now = now.Add(100 * time.Millisecond)
	}
	out := buf.String()
	if n := strings.Count(out, "Error fetching jobs"); n != 5 {
		t.Errorf("%d error lines over 20s; want 5 (at 0, 1, 3, 7, 15s):\n%s", n, out)
	}
	if n := strings.Count(out, "Producer job counts"); n != 200 {
		t.Errorf("%d info lines; want all 200", n)
	}
	if !strings.Contains(out, "repeated=9\n") || !strings.Contains(out, "repeated=79") || !strings.Contains(out, "component=river") {
		t.Errorf("held-back copies not counted, or attributes lost:\n%s", out)
	}

	// Quiet for longer than the longest step: the next outage shows at once.
	buf.Reset()
	now = now.Add(9 * time.Second)
	log.Error("producer: Error fetching jobs")
	if !strings.Contains(buf.String(), "Error fetching jobs") || strings.Contains(buf.String(), "repeated") {
		t.Errorf("a new burst was held back or carried an old count: %q", buf.String())
	}
	// Another message has its own steps.
	buf.Reset()
	log.Warn("notifier: Error connecting listener")
	if !strings.Contains(buf.String(), "Error connecting listener") {
		t.Errorf("a different message was held back: %q", buf.String())
	}
	if !h.Enabled(context.Background(), slog.LevelInfo) || h.Enabled(context.Background(), slog.LevelDebug) {
		t.Error("Enabled does not follow the wrapped handler")
	}
}
