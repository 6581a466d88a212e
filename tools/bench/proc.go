package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat. It
// is 100 on every Linux architecture Go supports; reading it properly would
// need cgo (sysconf).
const clockTicks = 100

// procUsage is a process's resource use as /proc reports it.
type procUsage struct {
	User, System time.Duration
	RSS, HWM     int64 // bytes: current and peak resident set
}

func (u procUsage) cpu() time.Duration { return u.User + u.System }

// readProc reads the CPU time and memory of process pid from /proc.
func readProc(pid int) (procUsage, error) {
	var u procUsage
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return u, err
	}
	// The command name (field 2) may hold spaces and parentheses: the fields
	// that follow start after its last ')', at field 3 (state).
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return u, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return u, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return u, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	u.User = time.Duration(utime) * time.Second / clockTicks
	u.System = time.Duration(stime) * time.Second / clockTicks

	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return u, err
	}
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		if err != nil {
			return u, fmt.Errorf("/proc/%d/status: %s: %w", pid, name, err)
		}
		if name == "VmRSS" {
			u.RSS = kb << 10
		} else {
			u.HWM = kb << 10
		}
	}
	return u, nil
}

// rssSampler records the largest resident set of a process since its last
// reset. VmHWM only gives the peak over the whole life of the process; the
// sampler gives it per phase.
type rssSampler struct {
	pid int
	max atomic.Int64
}

// run samples every interval until ctx ends.
func (s *rssSampler) run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		s.sample()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *rssSampler) sample() {
	u, err := readProc(s.pid)
	if err != nil {
		return
	}
	for {
		cur := s.max.Load()
		if u.RSS <= cur || s.max.CompareAndSwap(cur, u.RSS) {
			return
		}
	}
}

// reset starts a new window and returns the maximum of the previous one.
func (s *rssSampler) reset() int64 {
	s.sample() // do not miss a short window entirely
	return s.max.Swap(0)
}
