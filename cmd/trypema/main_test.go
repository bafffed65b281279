package main

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/gomodule/redigo/redis"
	"github.com/trypema-go/trypema/client"
	"github.com/trypema-go/trypema/internal/redistest"
	"github.com/trypema-go/trypema/lua"
)

// trypema runs the command in-process and returns its exit code and output.
func runT(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func expect(t *testing.T, args []string, wantCode int, wantOut, wantErr string) (string, string) {
	t.Helper()
	code, out, errOut := runT(t, args...)
	if code != wantCode {
		t.Errorf("trypema %q: exit %d, want %d\nstdout: %s\nstderr: %s", args, code, wantCode, out, errOut)
	}
	if !strings.Contains(out, wantOut) {
		t.Errorf("trypema %q: stdout does not contain %q:\n%s", args, wantOut, out)
	}
	if !strings.Contains(errOut, wantErr) {
		t.Errorf("trypema %q: stderr does not contain %q:\n%s", args, wantErr, errOut)
	}
	return out, errOut
}

func TestUsageAndExitCodes(t *testing.T) {
	const unreachable = "redis://127.0.0.1:1/0"
	for _, tc := range []struct {
		args      []string
		code      int
		out, errs string
	}{
		{nil, exitUsage, "", "usage: trypema <command>"},
		{[]string{"help"}, exitOK, "exit codes:", ""},
		{[]string{"--help"}, exitOK, "3  inc: the call was not admitted", ""},
		{[]string{"help", "inc"}, exitOK, "-rate", ""},
		{[]string{"help", "nope"}, exitUsage, "", `unknown command "nope"`},
		{[]string{"nope"}, exitUsage, "", `unknown command "nope"`},
		{[]string{"inc", "-h"}, exitOK, "usage: trypema inc", ""},
		{[]string{"inc", "-rate", "10/s"}, exitUsage, "", "want exactly one KEY"},
		{[]string{"inc", "k"}, exitUsage, "", "-rate is required"},
		{[]string{"inc", "-rate", "ten", "k"}, exitUsage, "", `rate "ten"`},
		{[]string{"inc", "-rate", "10/fortnight", "k"}, exitUsage, "", "unknown unit"},
		{[]string{"inc", "-rate", "-1/s", "k"}, exitUsage, "", "negative"},
		{[]string{"inc", "-rate", "10/s", "a:b"}, exitUsage, "", "contains ':'"},
		{[]string{"inc", "-rate", "10/s", "-n", "0", "k"}, exitUsage, "", "count 0"},
		{[]string{"inc", "-rate", "10/s", "-strategy", "fast", "k"}, exitUsage, "", "-strategy"},
		{[]string{"inc", "-rate", "10/s", "-window", "0s", "k"}, exitUsage, "", "window"},
		{[]string{"inc", "-bogus", "k"}, exitUsage, "", "flag provided but not defined: -bogus"},
		{[]string{"inc", "-rate", "10/s", "-redis", unreachable, "k"}, exitFailure, "", "cannot reach Redis at " + unreachable},
		{[]string{"get", "-redis", unreachable, "k"}, exitFailure, "", "cannot reach Redis"},
		{[]string{"get", "-redis", "localhost:6379", "k"}, exitUsage, "", "not a Redis URL"},
		{[]string{"inspect", "-redis", unreachable, "k"}, exitFailure, "", "cannot reach Redis"},
		{[]string{"inspect", "-strategy", "x", "k"}, exitUsage, "", "-strategy"},
		{[]string{"inspect", "k1", "k2"}, exitUsage, "", "want exactly one KEY"},
		{[]string{"scripts", "frobnicate"}, exitUsage, "", "unknown subcommand"},
		{[]string{"scripts", "show"}, exitUsage, "", "show takes one script name"},
		{[]string{"scripts", "show", "nope"}, exitUsage, "", "absolute_inc"},
		{[]string{"scripts", "load", "-redis", unreachable}, exitFailure, "", "cannot reach Redis"},
		{[]string{"demo", "-duration", "0s"}, exitUsage, "", "-duration"},
		{[]string{"demo", "-local", "-redis", "redis://x"}, exitUsage, "", "exclude"},
		{[]string{"demo", "extra"}, exitUsage, "", "unexpected argument"},
	} {
		expect(t, tc.args, tc.code, tc.out, tc.errs)
	}
}

// Flags may follow the key, and "--" passes a key that looks like a flag.
func TestFlagsAfterArguments(t *testing.T) {
	srv := redistest.Start(t)
	expect(t, []string{"inc", "k1", "-rate", "1/s", "-redis", srv.URL()}, exitOK, "outcome=allowed", "")
	expect(t, []string{"inc", "-rate", "1/s", "-redis", srv.URL(), "--", "-k2"}, exitOK, "outcome=allowed", "")
	expect(t, []string{"get", "-redis", srv.URL(), "--", "-k2"}, exitOK, "exists=true total=1", "")
}

func TestScriptsList(t *testing.T) {
	out, _ := expect(t, []string{"scripts"}, exitOK, "SHA1", "")
	for _, s := range client.AllScripts() {
		if !regexp.MustCompile(`(?m)^` + s.Name() + ` +` + s.SHA1() + ` `).MatchString(out) {
			t.Errorf("list has no line for %s %s:\n%s", s.Name(), s.SHA1(), out)
		}
	}
	if list, _ := expect(t, []string{"scripts", "list"}, exitOK, "", ""); list != out {
		t.Error("scripts and scripts list differ")
	}
}

// show prints the exact text whose SHA1 EVALSHA uses.
func TestScriptsShow(t *testing.T) {
	for _, s := range client.AllScripts() {
		out, _ := expect(t, []string{"scripts", "show", s.Name()}, exitOK, "", "")
		sum := sha1.Sum([]byte(out))
		if hex.EncodeToString(sum[:]) != s.SHA1() {
			t.Errorf("show %s: SHA1 of the output is not %s", s.Name(), s.SHA1())
		}
	}
	if out, _ := expect(t, []string{"scripts", "show", "functions"}, exitOK, "#!lua name=trypema_v1", ""); out != lua.Functions() {
		t.Error("show functions differs from lua.Functions()")
	}
}

func TestScriptsLoad(t *testing.T) {
	srv := redistest.Start(t)
	srv.Do(t, "SCRIPT", "FLUSH")
	out, _ := expect(t, []string{"scripts", "load", "-redis", srv.URL()}, exitOK, "loaded absolute_inc", "")
	args := []any{"EXISTS"}
	for _, s := range client.AllScripts() {
		args = append(args, s.SHA1())
		if !strings.Contains(out, s.SHA1()) {
			t.Errorf("load output does not name %s's digest %s", s.Name(), s.SHA1())
		}
	}
	exists, err := redis.Ints(srv.Do(t, "SCRIPT", args...), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range exists {
		if e != 1 {
			t.Errorf("SCRIPT EXISTS %s = %d after load", client.AllScripts()[i].Name(), e)
		}
	}

	expect(t, []string{"scripts", "load", "-functions", "-redis", srv.URL()}, exitOK, fmt.Sprintf("loaded library trypema_v1: %d functions", len(client.AllScripts())), "")
	libs, err := redis.Values(srv.Do(t, "FUNCTION", "LIST", "LIBRARYNAME", "trypema_v1"), nil)
	if err != nil || len(libs) != 1 {
		t.Fatalf("FUNCTION LIST after load: %v, %v", libs, err)
	}
	// The loaded functions answer (read-only, so FCALL_RO), and loading
	// again replaces the library instead of failing.
	k := client.Keys("trypema", "abs", "nobody")
	if v, err := redis.Values(srv.Do(t, "FCALL_RO", "trypema_v1_absolute_get", 2, k[0], k[1], 10000), nil); err != nil || len(v) != 7 {
		t.Errorf("FCALL_RO trypema_v1_absolute_get: %v, %v", v, err)
	}
	expect(t, []string{"scripts", "load", "-functions", "-redis", srv.URL()}, exitOK, "loaded library", "")
}

func TestIncAndGet(t *testing.T) {
	srv := redistest.Start(t)
	r := srv.URL()
	// 0.2/s over the default 10 s window: a capacity of 2.
	inc := []string{"inc", "-redis", r, "-rate", "12/min", "user_1"}
	expect(t, inc, exitOK, "outcome=allowed admitted=true limit=2 remaining=1", "")
	expect(t, inc, exitOK, "outcome=allowed admitted=true limit=2 remaining=0", "")
	out, _ := expect(t, inc, exitRefused, "outcome=rejected admitted=false limit=2 remaining=0 retry_after_ms=", "")
	if !strings.Contains(out, "remaining_after_waiting=2") {
		t.Errorf("rejected: %s", out)
	}
	out, _ = expect(t, append([]string{"inc", "-json"}, inc[1:]...), exitRefused, `"outcome":"rejected"`, "")
	var d map[string]any
	if err := json.Unmarshal([]byte(out), &d); err != nil || d["admitted"] != false || d["retry_after_ms"] == nil {
		t.Errorf("inc -json: %s (%v)", out, err)
	}
	expect(t, []string{"get", "-redis", r, "user_1"}, exitOK,
		"exists=true total=2 declined=0 accepted=2 limit=2 hard_limit=2 rate=0.2 factor=0\n", "")
	expect(t, []string{"get", "-redis", r, "-strategy", "sup", "user_1"}, exitOK, "exists=false total=0", "")
	expect(t, []string{"get", "-redis", r, "-json", "user_1"}, exitOK, `"total":2`, "")
	// A count above the capacity can never succeed: a usage error.
	expect(t, []string{"inc", "-redis", r, "-rate", "12/min", "-n", "3", "fresh"}, exitUsage, "", "count exceeds capacity")

	// Suppressed: past the soft cap the decision is a draw; with a hard
	// cap equal to the soft cap (factor 1) every later call is denied.
	sup := []string{"inc", "-redis", r, "-strategy", "suppressed", "-rate", "0.2/s", "user_2"}
	expect(t, sup, exitOK, "outcome=allowed", "")
	expect(t, sup, exitOK, "outcome=allowed", "")
	expect(t, sup, exitRefused, "outcome=suppressed admitted=false limit=2 remaining=0 factor=1", "")
	expect(t, []string{"get", "-redis", r, "-strategy", "sup", "user_2"}, exitOK, "exists=true total=3 declined=1 accepted=2", "")
}

func TestInspect(t *testing.T) {
	srv := redistest.Start(t)
	r := srv.URL()
	for range 3 {
		runT(t, "inc", "-redis", r, "-rate", "1/s", "-window", "5s", "-bucket", "1ms", "alice")
	}
	out, _ := expect(t, []string{"inspect", "-redis", r, "alice"}, exitOK, `key "alice": absolute strategy, prefix "trypema"`, "")
	for _, want := range []string{
		"trypema:v1:abs:{alice}:buckets  (list, TTL ",
		"trypema:v1:abs:{alice}:meta  (hash, TTL ",
		"window       5s  (inferred from the TTL",
		"rate         1/s",
		"limit        5 units per 5s window",
		"total        3 live units, 2 remaining",
		"meta         rate=1 soft=5 hard=5 total=3 declined=0",
		"leaves window in",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, out)
		}
	}
	if n := len(regexp.MustCompile(`(?m)^ +\d+ +\d+ms ago +\d+ms ago +1 +0 +[\d.]+s$`).FindAllString(out, -1)); n < 1 {
		t.Errorf("no bucket rows in:\n%s", out)
	}
	if strings.Contains(out, "suppressed strategy") {
		t.Error("auto showed a suppressed state that does not exist")
	}

	// The suppressed strategy adds declines and the factor.
	for range 4 {
		runT(t, "inc", "-redis", r, "-strategy", "sup", "-rate", "0.5/s", "-window", "6s", "-hard-limit", "1.5", "bob")
	}
	out, _ = expect(t, []string{"inspect", "-redis", r, "-strategy", "suppressed", "bob"}, exitOK, "suppressed strategy", "")
	for _, want := range []string{"soft cap 3, hard cap 4 units per 6s window", "4 live units observed", "factor ", "declined"} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, out)
		}
	}

	expect(t, []string{"inspect", "-redis", r, "-window", "5s", "alice"}, exitOK, "window       5s  (from -window)", "")
	expect(t, []string{"inspect", "-redis", r, "carol"}, exitOK, `no state for key "carol"`, "")
	expect(t, []string{"inspect", "-redis", r, "-prefix", "other", "alice"}, exitOK, "no state", "")

	// State not written by the scripts is shown as such, not as a crash.
	k := client.Keys("trypema", "abs", "mallory")
	srv.Do(t, "RPUSH", k[0], "garbage")
	expect(t, []string{"inspect", "-redis", r, "mallory"}, exitFailure, "", "not start:last:count:declined")
}

func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo sends traffic for 2 s")
	}
	_, onPath := exec.LookPath("redis-server")
	haveRedis := onPath == nil || os.Getenv("REDIS_URL") != ""
	if !haveRedis && os.Getenv("TRYPEMA_REQUIRE_REDIS") == "1" {
		t.Fatal("no redis-server on PATH and no REDIS_URL (TRYPEMA_REQUIRE_REDIS=1)")
	}
	out, _ := expect(t, []string{"demo", "-duration", "2s"}, exitOK, "local / absolute", "")
	want := []string{"local / suppressed", "mallory (abusive)", "offered/s", "p99", "(done)"}
	if haveRedis {
		want = append(want, "redis / absolute", "redis / suppressed")
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("demo output lacks %q:\n%s", w, out)
		}
	}
	if !strings.Contains(out, " failed 0  (done)") {
		t.Errorf("requests failed:\n%s", out)
	}
}

func TestDemoWithoutRedis(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Setenv("REDIS_URL", "")
	out, _ := expect(t, []string{"demo", "-duration", "1s"}, exitOK, "local / absolute", "")
	if !strings.Contains(out, "apt-get install redis-server") || strings.Contains(out, "redis / absolute") {
		t.Errorf("without Redis the demo must run local only and say how to add Redis:\n%s", out)
	}
}
