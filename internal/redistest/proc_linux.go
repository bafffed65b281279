package redistest

import (
	"os"
	"syscall"
)

// sysProcAttr puts redis-server in its own process group, so that killing
// the group also kills anything it forked, and asks the kernel to SIGKILL it
// when the test binary dies, so that no server outlives a crashed or killed
// test run. (The parent-death signal is tied to the spawning OS thread; the Go
// runtime only ends threads locked by a goroutine that exits while locked.)
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// killProcess kills redis-server's whole process group.
func killProcess(p *os.Process) {
	_ = syscall.Kill(-p.Pid, syscall.SIGKILL)
	_ = p.Kill()
}
