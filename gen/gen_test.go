package main

import (
	"errors"
	"flag"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/gomodule/redigo/redis"
	"github.com/google/go-cmp/cmp"

	"github.com/trypema-go/trypema/internal/redistest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// fixtureRoot is a module root with two fixture scripts in lua/v1.
const fixtureRoot = "testdata"

const goldenDir = "testdata/golden"

// TestGolden compares the outputs for the fixture scripts with the files in
// testdata/golden (each output path with .golden appended).
func TestGolden(t *testing.T) {
	files, err := generate(fixtureRoot)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, p := range sortedKeys(files) {
		golden := filepath.Join(goldenDir, filepath.FromSlash(p)+".golden")
		want[golden] = true
		if *update {
			if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(golden, files[p], 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		have, err := os.ReadFile(golden)
		if err != nil {
			t.Errorf("%v (run go test ./gen -update)", err)
			continue
		}
		if diff := cmp.Diff(string(have), string(files[p])); diff != "" {
			t.Errorf("%s differs from %s (-golden +generated; go test ./gen -update rewrites it):\n%s", p, golden, diff)
		}
	}
	// No golden file may be left over from an output that is gone.
	err = filepath.WalkDir(goldenDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || want[path] {
			return err
		}
		if *update {
			return os.Remove(path)
		}
		t.Errorf("%s is not generated any more (go test ./gen -update removes it)", path)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestGeneratedFilesStartWithMarker(t *testing.T) {
	files, err := generate(fixtureRoot)
	if err != nil {
		t.Fatal(err)
	}
	for p, content := range files {
		first, second, _ := strings.Cut(string(content), "\n")
		switch {
		case strings.HasPrefix(p, distDir+"/"):
			// The dist scripts are lib.lua + "\n" + script, byte for byte (their SHA1 is the contract).
		case p == functionsFile:
			// FUNCTION LOAD requires the shebang first; the marker follows.
			if first != "#!lua name=trypema_v1" || !strings.HasPrefix(second, "-- "+generatedLine+"\n") {
				t.Errorf("%s starts %q, %q", p, first, second)
			}
		case strings.HasSuffix(p, ".go"):
			if first != "// "+generatedLine {
				t.Errorf("%s starts %q", p, first)
			}
		case strings.HasSuffix(p, ".md"):
			if first != "<!-- "+generatedLine+" -->" {
				t.Errorf("%s starts %q", p, first)
			}
		default:
			t.Errorf("unexpected output %s", p)
		}
	}
}

func TestDistIsLibThenScript(t *testing.T) {
	files, err := generate(fixtureRoot)
	if err != nil {
		t.Fatal(err)
	}
	lib := readFile(t, filepath.Join(fixtureRoot, "lua/v1/lib.lua"))
	for _, name := range []string{"counter_add", "counter_get"} {
		src := readFile(t, filepath.Join(fixtureRoot, "lua/v1", name+".lua"))
		if got := string(files[distPath(name)]); got != lib+"\n"+src {
			t.Errorf("%s is not lib.lua + newline + %s.lua", distPath(name), name)
		}
	}
	// lib.lua appears once in the Functions library.
	if n := strings.Count(string(files[functionsFile]), "local function keys2("); n != 1 {
		t.Errorf("functions.lua holds lib.lua %d times, want 1", n)
	}
}

func TestDeterministic(t *testing.T) {
	a, err := generate(fixtureRoot)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		b, err := generate(fixtureRoot)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(a, b); diff != "" {
			t.Fatalf("two runs differ:\n%s", diff)
		}
	}
}

// TestCheckDetectsStaleFiles runs the generator on a copy of the fixtures
// and changes, removes and adds generated files behind its back.
func TestCheckDetectsStaleFiles(t *testing.T) {
	root := t.TempDir()
	copyTree(t, filepath.Join(fixtureRoot, "lua"), filepath.Join(root, "lua"))

	if err := run(root, true); err == nil || !strings.Contains(err.Error(), "client/scripts_gen.go (missing)") {
		t.Fatalf("check before the first generation: %v; want client/scripts_gen.go missing", err)
	}
	if err := run(root, false); err != nil {
		t.Fatal(err)
	}
	if err := run(root, true); err != nil {
		t.Fatalf("check right after generating: %v", err)
	}

	// A hand edit of a generated file, a deleted one, and a leftover.
	appendTo(t, filepath.Join(root, "client/scripts_gen.go"), "// edited\n")
	if err := os.Remove(filepath.Join(root, "lua/functions.lua")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(root, "lua/v1/dist/gone.lua"), "return 1\n")
	err := run(root, true)
	for _, want := range []string{
		"run make generate",
		"client/scripts_gen.go (differs from line ",
		"lua/functions.lua (missing)",
		"lua/v1/dist/gone.lua (no script generates it any more)",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("check: %v\nwant it to contain %q", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), "CONTRACT.md") {
		t.Errorf("check lists an up-to-date file: %v", err)
	}

	// A changed script header makes everything derived from it stale.
	src := filepath.Join(root, "lua/v1/counter_get.lua")
	writeFile(t, src, strings.Replace(readFile(t, src), "Reads a counter.", "Reads a counter, again.", 1))
	err = run(root, true)
	for _, want := range []string{"lua/v1/dist/counter_get.lua (differs from line 21)", "lua/CONTRACT.md (differs"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("check after a header change: %v\nwant it to contain %q", err, want)
		}
	}

	// Generating repairs all of it, leftovers included.
	if err := run(root, false); err != nil {
		t.Fatal(err)
	}
	if err := run(root, true); err != nil {
		t.Fatalf("check after regenerating: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "lua/v1/dist/gone.lua")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("leftover dist file not removed: %v", err)
	}
}

func TestInvalidScriptStopsGeneration(t *testing.T) {
	root := t.TempDir()
	copyTree(t, filepath.Join(fixtureRoot, "lua"), filepath.Join(root, "lua"))
	writeFile(t, filepath.Join(root, "lua/v1/bad.lua"), "--! script bad\n--! readonly true\nreturn 1\n")
	err := run(root, false)
	for _, want := range []string{"lua/v1/bad.lua:2: missing summary line", "lua/v1/bad.lua:2: no reply lines"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v\nwant it to contain %q", err, want)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "client")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("files were written despite the error")
	}
}

// TestFixturesInRedis loads the fixtures' Functions library into a real
// Redis and runs every example both as EVAL of the dist script and as FCALL:
// the replies must agree and match the declared reply types.
func TestFixturesInRedis(t *testing.T) {
	files, err := generate(fixtureRoot)
	if err != nil {
		t.Fatal(err)
	}
	_, scripts, err := loadScripts(fixtureRoot)
	if err != nil {
		t.Fatal(err)
	}
	srv := redistest.Start(t)
	checkFunctionsLoad(t, srv, string(files[functionsFile]), scripts)
	for _, s := range scripts {
		viaEval, viaFcall := runExample(t, srv, s, string(files[distPath(s.Name)]))
		if diff := cmp.Diff(viaEval, viaFcall); diff != "" {
			t.Errorf("%s: EVAL and FCALL replies differ (-eval +fcall):\n%s", s.Name, diff)
		}
	}
}

// TestRealScripts checks the project's own scripts the same way, once they
// exist: the committed Functions library loads, and every example runs via
// EVAL and FCALL with a reply of the declared shape.
func TestRealScripts(t *testing.T) {
	root := ".."
	if all, _ := filepath.Glob(filepath.Join(root, scriptDir, "*.lua")); len(all) <= 1 {
		t.Skipf("the scripts in %s do not exist yet", scriptDir)
	}
	files, err := generate(root)
	if err != nil {
		t.Fatal(err)
	}
	_, scripts, err := loadScripts(root)
	if err != nil {
		t.Fatal(err)
	}
	srv := redistest.Start(t)
	checkFunctionsLoad(t, srv, string(files[functionsFile]), scripts)
	for _, s := range scripts {
		runExample(t, srv, s, string(files[distPath(s.Name)]))
	}
}

// checkFunctionsLoad loads library and checks that FUNCTION LIST shows one
// function per script with the right flags.
func checkFunctionsLoad(t *testing.T, srv *redistest.Server, library string, scripts []*script) {
	t.Helper()
	if got := srv.Do(t, "FUNCTION", "LOAD", "REPLACE", library); got == nil {
		t.Fatal("FUNCTION LOAD returned nil")
	}
	libs, err := redis.Values(srv.Do(t, "FUNCTION", "LIST", "LIBRARYNAME", functionsLibrary), nil)
	if err != nil || len(libs) != 1 {
		t.Fatalf("FUNCTION LIST: %d libraries, %v", len(libs), err)
	}
	// FUNCTION LIST replies with flat name/value arrays.
	fields, _ := redis.Values(libs[0], nil)
	var functions []any
	for i := 0; i+1 < len(fields); i += 2 {
		if k, _ := redis.String(fields[i], nil); k == "functions" {
			functions, _ = redis.Values(fields[i+1], nil)
		}
	}
	got := map[string][]string{}
	for _, f := range functions {
		kv, _ := redis.Values(f, nil)
		var name string
		var flags []string
		for i := 0; i+1 < len(kv); i += 2 {
			switch k, _ := redis.String(kv[i], nil); k {
			case "name":
				name, _ = redis.String(kv[i+1], nil)
			case "flags":
				flags, _ = redis.Strings(kv[i+1], nil)
			}
		}
		got[name] = flags
	}
	want := map[string][]string{}
	for _, s := range scripts {
		want[functionName(s)] = []string{}
		if s.ReadOnly {
			want[functionName(s)] = []string{"no-writes"}
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("FUNCTION LIST functions and flags (-want +got):\n%s", diff)
	}
}

// runExample runs s's example on an empty server as EVAL of dist and as
// FCALL (FCALL_RO when read-only), checks both replies against the declared
// reply types, and returns them.
func runExample(t *testing.T, srv *redistest.Server, s *script, dist string) (viaEval, viaFcall []any) {
	t.Helper()
	words := s.exampleWords()
	args := make([]any, len(words))
	for i, w := range words {
		args[i] = w
	}
	fcall := "FCALL"
	if s.ReadOnly {
		fcall = "FCALL_RO"
	}
	c := srv.Pool().Get()
	defer c.Close()
	for _, call := range []struct {
		cmd  string
		args []any
		into *[]any
	}{
		{"EVAL", append([]any{dist}, args...), &viaEval},
		{fcall, append([]any{functionName(s)}, args...), &viaFcall},
	} {
		if _, err := c.Do("FLUSHALL"); err != nil {
			t.Fatal(err)
		}
		v, err := c.Do(call.cmd, call.args...)
		if err != nil {
			t.Errorf("%s: example via %s: %v", s.Name, call.cmd, err)
			continue
		}
		*call.into = checkReplyShape(t, s, call.cmd, v)
	}
	return viaEval, viaFcall
}

func checkReplyShape(t *testing.T, s *script, how string, v any) []any {
	t.Helper()
	vals, ok := v.([]any)
	if !ok || len(vals) != len(s.Replies) {
		t.Errorf("%s via %s: reply %#v, want an array of %d", s.Name, how, v, len(s.Replies))
		return nil
	}
	for i, r := range s.Replies {
		var good bool
		switch b, isBulk := vals[i].([]byte); r.Type {
		case "int":
			_, good = vals[i].(int64)
		case "string":
			good = isBulk
		case "float":
			f, err := strconv.ParseFloat(string(b), 64)
			good = isBulk && err == nil && !math.IsInf(f, 0) && !math.IsNaN(f)
		}
		if !good {
			t.Errorf("%s via %s: reply element %d (%s) is %#v, want %s", s.Name, how, i+1, r.Name, vals[i], r.Type)
		}
	}
	return vals
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func appendTo(t *testing.T, path, content string) {
	t.Helper()
	writeFile(t, path, readFile(t, path)+content)
}

// copyTree copies the regular files under src to dst.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		writeFile(t, filepath.Join(dst, rel), string(b))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
