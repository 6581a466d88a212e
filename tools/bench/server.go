package bench

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	healthTimeout = 60 * time.Second // the embedded database's first start creates its files
	stopTimeout   = 15 * time.Second // the server's own graceful shutdown allows 10 s
)

// binaries are what the bench runs: the server, and the bare net/http
// handler that answers `me` (cmd/floor).
type binaries struct {
	server, floor string
}

// build compiles the server of the repository in repo and the floor of this
// module (repo/tools/bench) into dir.
func build(ctx context.Context, goCmd, repo, dir string) (binaries, error) {
	b := binaries{server: filepath.Join(dir, "server"), floor: filepath.Join(dir, "floor")}
	if err := goBuild(ctx, goCmd, repo, b.server, "."); err != nil {
		return b, fmt.Errorf("build the server: %w", err)
	}
	if err := goBuild(ctx, goCmd, filepath.Join(repo, "tools", "bench"), b.floor, "./cmd/floor"); err != nil {
		return b, fmt.Errorf("build the floor: %w", err)
	}
	return b, nil
}

func goBuild(ctx context.Context, goCmd, dir, out, pkg string) error {
	cmd := exec.CommandContext(ctx, goCmd, "build", "-o", out, pkg)
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%w\n%s", err, b)
	}
	return nil
}

// serverEnv is set plus the few inherited variables a process needs (PATH,
// HOME, TMPDIR, TZ) and the Go runtime's own (GOGC, GOMAXPROCS, GODEBUG, ...).
// Everything else is dropped: the server reads its whole configuration from
// the environment and keeps gaining settings, and a developer's shell (a
// LOG_LEVEL, a rate limit) must not change what is measured.
func serverEnv(base []string, set map[string]string) []string {
	env := make([]string, 0, len(set)+8)
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if slices.Contains([]string{"PATH", "HOME", "TMPDIR", "TZ"}, k) || strings.HasPrefix(k, "GO") {
			env = append(env, kv)
		}
	}
	for k, v := range set {
		env = append(env, k+"="+v)
	}
	return env
}

// freePort returns a loopback port that was free a moment ago. The server
// announces the port it got with PORT=0 only at info level, which would also
// turn on one log line per request; a port picked here keeps LOG_LEVEL=warn
// (the same goes for PPROF_ADDR).
// The kernel hands out ephemeral ports in rotation, so another process
// taking this one before the server binds it is very unlikely.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// serverProc is the server under test (or the floor), running as a child
// process.
type serverProc struct {
	cmd      *exec.Cmd
	baseURL  string
	pprofURL string // empty: no PPROF_ADDR
	logs     *tailBuffer
	exited   chan struct{} // closed once the process has exited
	waitErr  error         // valid after exited is closed
	stopped  sync.Once
}

// startServer runs bin with the settings plus HOST and PORT on loopback (and
// PPROF_ADDR, with pprof), and waits until it answers /healthz.
func startServer(ctx context.Context, bin string, settings map[string]string, pprof bool) (*serverProc, error) {
	set := maps.Clone(settings)
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	set["HOST"], set["PORT"] = "127.0.0.1", strconv.Itoa(port)
	pprofURL := ""
	if pprof {
		pp, err := freePort()
		if err != nil {
			return nil, err
		}
		set["PPROF_ADDR"] = "127.0.0.1:" + strconv.Itoa(pp)
		pprofURL = "http://" + set["PPROF_ADDR"]
	}
	cmd := exec.Command(bin)
	cmd.Env = serverEnv(os.Environ(), set)
	logs := &tailBuffer{max: 32 << 10}
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.SysProcAttr = serverProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the server: %w", err)
	}
	s := &serverProc{cmd: cmd, baseURL: "http://127.0.0.1:" + strconv.Itoa(port), pprofURL: pprofURL,
		logs: logs, exited: make(chan struct{})}
	go func() {
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()
	if err := s.waitHealthy(ctx); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

func (s *serverProc) pid() int { return s.cmd.Process.Pid }

// waitHealthy polls /healthz until it answers, the server exits, or
// healthTimeout passes.
func (s *serverProc) waitHealthy(ctx context.Context) error {
	c := newClient(s.baseURL, 1)
	defer c.close()
	deadline := time.After(healthTimeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !c.healthy(ctx, s.baseURL) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.exited:
			return fmt.Errorf("the server exited before it was ready (%v):\n%s", s.waitErr, s.logs)
		case <-deadline:
			return fmt.Errorf("the server did not answer /healthz within %s:\n%s", healthTimeout, s.logs)
		case <-tick.C:
		}
	}
	return nil
}

// stop asks the server to shut down gracefully (SIGTERM) and waits for it,
// killing it after stopTimeout. It is safe to call more than once.
func (s *serverProc) stop() error {
	s.stopped.Do(func() {
		select {
		case <-s.exited:
			return
		default:
		}
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(stopTimeout):
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
	})
	<-s.exited
	var exit *exec.ExitError
	if errors.As(s.waitErr, &exit) {
		return fmt.Errorf("the server exited with %v:\n%s", exit, s.logs)
	}
	return s.waitErr
}

// tailBuffer keeps the last max bytes written to it: the server's log, shown
// when something goes wrong.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
