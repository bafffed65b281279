package bench

import "syscall"

// sysProcAttr makes redis-server die with us if we are killed before Close.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
