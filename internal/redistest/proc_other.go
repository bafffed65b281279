//go:build !linux

package redistest

import (
	"os"
	"syscall"
)

// sysProcAttr has no portable process-group or parent-death setting outside
// Linux; cleanup alone stops the server there.
func sysProcAttr() *syscall.SysProcAttr { return nil }

// killProcess kills redis-server.
func killProcess(p *os.Process) { _ = p.Kill() }
