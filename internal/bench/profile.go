package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// perfRecorder records the server with perf(1) during each step, one file
// per step. The server has no profiling endpoint of its own (issue 7: never
// on the public port by default), and perf needs none: Go binaries keep
// their symbols, so `perf report` names Go functions.
type perfRecorder struct {
	dir string
	pid int
}

// start begins recording the step named name; the returned function ends the
// recording and waits until the file is written.
func (p *perfRecorder) start(name string) (stop func() error, err error) {
	file := filepath.Join(p.dir, fileName(name)+".perf.data")
	cmd := exec.Command("perf", "record", "--quiet", "-F", "499", "-g", "-p", strconv.Itoa(p.pid), "-o", file)
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

// fileName turns a phase name into a file name: "me (alone)" → "me-alone".
func fileName(name string) string {
	words := strings.FieldsFunc(name, func(r rune) bool {
		return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9')
	})
	return strings.Join(words, "-")
}
