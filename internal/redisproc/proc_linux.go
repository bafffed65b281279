package redisproc

import (
	"os"
	"syscall"
)

// sysProcAttr puts redis-server in its own process group and asks the
// kernel to SIGKILL it when its parent dies. (The parent-death signal is
// tied to the spawning OS thread; the Go runtime only ends threads locked
// by a goroutine that exits while locked.)
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// killProcess kills redis-server's whole process group.
func killProcess(p *os.Process) {
	_ = syscall.Kill(-p.Pid, syscall.SIGKILL)
	_ = p.Kill()
}
