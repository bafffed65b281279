package lua

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/gomodule/redigo/redis"
	"github.com/google/go-cmp/cmp"

	"github.com/trypema-go/trypema/internal/redistest"
)

func TestEmbeddedScripts(t *testing.T) {
	want := []string{
		"absolute_get", "absolute_inc", "absolute_is_allowed", "absolute_sync", "delete", "set_if",
		"set_rate_limit", "suppressed_factor", "suppressed_get", "suppressed_inc", "suppressed_sync",
	}
	if got := Names(); !slices.Equal(got, want) {
		t.Errorf("Names() = %q, want %q", got, want)
	}
	for _, name := range Names() {
		src, ok := Script(name)
		if !ok || !regexp.MustCompile(`(?m)^--! script +`+name+`$`).MatchString(src) {
			t.Errorf("Script(%q) does not hold the script's header", name)
		}
	}
	if _, ok := Script("lib"); ok {
		t.Error(`Script("lib") exists; lib.lua is not a script`)
	}
	if _, ok := Script("../functions"); ok {
		t.Error(`Script("../functions") exists`)
	}
	names := Names()
	names[0] = "changed"
	if Names()[0] == "changed" {
		t.Error("Names returns the package's own slice")
	}
}

// TestFunctionsLoad loads the library into a real Redis: FUNCTION LIST must
// show one function per script, flagged no-writes exactly when the script's
// header says readonly true.
func TestFunctionsLoad(t *testing.T) {
	if !strings.HasPrefix(Functions(), "#!lua name=trypema_v1\n") {
		t.Fatalf("Functions() starts %q", Functions()[:min(40, len(Functions()))])
	}
	srv := redistest.Start(t)
	if got, _ := redis.String(srv.Do(t, "FUNCTION", "LOAD", "REPLACE", Functions()), nil); got != "trypema_v1" {
		t.Fatalf("FUNCTION LOAD = %q", got)
	}
	libs, err := redis.Values(srv.Do(t, "FUNCTION", "LIST", "LIBRARYNAME", "trypema_v1"), nil)
	if err != nil || len(libs) != 1 {
		t.Fatalf("FUNCTION LIST: %d libraries, %v", len(libs), err)
	}
	got := map[string][]string{}
	for _, f := range field(t, libs[0], "functions").([]any) {
		name, _ := redis.String(field(t, f, "name"), nil)
		flags, _ := redis.Strings(field(t, f, "flags"), nil)
		got[name] = flags
	}
	want := map[string][]string{}
	for _, name := range Names() {
		src, _ := Script(name)
		want["trypema_v1_"+name] = []string{}
		if regexp.MustCompile(`(?m)^--! readonly +true$`).MatchString(src) {
			want["trypema_v1_"+name] = []string{"no-writes"}
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("functions and flags (-want +got):\n%s", diff)
	}
}

// field returns the value after name in a flat name/value reply array.
func field(t *testing.T, v any, name string) any {
	t.Helper()
	kv, err := redis.Values(v, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if k, _ := redis.String(kv[i], nil); k == name {
			return kv[i+1]
		}
	}
	t.Fatalf("no field %q in %v", name, v)
	return nil
}
