// Command trypema is Trypema-Go's command-line tool.
//
//	trypema demo    run a short demo of the local provider's two strategies
//
// Exit codes: 0 success, 1 failure, 2 usage error.
package main

import (
	"fmt"
	"io"
	"os"
)

const usage = `usage: trypema <command> [arguments]

commands:
  demo    show the local provider's absolute and suppressed strategies
          deciding a small traffic pattern, one line per decision
  help    print this text
`

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "demo":
		if len(args) > 1 {
			fmt.Fprintf(stderr, "trypema demo: unexpected argument %q\n", args[1])
			return 2
		}
		if err := demo(stdout); err != nil {
			fmt.Fprintln(stderr, "trypema demo:", err)
			return 1
		}
		return 0
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "trypema: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}
