// Command benchreport runs the side-by-side benchmarks of package bench
// against one redis-server, measures what each Redis-backed library costs
// the server (time per decision, memory per key), and writes BENCHMARKS.md.
//
// make bench runs it from the bench module:
//
//	go run ./cmd/benchreport -out ../BENCHMARKS.md
//
// The raw benchmark output (-raw, benchstat's input format) is kept so that
// later changes can be compared with benchstat:
//
//	benchstat bench/results.txt new.txt
//
// With -summarise-only it rewrites the report from an existing raw file
// and still measures Redis memory.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/trypema-go/trypema/bench"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
}

type options struct {
	goCmd         string
	benchRE       string
	count         int
	benchtime     string
	raw           string
	out           string
	memKeys       int
	summariseOnly bool
	commit        string
}

func run() error {
	var o options
	flag.StringVar(&o.goCmd, "go", "go", "the go command")
	flag.StringVar(&o.benchRE, "bench", ".", "which benchmarks to run (go test -bench)")
	flag.IntVar(&o.count, "count", 6, "passes over the benchmarks: samples of each")
	flag.StringVar(&o.benchtime, "benchtime", "250ms", "time per run (go test -benchtime)")
	flag.StringVar(&o.raw, "raw", "results.txt", "where the raw benchmark output goes")
	flag.StringVar(&o.out, "out", "../BENCHMARKS.md", "where the report goes")
	flag.IntVar(&o.memKeys, "memkeys", 10_000, "keys written through each Redis library to measure memory per key")
	flag.BoolVar(&o.summariseOnly, "summarise-only", false, "do not run the benchmarks; summarise the existing -raw file")
	flag.StringVar(&o.commit, "library-commit", "", "the library's commit, for a tree without .git (default: asked from git)")
	flag.Parse()

	start := time.Now()
	srv, err := bench.StartServer()
	if err != nil {
		return err
	}
	defer srv.Close()
	env, err := bench.NewEnv(srv.URL)
	if err != nil {
		return err
	}
	defer env.Close()

	m, err := describeMachine(o.goCmd, env)
	if err != nil {
		return err
	}
	m.Commit = o.commit
	if m.Commit == "" {
		m.Commit = libraryCommit()
	}
	if !o.summariseOnly {
		if err := runBenchmarks(o, srv.URL, m); err != nil {
			return err
		}
	}
	fmt.Fprintln(os.Stderr, "benchreport: measuring Redis memory and server time per library")
	costs, err := measureRedis(context.Background(), env, o.memKeys)
	if err != nil {
		return err
	}
	f, err := os.Open(o.raw)
	if err != nil {
		return err
	}
	defer f.Close()
	rs, err := parse(f, o.raw)
	if err != nil {
		return err
	}
	m.Elapsed, m.LoadEnd = time.Since(start), loadAverage()
	var report strings.Builder
	writeReport(&report, o, m, rs, costs)
	if err := os.WriteFile(o.out, []byte(report.String()), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "benchreport: wrote %s and %s in %v\n", o.out, o.raw, m.Elapsed.Round(time.Second))
	return nil
}

// runBenchmarks runs go test -bench in the bench module o.count times,
// each a whole pass over every benchmark with -count 1, with REDIS_URL
// pointing at our server. Passes rather than -count: go test repeats a
// sub-benchmark's runs back to back, so a burst of noise from the rest of
// the machine would land on one library's samples; a pass spreads it over
// all of them. The output is echoed and saved to o.raw, after the
// machine's description as benchfmt configuration lines.
func runBenchmarks(o options, url string, m machine) error {
	args := []string{"test", "-run", "^$", "-bench", o.benchRE, "-benchmem",
		"-count", "1", "-benchtime", o.benchtime, "-timeout", "30m", "."}
	f, err := os.Create(o.raw)
	if err != nil {
		return err
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	for _, kv := range m.config() {
		fmt.Fprintf(w, "%s: %s\n", kv[0], kv[1])
	}
	for pass := 1; pass <= o.count; pass++ {
		fmt.Fprintf(os.Stderr, "benchreport: pass %d of %d: %s %s\n", pass, o.count, o.goCmd, strings.Join(args, " "))
		cmd := exec.Command(o.goCmd, args...)
		cmd.Env = append(os.Environ(), "REDIS_URL="+url)
		cmd.Stdout = io.MultiWriter(w, os.Stdout)
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			_ = w.Flush()
			return fmt.Errorf("go test: %w (output so far in %s)", err, o.raw)
		}
	}
	return w.Flush()
}

// machine describes where the numbers were measured.
type machine struct {
	CPU, CPUs, Memory, OS, Kernel, Go, Redis string
	LoadStart, LoadEnd                       string // /proc/loadavg's first three fields
	GOMAXPROCS                               int
	Date                                     string
	Commit                                   string // the library's, and whether its sources had local changes
	Elapsed                                  time.Duration
}

func describeMachine(goCmd string, env *bench.Env) (machine, error) {
	m := machine{
		CPU:        firstField("/proc/cpuinfo", "model name"),
		CPUs:       fmt.Sprint(runtime.NumCPU()),
		Memory:     memTotal(),
		OS:         strings.Trim(firstField("/etc/os-release", "PRETTY_NAME"), `"`),
		Kernel:     strings.TrimSpace(readFile("/proc/sys/kernel/osrelease")),
		LoadStart:  loadAverage(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		Date:       time.Now().UTC().Format("2006-01-02"),
	}
	out, err := exec.Command(goCmd, "env", "GOVERSION").Output()
	if err != nil {
		return m, fmt.Errorf("%s env GOVERSION: %w", goCmd, err)
	}
	m.Go = strings.TrimSpace(string(out))
	info, err := env.Do("INFO", "server")
	if err != nil {
		return m, err
	}
	b, _ := info.([]byte)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
			m.Redis = v
		}
	}
	return m, nil
}

// config is the machine as benchfmt file configuration (key: value lines).
func (m machine) config() [][2]string {
	return [][2]string{
		{"machine-cpu", m.CPU + " × " + m.CPUs},
		{"machine-memory", m.Memory},
		{"machine-os", m.OS + ", Linux " + m.Kernel},
		{"library-commit", m.Commit},
		{"go", m.Go},
		{"redis", m.Redis + " (redis-server on loopback, no persistence)"},
	}
}

// libraryCommit names the commit of the library the benchmarks measured
// (the bench module replaces it with ..), and says so when the library's
// sources in the work tree differ from it: the numbers are then those of
// the work tree.
func libraryCommit() string {
	out, err := exec.Command("git", "-C", "..", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown (no git)"
	}
	commit := strings.TrimSpace(string(out))
	out, err = exec.Command("git", "-C", "..", "status", "--porcelain", "--",
		"*.go", "*.lua", "go.mod", "go.sum", ":(exclude)bench").Output()
	if err != nil {
		return commit
	}
	if changed := strings.Count(string(out), "\n"); changed > 0 {
		return fmt.Sprintf("%s with %d changed source files in the work tree", commit, changed)
	}
	return commit
}

func memTotal() string {
	var kb float64
	if _, err := fmt.Sscanf(firstField("/proc/meminfo", "MemTotal"), "%f kB", &kb); err != nil {
		return "unknown"
	}
	return fmt.Sprintf("%.1f GiB", kb/(1<<20))
}

func loadAverage() string {
	f := strings.Fields(readFile("/proc/loadavg"))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], ", ")
}

func readFile(name string) string {
	b, err := os.ReadFile(name)
	if err != nil {
		return "unknown"
	}
	return string(b)
}

// firstField returns the value of the first "key: value" or "key=value"
// line of a /proc or /etc file.
func firstField(name, key string) string {
	for _, line := range strings.Split(readFile(name), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			k, v, ok = strings.Cut(line, "=")
		}
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

var errNoResults = errors.New("no benchmark results")

// moduleVersions returns the versions of the modules this program was
// built with, which are the ones the benchmarks use (one go.mod).
func moduleVersions() map[string]string {
	v := map[string]string{}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			v[d.Path] = d.Version
		}
	}
	return v
}
