// Package stats summarises repeated timings: median, spread, ratios, and
// the plain-text tables the benchmarks print (Markdown, so that
// docs/benchmarks.md takes them as they are).
package stats

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Sample is the timings of one measured thing.
type Sample []time.Duration

// Median is the middle value (the mean of the two middle ones for an even
// count): robust against the odd run slowed by a neighbour's test.
func (s Sample) Median() time.Duration {
	if len(s) == 0 {
		return 0
	}
	x := slices.Clone(s)
	slices.Sort(x)
	n := len(x)
	if n%2 == 1 {
		return x[n/2]
	}
	return (x[n/2-1] + x[n/2]) / 2
}

// Min and Max bound the spread.
func (s Sample) Min() time.Duration { return slices.Min(s) }
func (s Sample) Max() time.Duration { return slices.Max(s) }

// Spread is "min–max" of the runs.
func (s Sample) Spread() string {
	if len(s) == 0 {
		return "-"
	}
	return Dur(s.Min()) + "–" + Dur(s.Max())
}

// Ratio is s's median over base's.
func (s Sample) Ratio(base Sample) float64 {
	return float64(s.Median()) / float64(base.Median())
}

// Dur prints a duration with three significant figures.
func Dur(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d >= 100*time.Millisecond:
		return fmt.Sprintf("%.0f ms", float64(d)/1e6)
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.1f ms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%.2f ms", float64(d)/1e6)
	}
}

// Table is a Markdown table built row by row.
type Table struct {
	Head []string
	Rows [][]string
}

// Add appends a row.
func (t *Table) Add(cells ...string) { t.Rows = append(t.Rows, cells) }

func (t *Table) String() string {
	var b strings.Builder
	line := func(cells []string) { b.WriteString("| " + strings.Join(cells, " | ") + " |\n") }
	line(t.Head)
	sep := make([]string, len(t.Head))
	for i := range sep {
		sep[i] = "---"
	}
	line(sep)
	for _, r := range t.Rows {
		line(r)
	}
	return b.String()
}

// PairedRatio is the median of s[i]/base[i]: runs made side by side in
// the same round share that round's load, so their ratio is steadier
// than the ratio of medians when the load drifts.
func PairedRatio(s, base Sample) float64 {
	n := min(len(s), len(base))
	if n == 0 {
		return 0
	}
	r := make([]float64, n)
	for i := range n {
		r[i] = float64(s[i]) / float64(base[i])
	}
	slices.Sort(r)
	if n%2 == 1 {
		return r[n/2]
	}
	return (r[n/2-1] + r[n/2]) / 2
}
