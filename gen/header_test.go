package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// goodHeader is a valid header of a script named "demo" (lines 1–15).
var goodHeader = []string{
	"--! script   demo",                                               // 1
	"--! summary  Does a demo thing.",                                 // 2
	"--! readonly false",                                              // 3
	"--! key      buckets  the bucket list",                           // 4
	"--! key      meta     the meta hash",                             // 5
	"--! arg      rate     float  units/s  required  the rate (> 0)",  // 6
	"--! arg      n        int    units    required  units to add",    // 7
	"--! arg      mode     string -        optional  replace or keep", // 8
	"--! arg      now_ms   int    ms       optional  the time",        // 9
	"--! reply    allowed  int    1 when admitted",                    // 10
	"--! reply    factor   float  the factor",                         // 11
	"--! reply    kind     string allowed or rejected",                // 12
	"--! error    TRYPEMA_RATE  the rate is bad",                      // 13
	"--! error    TRYPEMA_COUNT n is bad",                             // 14
	`--! example  2 p:v1:abs:{k}:buckets p:v1:abs:{k}:meta 10 1 "" 5`, // 15
}

const goodBody = "local x = 1\nreturn {1, '0.5', 'allowed'}\n"

func source(lines []string) string { return strings.Join(lines, "\n") + "\n" + goodBody }

func TestParseGoodHeader(t *testing.T) {
	s, err := parseScript("lua/v1/demo.lua", "demo", source(goodHeader))
	if err != nil {
		t.Fatal(err)
	}
	want := &script{
		Name:     "demo",
		Summary:  "Does a demo thing.",
		ReadOnly: false,
		Keys:     []key{{"buckets", "the bucket list"}, {"meta", "the meta hash"}},
		Args: []arg{
			{Name: "rate", Type: "float", Unit: "units/s", Desc: "the rate (> 0)"},
			{Name: "n", Type: "int", Unit: "units", Desc: "units to add"},
			{Name: "mode", Type: "string", Unit: "-", Optional: true, Desc: "replace or keep"},
			{Name: "now_ms", Type: "int", Unit: "ms", Optional: true, Desc: "the time"},
		},
		Replies: []reply{{"allowed", "int", "1 when admitted"}, {"factor", "float", "the factor"}, {"kind", "string", "allowed or rejected"}},
		Errors:  []errorCode{{"TRYPEMA_RATE", "the rate is bad"}, {"TRYPEMA_COUNT", "n is bad"}},
		Example: `2 p:v1:abs:{k}:buckets p:v1:abs:{k}:meta 10 1 "" 5`,
		Source:  source(goodHeader),
		Body:    goodBody,
	}
	if diff := cmp.Diff(want, s); diff != "" {
		t.Errorf("parsed header (-want +got):\n%s", diff)
	}
	if got, want := s.exampleWords(), []string{"2", "p:v1:abs:{k}:buckets", "p:v1:abs:{k}:meta", "10", "1", "", "5"}; !slices.Equal(got, want) {
		t.Errorf("example words = %q, want %q", got, want)
	}
}

func TestParseMinimalHeader(t *testing.T) {
	src := "--! script x\n--! summary s\n--! readonly true\n--! key k d\n--! reply r int d\n--! example 1 a\nreturn {1}"
	s, err := parseScript("x.lua", "x", src)
	if err != nil {
		t.Fatal(err)
	}
	if !s.ReadOnly || len(s.Args) != 0 || len(s.Errors) != 0 || s.Body != "return {1}" {
		t.Errorf("parsed %+v", s)
	}
}

func TestParseBadHeaders(t *testing.T) {
	set := func(line int, text string) func([]string) []string {
		return func(l []string) []string { l[line-1] = text; return l }
	}
	drop := func(line int) func([]string) []string {
		return func(l []string) []string { return slices.Delete(l, line-1, line) }
	}
	tests := []struct {
		name string
		edit func([]string) []string
		want string // "file:line: problem" fragment
	}{
		{"no header", func([]string) []string { return []string{"-- just a comment"} },
			"demo.lua:1: no header"},
		{"name differs from file", set(1, "--! script other"),
			`demo.lua:1: script name "other" does not match the file name "demo.lua"`},
		{"script name not snake_case", set(1, "--! script Demo"),
			`demo.lua:1: script name "Demo" does not match`},
		{"unknown tag", set(2, "--! sumary Does a demo thing."),
			`demo.lua:2: unknown tag "sumary"`},
		{"no space after marker", set(2, "--!summary Does a demo thing."),
			`demo.lua:2: want "--!" followed by a space and a tag`},
		{"empty summary", set(2, "--! summary   "),
			"demo.lua:2: summary: want 1 field(s)"},
		{"readonly not a bool", set(3, "--! readonly yes"),
			`demo.lua:3: readonly "yes": want true or false`},
		{"missing readonly", drop(3),
			"demo.lua:14: missing readonly line"},
		{"key without description", set(4, "--! key buckets"),
			"demo.lua:4: key: want 2 field(s): --! key <name> <description>"},
		{"bad key name", set(5, "--! key Meta the meta hash"),
			`demo.lua:5: key name "Meta": want snake_case`},
		{"no keys", func(l []string) []string {
			l = slices.Delete(l, 3, 5)
			l[len(l)-1] = "--! example 0 10 1"
			return l
		}, "demo.lua:13: no key lines"},
		{"unknown type", set(6, "--! arg rate double units/s required the rate"),
			`demo.lua:6: arg "rate": unknown type "double" (want int, float or string)`},
		{"unknown unit", set(7, "--! arg n int items required units to add"),
			`demo.lua:7: arg "n": unknown unit "items"`},
		{"neither required nor optional", set(7, "--! arg n int units mandatory units to add"),
			`demo.lua:7: arg "n": "mandatory": want required or optional`},
		{"arg missing fields", set(7, "--! arg n int units required"),
			"demo.lua:7: arg: want 5 field(s): --! arg <name> <type> <unit> <required|optional> <description>"},
		{"required after optional", set(9, "--! arg now_ms int ms required the time"),
			`demo.lua:9: arg "now_ms": required argument after the optional one at line 8`},
		{"duplicate arg", set(9, "--! arg n int units optional again"),
			`demo.lua:9: arg "n" declared twice (first at line 7)`},
		{"args colliding in Go", func(l []string) []string {
			l[7] = "--! arg now1ms int ms optional t"
			l[8] = "--! arg now_1ms int ms optional t"
			return l
		}, `demo.lua:9: arg names "now1ms" and "now_1ms" both become the Go field Now1ms`},
		{"unknown reply type", set(11, "--! reply factor number the factor"),
			`demo.lua:11: reply "factor": unknown type "number"`},
		{"duplicate reply", set(12, "--! reply allowed int again"),
			`demo.lua:12: reply "allowed" declared twice (first at line 10)`},
		{"no replies", func(l []string) []string { return slices.Delete(l, 9, 12) },
			"demo.lua:12: no reply lines"},
		{"unknown error code", set(13, "--! error TRYPEMA_RATES the rate is bad"),
			`demo.lua:13: unknown error code "TRYPEMA_RATES"`},
		{"duplicate script line", set(14, "--! script demo"),
			"demo.lua:14: duplicate script line (first at line 1)"},
		{"missing example", drop(15),
			"demo.lua:14: missing example line"},
		{"example numkeys wrong", set(15, "--! example 1 k 10 1"),
			`demo.lua:15: example: starts with "1", want numkeys 2`},
		{"example too few args", set(15, "--! example 2 a b 10"),
			"demo.lua:15: example: passes 1 argument(s), want 2 to 4"},
		{"example too many args", set(15, "--! example 2 a b 10 1 x 5 6"),
			"demo.lua:15: example: passes 5 argument(s), want 2 to 4"},
		{"example unbalanced quote", set(15, `--! example 2 a b 10 1 "x`),
			`demo.lua:15: example: unbalanced " quote`},
		{"header line after the body starts", func(l []string) []string {
			return slices.Insert(l, 14, "local x = 1")
		}, "demo.lua:16: --! line after the header"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lines := tt.edit(slices.Clone(goodHeader))
			_, err := parseScript("lua/v1/demo.lua", "demo", source(lines))
			if err == nil {
				t.Fatalf("no error; want %q", tt.want)
			}
			if !strings.Contains(err.Error(), "lua/v1/"+tt.want) {
				t.Errorf("error:\n%v\nwant it to contain:\n%s", err, "lua/v1/"+tt.want)
			}
		})
	}
}

// TestParseReportsEveryProblem: one run lists all problems, not the first.
func TestParseReportsEveryProblem(t *testing.T) {
	lines := slices.Clone(goodHeader)
	lines[2] = "--! readonly maybe"
	lines[5] = "--! arg rate real units/s required the rate"
	_, err := parseScript("lua/v1/demo.lua", "demo", source(lines))
	if err == nil || strings.Count(err.Error(), "\n") != 1 ||
		!strings.Contains(err.Error(), "demo.lua:3:") || !strings.Contains(err.Error(), "demo.lua:6:") {
		t.Errorf("error = %v, want two lines, for lines 3 and 6", err)
	}
}

func TestSplitWords(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"2 a b 1", []string{"2", "a", "b", "1"}},
		{`1  "a b"  '' "q\"x"`, []string{"1", "a b", "", `q"x`}},
		{`1 k:{x}:m ""`, []string{"1", "k:{x}:m", ""}},
	}
	for _, tt := range tests {
		got, err := splitWords(tt.in)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("splitWords(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestCamel(t *testing.T) {
	for in, want := range map[string]string{
		"absolute_inc": "AbsoluteInc", "set_if": "SetIf", "n": "N", "now_ms": "NowMs", "suppressed_factor": "SuppressedFactor",
	} {
		if got := camel(in); got != want {
			t.Errorf("camel(%q) = %q, want %q", in, got, want)
		}
	}
}
