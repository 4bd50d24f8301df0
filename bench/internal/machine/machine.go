// Package machine describes the machine a benchmark ran on and samples
// its load while it runs: numbers measured on a shared, busy machine mean
// little without both.
package machine

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Describe returns one line per fact: cores, CPU model, memory, Go.
func Describe() []string {
	return []string{
		fmt.Sprintf("cores (nproc): %d", runtime.NumCPU()),
		"CPU: " + cpuModel(),
		"memory: " + memTotal(),
		"kernel: " + firstLine("/proc/sys/kernel/osrelease"),
		"Go (benchmark build): " + runtime.Version(),
	}
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if k, v, ok := strings.Cut(s.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func memTotal() string {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if f := strings.Fields(s.Text()); len(f) >= 2 && f[0] == "MemTotal:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return fmt.Sprintf("%.1f GiB", kb/(1<<20))
		}
	}
	return "unknown"
}

func firstLine(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "unknown"
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimSpace(line)
}

// Load1 is the 1-minute load average now.
func Load1() float64 {
	f := strings.Fields(firstLine("/proc/loadavg"))
	if len(f) == 0 {
		return -1
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// LoadSampler records the 1-minute load average every few seconds.
type LoadSampler struct {
	mu      sync.Mutex
	samples []float64
	stop    chan struct{}
	done    chan struct{}
}

// SampleLoad starts sampling; call Stop for the summary.
func SampleLoad(every time.Duration) *LoadSampler {
	ls := &LoadSampler{stop: make(chan struct{}), done: make(chan struct{})}
	ls.samples = append(ls.samples, Load1())
	go func() {
		defer close(ls.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ls.stop:
				return
			case <-t.C:
				ls.mu.Lock()
				ls.samples = append(ls.samples, Load1())
				ls.mu.Unlock()
			}
		}
	}()
	return ls
}

// Stop ends sampling and returns "min / median / max" of the samples.
func (ls *LoadSampler) Stop() string {
	close(ls.stop)
	<-ls.done
	ls.mu.Lock()
	defer ls.mu.Unlock()
	s := slices.Clone(ls.samples)
	slices.Sort(s)
	return fmt.Sprintf("1-min load average min %.2f / median %.2f / max %.2f over %d samples", s[0], s[len(s)/2], s[len(s)-1], len(s))
}
