package bench

import "syscall"

// serverProcAttr puts the server in its own process group, so that Ctrl-C in
// the terminal reaches only the bench, which stops the load before it stops
// the server (otherwise the server would shut down under load and turn the
// last requests into errors). Pdeathsig stops the server should the bench be
// killed outright.
func serverProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
