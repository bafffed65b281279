package main

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// script is one lua/v1/<name>.lua: its declared contract and its text.
type script struct {
	Name     string
	Summary  string
	ReadOnly bool
	Keys     []key
	Args     []arg
	Replies  []reply
	Errors   []errorCode
	Example  string

	Source string // the whole file
	Body   string // the file after its header lines
}

type key struct{ Name, Desc string }

type arg struct {
	Name, Type, Unit string
	Optional         bool
	Desc             string
}

type reply struct{ Name, Type, Desc string }

type errorCode struct{ Code, When string }

// requiredArgs counts the arguments that must be given.
func (s *script) requiredArgs() int {
	n := 0
	for _, a := range s.Args {
		if !a.Optional {
			n++
		}
	}
	return n
}

// exampleWords splits the example into redis-cli words: numkeys, keys, args.
func (s *script) exampleWords() []string {
	w, _ := splitWords(s.Example)
	return w
}

var (
	types = []string{"int", "float", "string"}
	units = []string{"ms", "units", "units/s", "ratio", "-"}

	// errorCodes are the codes lua/README.md defines; client/scriptsupport.go
	// maps each to a root package error.
	errorCodes = []string{
		"TRYPEMA_ARG", "TRYPEMA_RATE", "TRYPEMA_WINDOW", "TRYPEMA_BUCKET",
		"TRYPEMA_FACTOR", "TRYPEMA_COUNT", "TRYPEMA_ZERO_CAPACITY",
		"TRYPEMA_COUNT_EXCEEDS_CAPACITY", "TRYPEMA_KEYS", "TRYPEMA_WRONGTYPE",
		"TRYPEMA_CORRUPT",
	}

	// snakeName is a script, key, argument or reply name: it must turn
	// into a distinct Go identifier by CamelCase.
	snakeName = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)

	// reservedMethods are methods of client.Scripts that a script's
	// wrapper must not collide with.
	reservedMethods = []string{"Load"}
)

// headerTags lists the tags and how many fields each takes; the last field
// is free text to the end of the line.
var headerTags = map[string]struct {
	fields int
	syntax string
}{
	"script":   {1, "--! script <name>"},
	"summary":  {1, "--! summary <one line>"},
	"readonly": {1, "--! readonly <true|false>"},
	"key":      {2, "--! key <name> <description>"},
	"arg":      {5, "--! arg <name> <type> <unit> <required|optional> <description>"},
	"reply":    {3, "--! reply <name> <type> <description>"},
	"error":    {2, "--! error <CODE> <when>"},
	"example":  {1, "--! example <numkeys> <keys…> <args…>"},
}

// errorList collects "file:line: problem" messages.
type errorList []string

func (l *errorList) add(file string, line int, format string, a ...any) {
	*l = append(*l, fmt.Sprintf("%s:%d: %s", file, line, fmt.Sprintf(format, a...)))
}

func (l errorList) err() error {
	if len(l) == 0 {
		return nil
	}
	return errors.New(strings.Join(l, "\n"))
}

const headerPrefix = "--!"

// parseScript parses and validates the header of file (named for messages;
// its base name without .lua must equal the declared script name).
func parseScript(file, wantName, src string) (*script, error) {
	var errs errorList
	s := &script{Source: src}
	lines := strings.SplitAfter(src, "\n")

	seen := map[string]int{} // single-valued tag → line
	names := map[string]map[string]int{"key": {}, "arg": {}, "reply": {}, "error": {}}
	goNames := map[string]map[string]string{"arg": {}, "reply": {}} // CamelCase → name
	// firstOptional is the line of the first optional argument.
	firstOptional := 0
	exampleLine := 0

	n := 0 // header lines
	for n < len(lines) && strings.HasPrefix(lines[n], headerPrefix) {
		n++
	}
	if n == 0 {
		errs.add(file, 1, "no header: a script starts with %q lines (see lua/README.md)", headerPrefix+" script <name>")
		return nil, errs.err()
	}
	s.Body = strings.Join(lines[n:], "")
	for i := n; i < len(lines); i++ {
		if strings.HasPrefix(strings.TrimLeft(lines[i], " \t"), headerPrefix) {
			errs.add(file, i+1, "%s line after the header: header lines must all come first, with nothing between them", headerPrefix)
		}
	}

	for i, raw := range lines[:n] {
		lineNo := i + 1
		line := strings.TrimRight(raw, "\r\n")
		rest := line[len(headerPrefix):]
		if rest == "" || (rest[0] != ' ' && rest[0] != '\t') {
			errs.add(file, lineNo, "want %q followed by a space and a tag", headerPrefix)
			continue
		}
		tag, rest := cutField(rest)
		spec, ok := headerTags[tag]
		if !ok {
			errs.add(file, lineNo, "unknown tag %q (want one of script, summary, readonly, key, arg, reply, error, example)", tag)
			continue
		}
		f := splitFields(rest, spec.fields)
		if len(f) < spec.fields || f[spec.fields-1] == "" {
			errs.add(file, lineNo, "%s: want %d field(s): %s", tag, spec.fields, spec.syntax)
			continue
		}

		switch tag {
		case "script", "summary", "readonly", "example":
			if prev, dup := seen[tag]; dup {
				errs.add(file, lineNo, "duplicate %s line (first at line %d)", tag, prev)
				continue
			}
			seen[tag] = lineNo
		default:
			if prev, dup := names[tag][f[0]]; dup {
				errs.add(file, lineNo, "%s %q declared twice (first at line %d)", tag, f[0], prev)
				continue
			}
			names[tag][f[0]] = lineNo
			if tag == "arg" || tag == "reply" {
				if prev, dup := goNames[tag][camel(f[0])]; dup {
					errs.add(file, lineNo, "%s names %q and %q both become the Go field %s", tag, prev, f[0], camel(f[0]))
				}
				goNames[tag][camel(f[0])] = f[0]
			}
		}

		switch tag {
		case "script":
			s.Name = f[0]
			if s.Name != wantName {
				errs.add(file, lineNo, "script name %q does not match the file name %q", s.Name, wantName+".lua")
			} else if !snakeName.MatchString(s.Name) {
				errs.add(file, lineNo, "script name %q: want snake_case (a-z, 0-9, single underscores)", s.Name)
			} else if slices.Contains(reservedMethods, camel(s.Name)) {
				errs.add(file, lineNo, "script name %q: its Go wrapper %s would collide with Scripts.%s", s.Name, camel(s.Name), camel(s.Name))
			}
		case "summary":
			s.Summary = f[0]
		case "readonly":
			switch f[0] {
			case "true":
				s.ReadOnly = true
			case "false":
			default:
				errs.add(file, lineNo, "readonly %q: want true or false", f[0])
			}
		case "key":
			checkName(&errs, file, lineNo, "key", f[0])
			s.Keys = append(s.Keys, key{Name: f[0], Desc: f[1]})
		case "arg":
			a := arg{Name: f[0], Type: f[1], Unit: f[2], Desc: f[4]}
			checkName(&errs, file, lineNo, "arg", a.Name)
			checkType(&errs, file, lineNo, "arg "+strconv.Quote(a.Name), a.Type)
			if !slices.Contains(units, a.Unit) {
				errs.add(file, lineNo, "arg %q: unknown unit %q (want one of %s)", a.Name, a.Unit, strings.Join(units, ", "))
			}
			switch f[3] {
			case "optional":
				a.Optional = true
				if firstOptional == 0 {
					firstOptional = lineNo
				}
			case "required":
				if firstOptional != 0 {
					errs.add(file, lineNo, "arg %q: required argument after the optional one at line %d (optional arguments must come last)", a.Name, firstOptional)
				}
			default:
				errs.add(file, lineNo, "arg %q: %q: want required or optional", a.Name, f[3])
			}
			s.Args = append(s.Args, a)
		case "reply":
			r := reply{Name: f[0], Type: f[1], Desc: f[2]}
			checkName(&errs, file, lineNo, "reply", r.Name)
			checkType(&errs, file, lineNo, "reply "+strconv.Quote(r.Name), r.Type)
			s.Replies = append(s.Replies, r)
		case "error":
			if !slices.Contains(errorCodes, f[0]) {
				errs.add(file, lineNo, "unknown error code %q (want one of %s)", f[0], strings.Join(errorCodes, ", "))
			}
			s.Errors = append(s.Errors, errorCode{Code: f[0], When: f[1]})
		case "example":
			s.Example = f[0]
			exampleLine = lineNo
		}
	}

	for _, tag := range []string{"script", "summary", "readonly", "example"} {
		if _, ok := seen[tag]; !ok {
			errs.add(file, n, "missing %s line: %s", tag, headerTags[tag].syntax)
		}
	}
	if len(s.Keys) == 0 {
		errs.add(file, n, "no key lines: every script declares the keys it touches (%s)", headerTags["key"].syntax)
	}
	if len(s.Replies) == 0 {
		errs.add(file, n, "no reply lines: a script replies with at least one element (%s)", headerTags["reply"].syntax)
	}
	if exampleLine != 0 {
		checkExample(&errs, file, exampleLine, s)
	}
	if err := errs.err(); err != nil {
		return nil, err
	}
	return s, nil
}

func checkName(errs *errorList, file string, line int, what, name string) {
	if !snakeName.MatchString(name) {
		errs.add(file, line, "%s name %q: want snake_case (a-z, 0-9, single underscores)", what, name)
	}
}

func checkType(errs *errorList, file string, line int, what, typ string) {
	if !slices.Contains(types, typ) {
		errs.add(file, line, "%s: unknown type %q (want int, float or string)", what, typ)
	}
}

// checkExample checks that the example's numkeys matches the key lines and
// that it passes at least the required and at most all arguments.
func checkExample(errs *errorList, file string, line int, s *script) {
	words, err := splitWords(s.Example)
	if err != nil {
		errs.add(file, line, "example: %v", err)
		return
	}
	numKeys, err := strconv.Atoi(words[0])
	if err != nil || numKeys != len(s.Keys) {
		errs.add(file, line, "example: starts with %q, want numkeys %d (the number of key lines)", words[0], len(s.Keys))
		return
	}
	nargs := len(words) - 1 - numKeys
	if nargs < s.requiredArgs() || nargs > len(s.Args) {
		errs.add(file, line, "example: passes %d argument(s), want %d to %d", max(nargs, 0), s.requiredArgs(), len(s.Args))
	}
}

// cutField splits off the first space-separated field of s.
func cutField(s string) (field, rest string) {
	s = strings.TrimLeft(s, " \t")
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		return s, ""
	}
	return s[:i], s[i:]
}

// splitFields splits s into at most n fields separated by runs of spaces;
// the last one is the rest of the line.
func splitFields(s string, n int) []string {
	var out []string
	for len(out) < n-1 {
		f, rest := cutField(s)
		if f == "" {
			return out
		}
		out = append(out, f)
		s = rest
	}
	if last := strings.TrimSpace(s); last != "" {
		out = append(out, last)
	}
	return out
}

// splitWords splits a redis-cli argument line into words, honouring double
// quotes (with backslash escapes) and single quotes as redis-cli does.
func splitWords(s string) ([]string, error) {
	var words []string
	i := 0
	for {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		if i == len(s) {
			break
		}
		var w strings.Builder
		for i < len(s) && s[i] != ' ' && s[i] != '\t' {
			switch q := s[i]; q {
			case '"', '\'':
				end := i + 1
				for ; end < len(s) && s[end] != q; end++ {
					if q == '"' && s[end] == '\\' {
						end++
					}
				}
				if end >= len(s) {
					return nil, fmt.Errorf("unbalanced %c quote", q)
				}
				part := s[i : end+1]
				if q == '"' {
					u, err := strconv.Unquote(part)
					if err != nil {
						return nil, fmt.Errorf("bad quoted word %s: %v", part, err)
					}
					w.WriteString(u)
				} else {
					w.WriteString(part[1 : len(part)-1])
				}
				i = end + 1
			default:
				w.WriteByte(q)
				i++
			}
		}
		words = append(words, w.String())
	}
	if len(words) == 0 {
		return nil, fmt.Errorf("empty")
	}
	return words, nil
}

// camel turns snake_case into CamelCase: absolute_inc → AbsoluteInc.
func camel(s string) string {
	var b strings.Builder
	for part := range strings.SplitSeq(s, "_") {
		if part == "" {
			continue
		}
		b.WriteString(strings.ToUpper(part[:1]))
		b.WriteString(part[1:])
	}
	return b.String()
}
