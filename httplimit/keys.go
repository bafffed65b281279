package httplimit

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/netip"
	"strings"

	"github.com/trypema-go/trypema"
)

// KeyFunc returns the key whose quota a request spends. It must return a
// valid key (trypema.ValidateKey) or an error; an error wrapping ErrNoKey
// is answered with 400, any other with 500.
type KeyFunc func(r *http.Request) (string, error)

// KeyByIP keys requests by the peer address of their connection
// (Request.RemoteAddr), never by a header. An IPv4 peer is its address
// ("192.0.2.7"); an IPv6 peer is its /64 network with ':' written as '_'
// ("2001_db8_1_2__/64"), because keys have no ':' and one IPv6 host
// usually holds a whole /64. IPv4-mapped IPv6 addresses count as IPv4.
func KeyByIP() KeyFunc {
	return func(r *http.Request) (string, error) {
		a, err := peer(r)
		if err != nil {
			return "", err
		}
		return ipKey(a), nil
	}
}

// KeyByForwardedFor keys requests by the client address that trusted
// proxies report in X-Forwarded-For, and otherwise like KeyByIP. The header
// is believed only when the peer is in one of the trusted prefixes, and
// then only as far as the proxies themselves wrote it: the addresses are
// read from the right, trusted ones are skipped, and the first untrusted
// one is the client. Without trusted prefixes it is KeyByIP.
func KeyByForwardedFor(trusted ...netip.Prefix) KeyFunc {
	trusted = append([]netip.Prefix(nil), trusted...)
	isTrusted := func(a netip.Addr) bool {
		for _, p := range trusted {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	return func(r *http.Request) (string, error) {
		a, err := peer(r)
		if err != nil {
			return "", err
		}
		if !isTrusted(a) {
			return ipKey(a), nil
		}
		hops := r.Header.Values("X-Forwarded-For")
		for i := len(hops) - 1; i >= 0; i-- {
			parts := strings.Split(hops[i], ",")
			for j := len(parts) - 1; j >= 0; j-- {
				s := strings.TrimSpace(parts[j])
				if s == "" {
					continue
				}
				h, err := parseAddr(s)
				if err != nil {
					// Written by a trusted proxy, so not the client's
					// doing; the key function is misconfigured.
					return "", fmt.Errorf("httplimit: X-Forwarded-For entry %q from trusted proxy %v is not an IP address", clip(s), a)
				}
				if !isTrusted(h) {
					return ipKey(h), nil
				}
				a = h
			}
		}
		// Every hop is trusted: the leftmost is as close to the client as
		// we can tell.
		return ipKey(a), nil
	}
}

// KeyByHeader keys requests by the value of a request header, such as an
// API key. A missing or empty header is ErrNoKey (400). A value that is
// not a valid key (longer than 255 bytes, or containing ':') is replaced by
// "sha256_" and the hex SHA-256 of the value, so every value has a key of
// its own and none is refused.
func KeyByHeader(name string) KeyFunc {
	name = http.CanonicalHeaderKey(name)
	return func(r *http.Request) (string, error) {
		v := r.Header.Get(name)
		if v == "" {
			return "", fmt.Errorf("%w: header %s is missing", ErrNoKey, name)
		}
		if trypema.ValidateKey(v) == nil {
			return v, nil
		}
		sum := sha256.Sum256([]byte(v))
		return "sha256_" + hex.EncodeToString(sum[:]), nil
	}
}

// peer parses Request.RemoteAddr: "host:port", or a bare address.
func peer(r *http.Request) (netip.Addr, error) {
	a, err := parseAddr(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("httplimit: KeyByIP: RemoteAddr %q is not an IP address (a Unix socket listener?); use another KeyFunc", clip(r.RemoteAddr))
	}
	return a, nil
}

// parseAddr accepts "ip", "ip:port" and "[ipv6]:port", dropping any zone.
func parseAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		ap, perr := netip.ParseAddrPort(s)
		if perr != nil {
			return netip.Addr{}, err
		}
		a = ap.Addr()
	}
	return a.Unmap().WithZone(""), nil
}

func ipKey(a netip.Addr) string {
	if a.Is4() {
		return a.String()
	}
	p := netip.PrefixFrom(a, 64).Masked()
	return strings.ReplaceAll(p.String(), ":", "_")
}

// clip shortens attacker-controlled text for messages.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
