package bench

import (
	"fmt"
	"syscall"
)

// serverProcAttr puts the server in its own process group, so that Ctrl-C in
// the terminal reaches only the bench, which stops the load before it stops
// the server (otherwise the server would shut down under load and turn the
// last requests into errors). Pdeathsig stops the server should the bench be
// killed outright.
func serverProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}

// raiseFileLimit makes the soft limit on open files at least n, for the bench
// and the servers it starts from now on: the sockets phase holds n sockets at
// each end. Go raises its own soft limit to the hard one when it starts, but
// gives child processes the soft limit it found unless the program sets the
// limit itself, as here. Only the hard limit can stop it.
func raiseFileLimit(n int) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("read the open-files limit: %w", err)
	}
	if lim.Max < uint64(n) {
		return fmt.Errorf("the open-files limit is %d (ulimit -Hn) and the sockets phase needs %d: raise it, or use fewer -sockets", lim.Max, n)
	}
	lim.Cur = max(lim.Cur, uint64(n))
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("raise the open-files limit to %d: %w", n, err)
	}
	return nil
}
