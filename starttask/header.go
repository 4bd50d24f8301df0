package starttask

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/uplinkhq/uplink/migrate/sqlfile"
)

// Header is what a task or hook file declares about itself in its
// leading comments:
//
//	-- uplink: policy=once env=dev,test timeout=30s
//	# uplink: policy=always on-failure=best-effort
//
// Empty fields were not given.
type Header struct {
	Policy    Policy
	Env       []string
	Fresh     bool
	OnFailure OnFailure
	Timeout   time.Duration
	Version   string
	// Line is the 1-based line of the first "uplink:" comment; 0 when
	// there is none.
	Line int
}

// headerKeys lists the keys, for the message about an unknown one.
const headerKeys = "policy=always|once|on-change, env=dev,test,prod, fresh, on-failure=required|best-effort, timeout=DURATION, version=STRING"

// ParseHeader reads the "uplink:" comments at the top of src, a file
// whose comments start with marker ("--" for SQL, "#" for scripts).
// Only the leading block of comments and blank lines is read (a "#!"
// line included), so the same words further down mean nothing. Several
// "uplink:" lines add up. Each mistake comes back as a *sqlfile.Error
// naming file, line and fix, all of them joined, with what the good words
// set.
func ParseHeader(file string, src []byte, marker string) (Header, error) {
	var h Header
	var errs []error // every bad word, not only the first
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(src))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || (n == 1 && strings.HasPrefix(line, "#!")) {
			continue
		}
		text, ok := strings.CutPrefix(line, marker)
		if !ok {
			break // the header block ends at the first line of code
		}
		rest, ok := strings.CutPrefix(strings.TrimSpace(text), "uplink:")
		if !ok {
			continue
		}
		if h.Line == 0 {
			h.Line = n
		}
		for _, word := range strings.Fields(rest) {
			if err := h.set(word, seen); err != nil {
				errs = append(errs, &sqlfile.Error{File: file, Line: n, Msg: err.Error(), Hint: err.hint})
			}
		}
	}
	return h, errors.Join(errs...)
}

type headerError struct{ msg, hint string }

func (e *headerError) Error() string { return e.msg }

// set applies one word: key=value, or a bare policy, failure policy or
// "fresh", which are unambiguous.
func (h *Header) set(word string, seen map[string]bool) *headerError {
	key, value, hasValue := strings.Cut(word, "=")
	if !hasValue {
		switch Policy(word) {
		case Always, Once, OnChange:
			key, value = "policy", word
		}
		switch OnFailure(word) {
		case Required, BestEffort:
			key, value = "on-failure", word
		}
		if word == "fresh" {
			value = "true"
		}
	}
	if seen[key] {
		return &headerError{fmt.Sprintf("%s given twice", key), "keep one"}
	}
	seen[key] = true
	switch key {
	case "policy":
		switch p := Policy(value); p {
		case Always, Once, OnChange:
			h.Policy = p
		default:
			return &headerError{fmt.Sprintf("unknown policy %q", value), "use policy=always, policy=once or policy=on-change"}
		}
	case "on-failure":
		switch f := OnFailure(value); f {
		case Required, BestEffort:
			h.OnFailure = f
		default:
			return &headerError{fmt.Sprintf("unknown on-failure %q", value), "use on-failure=required or on-failure=best-effort"}
		}
	case "env":
		for e := range strings.SplitSeq(value, ",") {
			if !isEnvWord(e) {
				return &headerError{fmt.Sprintf("unknown env %q", e), "use env= with dev, test or prod, several separated by commas (env=dev,test)"}
			}
			h.Env = append(h.Env, e)
		}
	case "fresh":
		switch value {
		case "true", "yes":
			h.Fresh = true
		case "false", "no":
		default:
			return &headerError{fmt.Sprintf("fresh=%q", value), "write fresh alone, or fresh=false"}
		}
	case "timeout":
		d, err := time.ParseDuration(value)
		if err != nil || d <= 0 {
			return &headerError{fmt.Sprintf("timeout %q is not a positive duration", value), "write it like 30s, 5m or 1h"}
		}
		h.Timeout = d
	case "version":
		if value == "" {
			return &headerError{"empty version", "give version=STRING, or drop it to compare the file's checksum"}
		}
		h.Version = value
	default:
		return &headerError{fmt.Sprintf("unknown word %q", word), "the header knows " + headerKeys}
	}
	return nil
}

// apply sets what the header gives on t.
func (h Header) apply(t *Task) {
	t.Policy, t.Env, t.Fresh, t.OnFailure = h.Policy, h.Env, h.Fresh, h.OnFailure
	t.Timeout, t.Version, t.headerLine = h.Timeout, h.Version, h.Line
}
