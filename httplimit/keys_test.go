package httplimit

import (
	"errors"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/trypema-go/trypema"
)

func TestKeyByIP(t *testing.T) {
	for _, tc := range []struct{ remote, want string }{
		{"192.0.2.7:4321", "192.0.2.7"},
		{"192.0.2.7", "192.0.2.7"},
		{"[::ffff:192.0.2.7]:80", "192.0.2.7"},
		{"[2001:db8:1:2:3:4:5:6]:443", "2001_db8_1_2__/64"},
		{"[2001:db8:1:2::99]:443", "2001_db8_1_2__/64"},
		{"[fe80::1%eth0]:80", "fe80__/64"},
		{"[::1]:80", "__/64"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tc.remote
		got, err := KeyByIP()(r)
		if err != nil || got != tc.want {
			t.Errorf("%s: key %q, %v; want %q", tc.remote, got, err, tc.want)
		}
		if err == nil {
			if err := trypema.ValidateKey(got); err != nil {
				t.Errorf("%s: %v", tc.remote, err)
			}
		}
	}
	for _, bad := range []string{"", "@", "/tmp/sock", "host:80", "999.1.1.1:1"} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = bad
		if k, err := KeyByIP()(r); err == nil || errors.Is(err, ErrNoKey) {
			t.Errorf("%q: key %q, err %v; want a configuration error", bad, k, err)
		}
	}
}

func TestKeyByIPIgnoresForwardedFor(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "198.51.100.1:1"
	r.Header.Set("X-Forwarded-For", "203.0.113.9")
	if k, _ := KeyByIP()(r); k != "198.51.100.1" {
		t.Errorf("key %q: X-Forwarded-For must not count without KeyByForwardedFor", k)
	}
}

func TestKeyByForwardedFor(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	for _, tc := range []struct {
		peer string
		xff  []string
		want string
	}{
		// An untrusted peer's header is ignored: anyone can send it.
		{"198.51.100.1:1", []string{"203.0.113.9"}, "198.51.100.1"},
		{"10.0.0.2:1", []string{"203.0.113.9"}, "203.0.113.9"},
		// The client made up the left part; the proxies wrote the right.
		{"10.0.0.2:1", []string{"6.6.6.6, 203.0.113.9, 10.0.0.5"}, "203.0.113.9"},
		{"10.0.0.2:1", []string{"6.6.6.6", "203.0.113.9, 10.0.0.5"}, "203.0.113.9"},
		{"10.0.0.2:1", []string{"[2001:db8::1]:5000"}, "2001_db8__/64"},
		{"10.0.0.2:1", nil, "10.0.0.2"},
		{"10.0.0.2:1", []string{"10.0.0.9, 10.0.0.5"}, "10.0.0.9"},
		{"[fd00::1]:1", []string{"192.0.2.1"}, "192.0.2.1"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tc.peer
		for _, v := range tc.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		got, err := KeyByForwardedFor(proxies...)(r)
		if err != nil || got != tc.want {
			t.Errorf("%s %q: key %q, %v; want %q", tc.peer, tc.xff, got, err, tc.want)
		}
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "10.0.0.2:1"
	r.Header.Set("X-Forwarded-For", "1.2.3.4, not-an-ip")
	if _, err := KeyByForwardedFor(proxies...)(r); err == nil {
		t.Error("a garbage entry written by a trusted proxy must be an error")
	}
	r.Header.Set("X-Forwarded-For", "203.0.113.9")
	if k, _ := KeyByForwardedFor()(r); k != "10.0.0.2" {
		t.Errorf("without trusted proxies: key %q, want the peer", k)
	}
}

func TestKeyByHeader(t *testing.T) {
	f := KeyByHeader("x-api-key")
	r := httptest.NewRequest("GET", "/", nil)
	if _, err := f(r); !errors.Is(err, ErrNoKey) {
		t.Errorf("missing header: %v, want ErrNoKey", err)
	}
	r.Header.Set("X-Api-Key", "abc")
	if k, _ := f(r); k != "abc" {
		t.Errorf("key %q", k)
	}
	r.Header.Set("X-Api-Key", "a:b")
	k1, _ := f(r)
	r.Header.Set("X-Api-Key", "a:c")
	k2, _ := f(r)
	if !strings.HasPrefix(k1, "sha256_") || k1 == k2 || trypema.ValidateKey(k1) != nil {
		t.Errorf("hashed keys %q %q", k1, k2)
	}
}

func TestStructuredFields(t *testing.T) {
	for v, want := range map[float64]string{0: "0.0", 1: "1.0", 0.9: "0.9", 0.35: "0.35", 0.12345: "0.123", 0.9996: "1.0", -1: "0.0", 2: "1.0"} {
		if got := sfDecimal(v); got != want {
			t.Errorf("sfDecimal(%v) = %q, want %q", v, got, want)
		}
	}
	if got := sfString(`a "b" \c`); got != `"a \"b\" \\c"` {
		t.Errorf("sfString = %s", got)
	}
	if got := sfInt(1<<53 - 1); got != 999_999_999_999_999 {
		t.Errorf("sfInt = %d", got)
	}
}
