package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// perfRecorder records a process with perf(1) during each step, one file
// per step. perf needs no endpoint in the process (the floor has none): Go
// binaries keep their symbols, so `perf report` names Go functions.
type perfRecorder struct {
	dir string
}

// start begins recording process pid for the step named name; the returned
// function ends the recording and waits until the file is written.
func (p *perfRecorder) start(name string, pid int) (stop func() error, err error) {
	file := filepath.Join(p.dir, fileName(name)+".perf.data")
	cmd := exec.Command("perf", "record", "--quiet", "-F", "499", "-g", "-p", strconv.Itoa(pid), "-o", file)
	logs := &tailBuffer{max: 4 << 10}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("perf: %w", err)
	}
	return func() error {
		// SIGINT is how perf record is told to finish the file.
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				return fmt.Errorf("perf record %s: %w\n%s", name, err, logs)
			}
			return nil
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			return fmt.Errorf("perf record %s did not finish", name)
		}
	}, nil
}

// startPprof records, from the server's PPROF_ADDR (base), a CPU profile of
// the step named name, which lasts d, and its allocation profile before and
// after, into dir: NAME.cpu.pb.gz, NAME.allocs-before.pb.gz and
// NAME.allocs.pb.gz (`go tool pprof -sample_index=alloc_objects -base
// NAME.allocs-before.pb.gz NAME.allocs.pb.gz` shows what the step allocated).
// The returned function waits for the CPU profile and takes the last one.
func startPprof(ctx context.Context, base, dir, name string, d time.Duration) (stop func() error) {
	file := filepath.Join(dir, fileName(name))
	before := fetchTo(ctx, base+"/debug/pprof/allocs", file+".allocs-before.pb.gz")
	seconds := max(int(math.Ceil(d.Seconds())), 1)
	cpu := make(chan error, 1)
	go func() {
		cpu <- fetchTo(ctx, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", base, seconds), file+".cpu.pb.gz")
	}()
	return func() error {
		return errors.Join(before, <-cpu, fetchTo(ctx, base+"/debug/pprof/allocs", file+".allocs.pb.gz"))
	}
}

// fetchTo writes what GET url answers to file.
func fetchTo(ctx context.Context, url, file string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := pprofClient.Do(req)
	if err != nil {
		return fmt.Errorf("pprof: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("pprof: %s: %s", url, resp.Status)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("pprof: %w", err)
	}
	return f.Close()
}

// pprofClient never goes through a proxy: pprof is on loopback.
var pprofClient = &http.Client{Transport: &http.Transport{Proxy: nil}}

// fileName turns a phase name into a file name: "me (alone)" → "me-alone".
func fileName(name string) string {
	words := strings.FieldsFunc(name, func(r rune) bool {
		return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9')
	})
	return strings.Join(words, "-")
}
