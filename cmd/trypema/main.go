// Command trypema is Trypema-Go's command-line tool: the demo behind
// make demo, the Lua scripts (print, load), and a look at keys in Redis
// (inspect, inc, get).
//
// Run trypema help for the commands, flags and exit codes.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/trypema-go/trypema"
)

// Exit codes, documented in the usage text.
const (
	exitOK       = 0 // success; for inc: the call was admitted
	exitFailure  = 1 // runtime failure: Redis unreachable, unexpected reply, …
	exitUsage    = 2 // usage error: unknown command or flag, invalid argument
	exitRefused  = 3 // inc only: the call was not admitted (rejected or suppressed)
	defaultRedis = "redis://127.0.0.1:6379/0"
)

const usage = `usage: trypema <command> [flags] [arguments]

commands:
  demo              real HTTP traffic through the httplimit middleware: several
                    clients, one abusive, against each provider and strategy;
                    prints a table of offered and admitted rates (make demo)
  scripts [list]    the Lua scripts with their SHA1s (for EVALSHA)
  scripts show NAME print a script's exact source (NAME "functions": the
                    Functions library); pipe it to redis-cli -x SCRIPT LOAD
  scripts load      load the scripts into Redis (SCRIPT LOAD), or with
                    -functions the Functions library (FUNCTION LOAD REPLACE)
  inspect KEY       a key's live state in Redis: buckets, totals, limit, TTL,
                    rate, suppression factor
  inc KEY           ask for units of KEY, as a limiter would (-rate, -n)
  get KEY           a key's live totals, one line
  help [COMMAND]    this text, or a command's flags

Commands that talk to Redis take -redis URL (default: $REDIS_URL, else
` + defaultRedis + `).

exit codes:
  0  success (inc: the call was admitted)
  1  runtime failure: Redis unreachable, a script error, an unexpected reply
  2  usage error: unknown command or flag, missing or invalid argument
     (key, rate, count, window, …)
  3  inc: the call was not admitted (rejected, or denied by suppression)
`

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// command is one subcommand: its flags are defined by flags, and run gets
// the positional arguments after parsing.
type command struct {
	name    string
	summary string // "inc [flags] KEY"
	doc     string // what it does, for trypema help NAME
	flags   func(fs *flag.FlagSet)
	run     func(args []string, stdout, stderr io.Writer) int
}

func commands() []*command {
	return []*command{demoCommand(), scriptsCommand(), inspectCommand(), incCommand(), getCommand()}
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 {
			if c := find(args[1]); c != nil {
				c.help(stdout)
				return exitOK
			}
			fmt.Fprintf(stderr, "trypema help: unknown command %q\n\n%s", args[1], usage)
			return exitUsage
		}
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	c := find(name)
	if c == nil {
		fmt.Fprintf(stderr, "trypema: unknown command %q\n\n%s", name, usage)
		return exitUsage
	}
	return c.run(args[1:], stdout, stderr)
}

func find(name string) *command {
	for _, c := range commands() {
		if c.name == name {
			return c
		}
	}
	return nil
}

func (c *command) flagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("trypema "+c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported by parse, help by help
	if c.flags != nil {
		c.flags(fs)
	}
	return fs
}

func (c *command) help(w io.Writer) {
	fmt.Fprintf(w, "usage: trypema %s\n\n%s", c.summary, c.doc)
	fs := c.flagSet()
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		fmt.Fprintln(w, "\nflags:")
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
}

// parse parses args with the command's flags, accepting flags after the
// positional arguments too (trypema inc KEY -n 2). "--" ends the flags.
// It returns the positional arguments, or an exit code when parsing ended
// the command (help, or a usage error, reported on stderr).
func (c *command) parse(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) ([]string, int, bool) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				c.help(stdout)
				return nil, exitOK, false
			}
			fmt.Fprintf(stderr, "trypema %s: %v\nrun 'trypema help %s' for its flags\n", c.name, err, c.name)
			return nil, exitUsage, false
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, 0, true
		}
		// fs.Parse stops at the first positional argument, or after "--".
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), 0, true
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// usageErr reports a usage error of command c.
func usageErr(stderr io.Writer, c string, format string, a ...any) int {
	fmt.Fprintf(stderr, "trypema %s: %s\nrun 'trypema help %s' for its flags\n", c, fmt.Sprintf(format, a...), c)
	return exitUsage
}

// failure reports err and returns its exit code: 2 for invalid input the
// library refused, 1 for everything else.
func failure(stderr io.Writer, c string, err error) int {
	fmt.Fprintf(stderr, "trypema %s: %v\n", c, err)
	if isInputError(err) {
		return exitUsage
	}
	return exitFailure
}

// isInputError reports whether the library refused err's call because of
// its arguments, which no retry can fix.
func isInputError(err error) bool {
	for _, e := range []error{
		trypema.ErrInvalidRate, trypema.ErrInvalidWindow, trypema.ErrInvalidBucket, trypema.ErrInvalidFactor,
		trypema.ErrInvalidOption, trypema.ErrInvalidKey, trypema.ErrInvalidPrefix, trypema.ErrInvalidCount,
		trypema.ErrInvalidArg, trypema.ErrZeroCapacity, trypema.ErrCountExceedsCapacity,
	} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// strategyName maps the -strategy flag to the key layout's strategy.
func strategyName(s string) (string, bool) {
	switch strings.ToLower(s) {
	case "abs", "absolute":
		return "abs", true
	case "sup", "suppressed":
		return "sup", true
	}
	return "", false
}
