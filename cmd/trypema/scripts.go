package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/gomodule/redigo/redis"
	"github.com/trypema-go/trypema/client"
	"github.com/trypema-go/trypema/lua"
)

// libraryName is the Functions library's name (the #!lua name= line of
// lua/functions.lua).
const libraryName = "trypema_v1"

func scriptsCommand() *command {
	var rf redisFlags
	var functions bool
	c := &command{
		name:    "scripts",
		summary: "scripts [list | show NAME | load [-functions] [-redis URL]]",
		doc: `Print the Lua scripts of schema v1 and their SHA1s, print one script's
exact source, or load them into a Redis server.

  list        every script: name, SHA1 (the EVALSHA digest), whether it
              writes, and its Functions library name (the default)
  show NAME   the script's source byte for byte, so that
              trypema scripts show absolute_inc | redis-cli -x SCRIPT LOAD
              prints the SHA1 that list shows; NAME "functions" prints the
              Functions library (lua/functions.lua)
  load        SCRIPT LOAD every script and check the digests Redis returns;
              with -functions, FUNCTION LOAD REPLACE the library instead
`,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&rf.url, "redis", "", "Redis URL for load (default: $REDIS_URL, else "+defaultRedis+")")
			fs.BoolVar(&functions, "functions", false, "load: load the Functions library (Redis 7+) instead of the scripts")
		},
	}
	c.run = func(args []string, stdout, stderr io.Writer) int {
		fs := c.flagSet()
		pos, code, ok := c.parse(fs, args, stdout, stderr)
		if !ok {
			return code
		}
		sub := "list"
		if len(pos) > 0 {
			sub, pos = pos[0], pos[1:]
		}
		switch sub {
		case "list":
			if len(pos) > 0 {
				return usageErr(stderr, c.name, "list takes no arguments, got %q", pos)
			}
			listScripts(stdout)
			return exitOK
		case "show":
			if len(pos) != 1 {
				return usageErr(stderr, c.name, "show takes one script name (see trypema scripts list)")
			}
			if pos[0] == "functions" {
				io.WriteString(stdout, lua.Functions())
				return exitOK
			}
			src, ok := lua.Script(pos[0])
			if !ok {
				return usageErr(stderr, c.name, "no script %q; the scripts are %s", pos[0], strings.Join(lua.Names(), ", "))
			}
			io.WriteString(stdout, src)
			return exitOK
		case "load":
			if len(pos) > 0 {
				return usageErr(stderr, c.name, "load takes no arguments, got %q", pos)
			}
			ctx := context.Background()
			pool, err := rf.connect(ctx)
			if err != nil {
				return failure(stderr, c.name, err)
			}
			defer pool.Close()
			if functions {
				err = loadFunctions(ctx, pool, stdout)
			} else {
				err = loadScripts(ctx, pool, stdout)
			}
			if err != nil {
				return failure(stderr, c.name, err)
			}
			return exitOK
		}
		return usageErr(stderr, c.name, "unknown subcommand %q; use list, show or load", sub)
	}
	return c
}

func listScripts(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SCRIPT\tSHA1\tWRITES\tFUNCTION")
	for _, s := range client.AllScripts() {
		writes := "yes"
		if s.ReadOnly() {
			writes = "no"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Name(), s.SHA1(), writes, client.FunctionPrefix+s.Name())
	}
	tw.Flush()
	fmt.Fprintf(w, "\nEVALSHA <sha1> 2 <buckets key> <meta key> <args…> after SCRIPT LOAD (trypema scripts load);\n"+
		"FCALL <function> 2 … after FUNCTION LOAD (trypema scripts load -functions). lua/CONTRACT.md lists the arguments.\n")
}

// loadScripts runs SCRIPT LOAD for every script and checks the digest.
func loadScripts(ctx context.Context, pool *redis.Pool, w io.Writer) error {
	c, err := pool.GetContext(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	for _, s := range client.AllScripts() {
		sha, err := redis.String(redis.DoContext(c, ctx, "SCRIPT", "LOAD", s.Source()))
		if err != nil {
			return fmt.Errorf("SCRIPT LOAD %s: %w", s.Name(), err)
		}
		if sha != s.SHA1() {
			return fmt.Errorf("SCRIPT LOAD %s: Redis computed digest %s, want %s", s.Name(), sha, s.SHA1())
		}
		fmt.Fprintf(w, "loaded %-20s %s\n", s.Name(), sha)
	}
	return nil
}

// loadFunctions loads (or replaces) the Functions library.
func loadFunctions(ctx context.Context, pool *redis.Pool, w io.Writer) error {
	c, err := pool.GetContext(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	name, err := redis.String(redis.DoContext(c, ctx, "FUNCTION", "LOAD", "REPLACE", lua.Functions()))
	if err != nil {
		return fmt.Errorf("FUNCTION LOAD: %w (the Functions library needs Redis 7 or newer)", err)
	}
	if name != libraryName {
		return fmt.Errorf("FUNCTION LOAD: Redis loaded library %q, want %q", name, libraryName)
	}
	fmt.Fprintf(w, "loaded library %s: %d functions (FCALL %s<script> …)\n", name, len(client.AllScripts()), client.FunctionPrefix)
	return nil
}
