package auth

import "syscall"

// lowerThreadPriority makes the calling OS thread nice 19 (the lowest), so that the kernel
// gives CPU to request-serving threads first while bcrypt runs.
func lowerThreadPriority() {
	_ = syscall.Setpriority(syscall.PRIO_PROCESS, syscall.Gettid(), 19)
}
