package main

import (
	"bytes"
	"fmt"
	"go/format"
	"strings"
	"text/template"
)

// goTypes maps header types to the Go types of Args and Reply fields.
var goTypes = map[string]string{"int": "int64", "float": "float64", "string": "string"}

// renderGo writes client/scripts_gen.go. The script sources are not copied:
// the Script values take them from package lua, which embeds the dist files.
func renderGo(scripts []*script) ([]byte, error) {
	var buf bytes.Buffer
	if err := goTemplate.Execute(&buf, scripts); err != nil {
		return nil, err
	}
	src, err := format.Source(buf.Bytes())
	if err != nil {
		return nil, fmt.Errorf("generated Go does not parse: %w\n%s", err, buf.Bytes())
	}
	return src, nil
}

// goComment turns free text into a Go line comment body.
func goComment(s string) string { return strings.ReplaceAll(s, "\n", " ") }

// appendArg is the expression appending one required argument to dst.
func appendArg(a arg) string {
	v := "a." + camel(a.Name)
	switch a.Type {
	case "float":
		return "strconv.FormatFloat(" + v + ", 'g', -1, 64)"
	default: // int64 is formatted by redigo; string as is
		return v
	}
}

var goTemplate = template.Must(template.New("go").Funcs(template.FuncMap{
	"camel":     camel,
	"goType":    func(t string) string { return goTypes[t] },
	"comment":   goComment,
	"appendArg": appendArg,
	"optArgs": func(args []arg) []arg {
		for i, a := range args {
			if a.Optional {
				return args[i:]
			}
		}
		return nil
	},
	"reqArgs": func(args []arg) []arg {
		for i, a := range args {
			if a.Optional {
				return args[:i]
			}
		}
		return args
	},
	"inc":       func(i int) int { return i + 1 },
	"generated": func() string { return generatedLine },
	"readonly": func(s *script) string {
		if s.ReadOnly {
			return "read-only"
		}
		return "writes"
	},
	"keyNames": func(s *script) string {
		names := make([]string, len(s.Keys))
		for i, k := range s.Keys {
			names[i] = k.Name
		}
		return strings.Join(names, ", ")
	},
	"usesStrconv": func(scripts []*script) bool {
		for _, s := range scripts {
			for _, a := range s.Args {
				if a.Type == "float" {
					return true
				}
			}
		}
		return false
	},
}).Parse(`// {{generated}}

package client

import (
	"context"
{{- if usesStrconv .}}
	"strconv"
{{- end}}
)

// The scripts of lua/v1, in name order. Their sources come from package lua.
var (
{{- range .}}
	// {{camel .Name}}Script is {{.Name}}: {{comment .Summary}}
	{{camel .Name}}Script = embeddedScript("{{.Name}}", {{.ReadOnly}}, {{len .Keys}})
{{- end}}
)

// scriptList holds every script, for Load and AllScripts.
var scriptList = []*Script{
{{- range .}}
	{{camel .Name}}Script,
{{- end}}
}
{{range .}}{{$s := .}}{{$n := camel .Name}}
// {{$n}}Args are the arguments (ARGV) of {{.Name}}, in order.
type {{$n}}Args struct {
{{- range $i, $a := .Args}}
	// {{camel .Name}} is ARGV[{{inc $i}}] {{.Name}} ({{.Type}}, {{.Unit}}{{if .Optional}}, optional{{end}}): {{comment .Desc}}
	{{camel .Name}} {{if .Optional}}Opt[{{goType .Type}}]{{else}}{{goType .Type}}{{end}}
{{- end}}
}

// {{$n}}Reply is the reply of {{.Name}}.
type {{$n}}Reply struct {
{{- range $i, $r := .Replies}}
	// {{camel .Name}} is element {{inc $i}}, {{.Name}} ({{.Type}}): {{comment .Desc}}
	{{camel .Name}} {{goType .Type}}
{{- end}}
}

// appendArgs appends a's ARGV to dst: unset optional arguments are sent as
// "" before a set one and omitted at the end.
func (a {{$n}}Args) appendArgs(dst []any) []any {
{{- with reqArgs .Args}}
	dst = append(dst{{range .}}, {{appendArg .}}{{end}})
{{- end}}
{{- with optArgs .Args}}
	last := 0 // optional arguments to send: up to the last one set
{{- range $i, $a := .}}
	if a.{{camel .Name}}.Set {
		last = {{inc $i}}
	}
{{- end}}
{{- range $i, $a := .}}
	if last >= {{inc $i}} {
		dst = {{if eq .Type "float"}}appendOptFloat{{else if eq .Type "int"}}appendOptInt{{else}}appendOptString{{end}}(dst, a.{{camel .Name}})
	}
{{- end}}
{{- end}}
	return dst
}

// {{$n}}Cmd returns the EVALSHA command that runs {{.Name}}, for pipelines;
// decode its reply with Parse{{$n}}Reply. Keys: {{keyNames .}}.
func {{$n}}Cmd(keys [{{len .Keys}}]string, args {{$n}}Args) (cmd string, cmdArgs []any) {
	return "EVALSHA", args.appendArgs({{$n}}Script.evalArgs(keys[:], {{len .Args}}))
}

// Parse{{$n}}Reply decodes a reply of {{.Name}}, checking its shape. An error
// reply (a redis.Error value) is returned as the error it maps to.
func Parse{{$n}}Reply(v any) ({{$n}}Reply, error) {
	d, err := newReplyDecoder({{$n}}Script, v, {{len .Replies}})
	if err != nil {
		return {{$n}}Reply{}, err
	}
	r := {{$n}}Reply{
{{- range $i, $r := .Replies}}
		{{camel .Name}}: d.{{.Type}}At({{$i}}, "{{.Name}}"),
{{- end}}
	}
	return r, d.err
}

// {{$n}} runs {{.Name}} ({{readonly .}}): {{comment .Summary}}
// Keys: {{keyNames .}}.
func (s *Scripts) {{$n}}(ctx context.Context, keys [{{len .Keys}}]string, args {{$n}}Args) ({{$n}}Reply, error) {
	_, cmdArgs := {{$n}}Cmd(keys, args)
	v, err := s.do(ctx, {{$n}}Script, cmdArgs)
	if err != nil {
		return {{$n}}Reply{}, err
	}
	return Parse{{$n}}Reply(v)
}
{{end}}`))
