// Package lua embeds Trypema-Go's generated Lua: the standalone scripts of
// schema v1 (lib.lua followed by one script, the text that EVAL and SCRIPT
// LOAD get) and the Redis Functions library holding all of them.
//
// The sources are lua/v1/*.lua; the embedded files are generated from them
// by go run ./gen (make generate). CONTRACT.md documents every script.
package lua

//go:generate go run ../gen -root ..

import (
	"embed"
	"path"
	"slices"
	"strings"
)

//go:embed v1/dist/*.lua functions.lua
var files embed.FS

var (
	scripts   = map[string]string{}
	names     []string
	functions string
)

func init() {
	entries, err := files.ReadDir("v1/dist")
	if err != nil {
		panic("lua: embedded v1/dist is unreadable: " + err.Error())
	}
	for _, e := range entries {
		b, err := files.ReadFile(path.Join("v1/dist", e.Name()))
		if err != nil {
			panic("lua: embedded " + e.Name() + " is unreadable: " + err.Error())
		}
		name := strings.TrimSuffix(e.Name(), ".lua")
		scripts[name] = string(b)
		names = append(names, name)
	}
	slices.Sort(names)
	b, err := files.ReadFile("functions.lua")
	if err != nil {
		panic("lua: embedded functions.lua is unreadable: " + err.Error())
	}
	functions = string(b)
}

// Script returns the standalone source of the named script (for example
// "absolute_inc"), and whether such a script exists.
func Script(name string) (string, bool) {
	src, ok := scripts[name]
	return src, ok
}

// Names returns the names of all scripts, sorted.
func Names() []string { return slices.Clone(names) }

// Functions returns the Redis Functions library (library trypema_v1, one
// function trypema_v1_<name> per script) for FUNCTION LOAD.
func Functions() string { return functions }
