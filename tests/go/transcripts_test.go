package conformance

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/trypema-go/trypema/client"
	"github.com/trypema-go/trypema/internal/redistest"
	"github.com/trypema-go/trypema/lua"
)

var update = flag.Bool("update", false, "rewrite the golden redis-cli transcripts from the real output")

const transcriptDir = "../lua/transcripts"

// TestRedisCLITranscripts replays every tests/lua/transcripts/*.txt through
// the real redis-cli against a fresh server and requires the recorded
// output byte for byte. A transcript is a sequence of "redis> ARGS" lines,
// each followed by the output redis-cli prints for it (--no-raw, as a
// person sees it); lines starting with # are comments. {{sha:NAME}} stands
// for the SHA1 of lua/v1/dist/NAME.lua. Every script is SCRIPT LOADed and
// the Functions library FUNCTION LOADed first.
func TestRedisCLITranscripts(t *testing.T) {
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		if os.Getenv("TRYPEMA_REQUIRE_REDIS") == "1" {
			t.Fatal("redis-cli is not installed: apt-get install redis-tools")
		}
		t.Skip("redis-cli is not installed: apt-get install redis-tools")
	}
	files, _ := filepath.Glob(filepath.Join(transcriptDir, "*.txt"))
	if len(files) == 0 {
		t.Fatal("no transcripts in " + transcriptDir)
	}
	shas := map[string]string{}
	for _, s := range client.AllScripts() {
		shas[s.Name()] = s.SHA1()
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			srv := redistest.Start(t)
			host, port, _ := strings.Cut(srv.Addr(), ":")
			for _, s := range client.AllScripts() {
				srv.Do(t, "SCRIPT", "LOAD", s.Source())
			}
			srv.Do(t, "FUNCTION", "LOAD", "REPLACE", lua.Functions())
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			commands := 0
			for _, block := range splitTranscript(string(raw)) {
				if !strings.HasPrefix(block.command, "redis> ") {
					out.WriteString(block.command + "\n")
					continue
				}
				commands++
				args, err := splitArgs(expandSHAs(strings.TrimPrefix(block.command, "redis> "), shas))
				if err != nil {
					t.Fatalf("%s: %v", block.command, err)
				}
				cmd := exec.Command(cli, append([]string{"-h", host, "-p", port, "--no-raw"}, args...)...)
				got, err := cmd.CombinedOutput()
				if err != nil {
					t.Fatalf("redis-cli %s: %v\n%s", block.command, err, got)
				}
				out.WriteString(block.command + "\n")
				out.Write(got)
				if !*update && string(got) != block.output {
					t.Errorf("%s\n got:\n%s want:\n%s", block.command, got, block.output)
				}
			}
			if commands == 0 {
				t.Fatal("the transcript has no commands")
			}
			if *update {
				if err := os.WriteFile(f, out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

type transcriptBlock struct{ command, output string }

// splitTranscript cuts a transcript into commands (or comment and blank
// lines, which have no output) and the output lines that follow each.
func splitTranscript(text string) []transcriptBlock {
	var blocks []transcriptBlock
	for _, line := range strings.SplitAfter(text, "\n") {
		if line == "" {
			continue
		}
		trimmed := strings.TrimSuffix(line, "\n")
		if strings.HasPrefix(trimmed, "redis> ") || strings.HasPrefix(trimmed, "#") || trimmed == "" {
			blocks = append(blocks, transcriptBlock{command: trimmed})
			continue
		}
		if len(blocks) == 0 {
			blocks = append(blocks, transcriptBlock{})
		}
		blocks[len(blocks)-1].output += line
	}
	return blocks
}

var shaToken = regexp.MustCompile(`\{\{sha:([a-z_]+)\}\}`)

func expandSHAs(s string, shas map[string]string) string {
	return shaToken.ReplaceAllStringFunc(s, func(tok string) string {
		if sha, ok := shas[shaToken.FindStringSubmatch(tok)[1]]; ok {
			return sha
		}
		return tok
	})
}

// splitArgs splits a command line on spaces; double quotes group words
// and "" is an empty argument.
func splitArgs(s string) ([]string, error) {
	var args []string
	var cur strings.Builder
	inQuote, started := false, false
	for _, r := range s {
		switch {
		case r == '"':
			inQuote, started = !inQuote, true
		case r == ' ' && !inQuote:
			if started {
				args = append(args, cur.String())
				cur.Reset()
				started = false
			}
		default:
			cur.WriteRune(r)
			started = true
		}
	}
	if inQuote {
		return nil, fmt.Errorf("unbalanced quote")
	}
	if started {
		args = append(args, cur.String())
	}
	return args, nil
}
