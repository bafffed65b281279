package main

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"strings"
)

// functionsLibrary is the Redis Functions library name.
const functionsLibrary = "trypema_" + version

func functionName(s *script) string { return functionsLibrary + "_" + s.Name }

func sha1Hex(s string) string {
	sum := sha1.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// withNewline returns s ending in exactly one more newline if it had none.
func withNewline(s string) string {
	if s == "" || strings.HasSuffix(s, "\n") {
		return s
	}
	return s + "\n"
}

// renderFunctions writes the Functions library: lib.lua once at top level
// (its locals become upvalues of every callback), then one callback per
// script whose body is the script without its header, with KEYS and ARGV
// bound as locals. The body is not re-indented: that would change the
// content of multi-line strings.
func renderFunctions(lib string, scripts []*script) string {
	var b strings.Builder
	fmt.Fprintf(&b, "#!lua name=%s\n", functionsLibrary)
	fmt.Fprintf(&b, "-- %s\n", generatedLine)
	fmt.Fprintf(&b, "-- From %s/%s and the scripts there. Load with FUNCTION LOAD REPLACE; call with\n", scriptDir, libFile)
	fmt.Fprintf(&b, "-- FCALL %s_<script> (FCALL_RO for functions flagged no-writes).\n\n", functionsLibrary)
	fmt.Fprintf(&b, "-- %s/%s\n", scriptDir, libFile)
	b.WriteString(withNewline(lib))
	for _, s := range scripts {
		flags := "{}"
		if s.ReadOnly {
			flags = "{'no-writes'}"
		}
		fmt.Fprintf(&b, "\n-- %s/%s.lua: %s\n", scriptDir, s.Name, s.Summary)
		fmt.Fprintf(&b, "redis.register_function{\n")
		fmt.Fprintf(&b, "function_name='%s',\n", functionName(s))
		fmt.Fprintf(&b, "flags=%s,\n", flags)
		fmt.Fprintf(&b, "callback=function(keys, args)\n")
		fmt.Fprintf(&b, "local KEYS, ARGV = keys, args\n")
		b.WriteString(withNewline(s.Body))
		fmt.Fprintf(&b, "end,\n}\n")
	}
	return b.String()
}

// renderContract writes CONTRACT.md for users of other languages.
func renderContract(lib string, scripts []*script) string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p("<!-- %s -->\n\n", generatedLine)
	p("# Script contract (%s)\n\n", version)
	p("Every operation of Trypema-Go is a Lua script that any Redis client can call.\n")
	p("This file lists each script's keys, arguments, reply and error codes; it is\n")
	p("generated from the scripts' headers (`%s/<name>.lua`) by `make generate`.\n\n", scriptDir)

	p("## Keys\n\n")
	p("A limited key `K` of strategy `S` (`abs` or `sup`) under prefix `P` (default\n")
	p("`trypema`) owns two Redis keys in one Cluster hash slot, passed to every script\n")
	p("as `KEYS[1]` and `KEYS[2]`; no script builds a key name itself:\n\n")
	p("    P:%s:S:{K}:buckets   LIST  one element per bucket, oldest first\n", version)
	p("    P:%s:S:{K}:meta      HASH  the key's rate, caps and running totals\n\n", version)
	p("Both get a TTL on every write, so a key vanishes once its usage has left the\n")
	p("window. [README.md](README.md#key-layout) describes the bucket and hash formats.\n\n")

	p("## Calling a script\n\n")
	p("- **EVALSHA**: `%s/dist/<name>.lua` is the standalone script (`%s` followed by the\n", version, libFile)
	p("  script). `SCRIPT LOAD` it once, byte for byte (`redis-cli -x SCRIPT LOAD < file`;\n")
	p("  `\"$(cat file)\"` drops the final newline and so changes the digest), then\n")
	p("  `EVALSHA <sha1> <numkeys> <keys…> <args…>` with the SHA1 below; on a `NOSCRIPT`\n")
	p("  error load it again and retry (the script did not run). `EVAL` with the text\n")
	p("  works too.\n")
	p("- **Functions** (Redis 7+): load the library [`functions.lua`](functions.lua)\n")
	p("  (`%s`) with `redis-cli -x FUNCTION LOAD REPLACE < lua/functions.lua`, then\n", functionsLibrary)
	p("  `FCALL %s_<name> <numkeys> <keys…> <args…>`; read-only scripts are flagged\n", functionsLibrary)
	p("  `no-writes` and may use `FCALL_RO` (also on replicas).\n")
	p("- **Arguments** are strings: `int` in decimal, `float` in decimal or exponent\n")
	p("  notation (finite), `string` one of the values the description lists. An\n")
	p("  optional argument may be omitted when no later argument is given, or passed\n")
	p("  as the empty string.\n")
	p("- **Replies** are flat arrays: `int` elements are integer replies, `float` and\n")
	p("  `string` elements bulk strings (floats in `%%.17g`, which parse back exactly).\n")
	p("- **Errors** are error replies `<CODE> <message>`; the script writes nothing\n")
	p("  then. [README.md](README.md#error-replies) lists the codes.\n\n")

	p("| script | read-only | summary |\n| --- | --- | --- |\n")
	for _, s := range scripts {
		p("| [`%s`](#%s) | %s | %s |\n", s.Name, s.Name, yesNo(s.ReadOnly), cell(s.Summary))
	}
	for _, s := range scripts {
		src := distSource(lib, s)
		p("\n## %s\n\n", s.Name)
		p("%s\n\n", cell(s.Summary))
		p("- read-only: %s\n", yesNo(s.ReadOnly))
		p("- SHA1 of [`%s/dist/%s.lua`](%s/dist/%s.lua): `%s`\n", version, s.Name, version, s.Name, sha1Hex(src))
		p("- function: `%s`\n\n", functionName(s))

		p("KEYS:\n\n| # | name | description |\n| --- | --- | --- |\n")
		for i, k := range s.Keys {
			p("| %d | `%s` | %s |\n", i+1, k.Name, cell(k.Desc))
		}
		if len(s.Args) == 0 {
			p("\nARGV: none.\n\n")
		} else {
			p("\nARGV:\n\n| # | name | type | unit | req/opt | description |\n| --- | --- | --- | --- | --- | --- |\n")
			for i, a := range s.Args {
				req := "required"
				if a.Optional {
					req = "optional"
				}
				p("| %d | `%s` | %s | %s | %s | %s |\n", i+1, a.Name, a.Type, cell(a.Unit), req, cell(a.Desc))
			}
			p("\n")
		}
		p("Reply (array of %d):\n\n| # | name | type | description |\n| --- | --- | --- | --- |\n", len(s.Replies))
		for i, r := range s.Replies {
			p("| %d | `%s` | %s | %s |\n", i+1, r.Name, r.Type, cell(r.Desc))
		}
		if len(s.Errors) == 0 {
			p("\nErrors: none.\n\n")
		} else {
			p("\nErrors:\n\n| code | when |\n| --- | --- |\n")
			for _, e := range s.Errors {
				p("| `%s` | %s |\n", e.Code, cell(e.When))
			}
			p("\n")
		}
		words := s.exampleWords()
		numKeys := len(s.Keys)
		keys, args := words[1:1+numKeys], words[1+numKeys:]
		ro := ""
		if s.ReadOnly {
			ro = "_RO"
		}
		p("Example:\n\n```sh\n")
		p("redis-cli -x SCRIPT LOAD < lua/%s/dist/%s.lua\n", version, s.Name)
		p("redis-cli EVALSHA %s %s\n", sha1Hex(src), shellJoin(words))
		eval := shellJoin(keys)
		if len(args) > 0 {
			eval += " , " + shellJoin(args)
		}
		p("redis-cli --eval lua/%s/dist/%s.lua %s\n", version, s.Name, eval)
		p("redis-cli FCALL%s %s %s\n", ro, functionName(s), shellJoin(words))
		p("```\n")
	}
	return b.String()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// cell escapes free text for Markdown (a table cell or a paragraph): "<"
// would start an HTML tag, "|" end a cell.
func cell(s string) string {
	return strings.NewReplacer("<", "&lt;", "|", `\|`).Replace(s)
}

// shellJoin quotes words for a POSIX shell where needed.
func shellJoin(words []string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = shellQuote(w)
	}
	return strings.Join(q, " ")
}

func shellQuote(w string) string {
	if w != "" && strings.Trim(w, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-+.:/@%^=") == "" {
		return w
	}
	return "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
}
