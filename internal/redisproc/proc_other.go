//go:build !linux

package redisproc

import (
	"os"
	"syscall"
)

// sysProcAttr has no portable process-group or parent-death setting outside
// Linux; Stop alone ends the server there.
func sysProcAttr() *syscall.SysProcAttr { return nil }

// killProcess kills redis-server.
func killProcess(p *os.Process) { _ = p.Kill() }
