package localcache

import (
	"testing"

	"go.uber.org/goleak"
)

// Every limiter's sweeper must stop on Close.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
