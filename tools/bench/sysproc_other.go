//go:build !linux

package bench

import "syscall"

// serverProcAttr: see sysproc_linux.go. Elsewhere the server shares the
// bench's process group and may see Ctrl-C first; the bench is made for Linux
// (it reads /proc) and only builds here.
func serverProcAttr() *syscall.SysProcAttr { return nil }

// raiseFileLimit: see sysproc_linux.go.
func raiseFileLimit(int) error { return nil }
