package proctest_test

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/uplinkhq/uplink/internal/proctest"
)

func TestExitCodeAndOutput(t *testing.T) {
	bin := proctest.Build(t, "testdata/child")
	if again := proctest.Build(t, "testdata/child"); again != bin {
		t.Errorf("second Build = %s, want the first's %s", again, bin)
	}
	p := proctest.Start(t, bin, []string{"CHILD_SAY=hello"}, "3")
	if code := p.ExitCode(t, 10*time.Second); code != 3 {
		t.Errorf("exit code %d, want 3", code)
	}
	if out := p.Out.String(); !strings.Contains(out, "[3] hello") || !strings.Contains(out, "to stderr") {
		t.Errorf("output %q lacks stdout or stderr", out)
	}
}

func TestSignal(t *testing.T) {
	p := proctest.Start(t, proctest.Build(t, "testdata/child"), nil)
	p.Signal(t, syscall.SIGTERM)
	if code := p.ExitCode(t, 10*time.Second); code != -1 {
		t.Errorf("exit code %d after SIGTERM, want -1", code)
	}
	select {
	case <-p.Done():
	default:
		t.Error("Done not closed after the exit")
	}
}
