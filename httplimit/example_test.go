package httplimit_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/trypema-go/trypema"
	"github.com/trypema-go/trypema/httplimit"
	"github.com/trypema-go/trypema/localcache"
)

// Two requests per 10 s per API key; the third is refused with 429, the
// quota header fields and Retry-After.
func Example() {
	lim, err := localcache.NewAbsolute(trypema.WithWindow(10 * time.Second))
	if err != nil {
		panic(err)
	}
	defer lim.Close()
	mw, err := httplimit.New(lim, trypema.MustPerMinute(12), // 2 per 10 s window
		httplimit.WithWindow(10*time.Second),
		httplimit.WithKey(httplimit.KeyByHeader("X-Api-Key")))
	if err != nil {
		panic(err)
	}
	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "hello") })
	srv := httptest.NewServer(mw.Handler(hello))
	defer srv.Close()

	for range 3 {
		req, _ := http.NewRequest("GET", srv.URL, nil)
		req.Header.Set("X-Api-Key", "team-a")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		resp.Body.Close()
		fmt.Println(resp.StatusCode, resp.Header.Get("RateLimit-Policy"), resp.Header.Get("RateLimit"))
		if s := resp.Header.Get("Retry-After"); s != "" {
			fmt.Println("Retry-After:", s)
		}
	}
	// Output:
	// 200 "default";q=2;w=10 "default";r=1;t=10
	// 200 "default";q=2;w=10 "default";r=0;t=10
	// 429 "default";q=2;w=10 "default";r=0;t=10
	// Retry-After: 10
}
