package conformance

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/trypema-go/trypema/internal/redistest"
)

// python finds an interpreter that has the redis package (Debian's
// python3-redis lives under /usr/bin/python3, which may not be first on
// PATH).
func python(t *testing.T) string {
	for _, cand := range []string{"/usr/bin/python3", "python3"} {
		if exec.Command(cand, "-c", "import redis").Run() == nil {
			return cand
		}
	}
	const hint = "no python3 with the redis package: apt-get install python3-redis"
	if os.Getenv("TRYPEMA_REQUIRE_REDIS") == "1" {
		t.Fatal(hint)
	}
	t.Skip(hint)
	return ""
}

// TestScriptsFromPython plays every vector through the scripts from another
// language (redis-py) and requires the same results as localcache, step for
// step, and the vectors' expectations.
func TestScriptsFromPython(t *testing.T) {
	py := python(t)
	srv := redistest.Start(t)
	vectors, err := LoadVectors(vectorDir)
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(vectorDir, "*.json"))
	args := append([]string{"../lua/play_vectors.py", srv.URL(), "../../lua/v1/dist"}, files...)
	var stderr bytes.Buffer
	cmd := exec.Command(py, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("play_vectors.py: %v\n%s", err, stderr.String())
	}
	type pyVector struct {
		File    string   `json:"file"`
		Name    string   `json:"name"`
		Results []Result `json:"results"`
	}
	var got []pyVector
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		var pv pyVector
		if err := json.Unmarshal(sc.Bytes(), &pv); err != nil {
			t.Fatalf("bad line from play_vectors.py: %v: %s", err, sc.Text())
		}
		got = append(got, pv)
	}
	if len(got) != len(vectors) {
		t.Fatalf("python played %d vectors, want %d", len(got), len(vectors))
	}
	for id := range vectors {
		v := &vectors[id]
		if got[id].Name != v.Name {
			t.Fatalf("vector %d: python played %q, want %q", id, got[id].Name, v.Name)
		}
		local := run(t, localProvider(), v, id)
		for i, s := range v.Steps {
			if bad := Mismatches(s.Want, got[id].Results[i]); len(bad) > 0 {
				t.Errorf("%s/%s step %d (%s): %v", v.file, v.Name, i, s.Op, bad)
			}
		}
		if diff := cmp.Diff(local, got[id].Results); diff != "" {
			t.Errorf("%s/%s: python differs from localcache (-local +python):\n%s", v.file, v.Name, diff)
		}
	}
	t.Logf("%d vectors played from Python", len(got))
}
