package client

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/trypema-go/trypema"
	"github.com/trypema-go/trypema/internal/redistest"
)

// Tests of the generated wrappers of the real scripts.

var absKeys = [2]string{"trypema:v1:abs:{gen}:buckets", "trypema:v1:abs:{gen}:meta"}
var supKeys = [2]string{"trypema:v1:sup:{gen}:buckets", "trypema:v1:sup:{gen}:meta"}

const t0 = 1_700_000_000_000 // an explicit now_ms

func TestWrappersAgainstRedis(t *testing.T) {
	srv := redistest.Start(t)
	s := NewScripts(srv.Pool())
	ctx := context.Background()

	inc := AbsoluteIncArgs{WindowMs: 10_000, BucketMs: 100, Rate: 0.5, N: 3, NowMs: Some[int64](t0)}
	got, err := s.AbsoluteInc(ctx, absKeys, inc)
	if err != nil {
		t.Fatal(err)
	}
	if want := (AbsoluteIncReply{Outcome: "allowed", Limit: 5, Remaining: 2}); got != want {
		t.Errorf("AbsoluteInc = %+v, want %+v", got, want)
	}
	inc.NowMs = Some[int64](t0 + 1000)
	if got, err = s.AbsoluteInc(ctx, absKeys, inc); err != nil || got.Outcome != "rejected" || got.RetryAfterMs != 9000 {
		t.Errorf("second AbsoluteInc = %+v, %v; want rejected with retry_after_ms 9000", got, err)
	}

	snap, err := s.AbsoluteGet(ctx, absKeys, AbsoluteGetArgs{WindowMs: 10_000, NowMs: Some[int64](t0 + 2000)})
	if err != nil {
		t.Fatal(err)
	}
	if want := (AbsoluteGetReply{Exists: 1, Total: 3, Limit: 5, Hard: 5, Rate: 0.5}); snap != want {
		t.Errorf("AbsoluteGet = %+v, want %+v", snap, want)
	}

	// u unset before a set now_ms travels as "": the script draws its own.
	sup := SuppressedIncArgs{WindowMs: 10_000, BucketMs: 100, HardLimitFactor: 1.5, FactorCacheMs: 100, Rate: 1, N: 1, NowMs: Some[int64](t0)}
	if r, err := s.SuppressedInc(ctx, supKeys, sup); err != nil || r.Outcome != "allowed" || r.Admitted != 1 || r.Limit != 10 {
		t.Errorf("SuppressedInc = %+v, %v", r, err)
	}
	if r, err := s.SuppressedFactor(ctx, supKeys, SuppressedFactorArgs{WindowMs: 10_000, FactorCacheMs: 100, NowMs: Some[int64](t0)}); err != nil || r.Factor != 0 {
		t.Errorf("SuppressedFactor = %+v, %v", r, err)
	}

	// Script errors keep their meaning.
	bad := inc
	bad.Rate = 0
	if _, err := s.AbsoluteInc(ctx, [2]string{"trypema:v1:abs:{x}:buckets", "trypema:v1:abs:{x}:meta"}, bad); !errors.Is(err, trypema.ErrInvalidRate) {
		t.Errorf("rate 0: %v", err)
	}
	big := inc
	big.N = 6
	if _, err := s.AbsoluteInc(ctx, [2]string{"trypema:v1:abs:{y}:buckets", "trypema:v1:abs:{y}:meta"}, big); !errors.Is(err, trypema.ErrCountExceedsCapacity) {
		t.Errorf("n > capacity: %v", err)
	}

	del, err := s.Delete(ctx, absKeys, DeleteArgs{WindowMs: 10_000, Usage: "total", NowMs: Some[int64](t0 + 2000)})
	if err != nil || del != (DeleteReply{Existed: 1, Usage: 3}) {
		t.Errorf("Delete = %+v, %v", del, err)
	}
}

// TestPipelinedCommands runs the exported command builders through a redigo
// pipeline, as the hybrid provider does, and decodes with Parse<Name>Reply.
func TestPipelinedCommands(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	if err := NewScripts(srv.Pool()).Load(ctx); err != nil {
		t.Fatal(err)
	}
	c := srv.Dial(t)
	for i := range 3 {
		cmd, args := AbsoluteIncCmd(absKeys, AbsoluteIncArgs{WindowMs: 1000, BucketMs: 10, Rate: 2, N: 1, NowMs: Some(t0 + int64(i))})
		if err := c.Send(cmd, args...); err != nil {
			t.Fatal(err)
		}
	}
	cmd, args := AbsoluteIsAllowedCmd(absKeys, AbsoluteIsAllowedArgs{WindowMs: 1000, NowMs: Some[int64](t0 + 3)})
	if err := c.Send(cmd, args...); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	var outcomes []string
	for range 3 {
		v, err := c.Receive()
		if err != nil {
			t.Fatal(AbsoluteIncScript.WrapError(ctx, err))
		}
		r, err := ParseAbsoluteIncReply(v)
		if err != nil {
			t.Fatal(err)
		}
		outcomes = append(outcomes, r.Outcome)
	}
	if want := []string{"allowed", "allowed", "rejected"}; !slices.Equal(outcomes, want) {
		t.Errorf("outcomes %q, want %q", outcomes, want)
	}
	v, err := c.Receive()
	if err != nil {
		t.Fatal(err)
	}
	if r, err := ParseAbsoluteIsAllowedReply(v); err != nil || r.Outcome != "rejected" {
		t.Errorf("AbsoluteIsAllowed = %+v, %v", r, err)
	}
}

func TestAppendArgsOptionals(t *testing.T) {
	base := SuppressedIncArgs{WindowMs: 10_000, BucketMs: 100, HardLimitFactor: 1.5, FactorCacheMs: 100, Rate: 0.1, N: 2}
	required := []any{int64(10_000), int64(100), "1.5", int64(100), "0.1", int64(2)}
	tests := []struct {
		name   string
		u, now bool
		tail   []any
	}{
		{"none set: both omitted", false, false, nil},
		{"only now_ms: u sent empty", false, true, []any{"", int64(t0)}},
		{"only u: now_ms omitted", true, false, []any{"0.25"}},
		{"both", true, true, []any{"0.25", int64(t0)}},
	}
	for _, tt := range tests {
		a := base
		if tt.u {
			a.U = Some(0.25)
		}
		if tt.now {
			a.NowMs = Some[int64](t0)
		}
		cmd, args := SuppressedIncCmd(supKeys, a)
		want := append([]any{SuppressedIncScript.SHA1(), 2, supKeys[0], supKeys[1]}, append(slices.Clone(required), tt.tail...)...)
		if cmd != "EVALSHA" || !slices.Equal(args, want) {
			t.Errorf("%s: %s %q, want %q", tt.name, cmd, args, want)
		}
		if cap(args) != 4+8 {
			t.Errorf("%s: cap %d: the argument slice was reallocated or oversized", tt.name, cap(args))
		}
	}
}

// TestParseRealReplies: shape errors of a generated decoder are
// ErrUnexpectedReply and name the script.
func TestParseRealReplies(t *testing.T) {
	good := []any{[]byte("allowed"), int64(5), int64(2), int64(0), int64(0)}
	if r, err := ParseAbsoluteIncReply(good); err != nil || r != (AbsoluteIncReply{Outcome: "allowed", Limit: 5, Remaining: 2}) {
		t.Fatalf("good reply: %+v, %v", r, err)
	}
	tests := []struct {
		name  string
		parse func() error
		want  string
	}{
		{"wrong length", func() error { _, err := ParseAbsoluteIncReply(good[:4]); return err },
			"absolute_inc: got an array of 4 elements, want 5"},
		{"string as integer", func() error {
			_, err := ParseAbsoluteIncReply([]any{int64(1), int64(5), int64(2), int64(0), int64(0)})
			return err
		}, "absolute_inc: element 1 (outcome): got integer 1, want a bulk string"},
		{"integer as string", func() error {
			_, err := ParseAbsoluteIncReply([]any{[]byte("allowed"), []byte("5"), int64(2), int64(0), int64(0)})
			return err
		}, `absolute_inc: element 2 (limit): got bulk string "5", want an integer`},
		{"unparsable float", func() error {
			_, err := ParseSetRateLimitReply([]any{int64(1), []byte("fast")})
			return err
		}, `set_rate_limit: element 2 (previous_rate): got bulk string "fast", want a finite float`},
		{"not an array", func() error { _, err := ParseSuppressedFactorReply([]byte("0")); return err },
			`suppressed_factor: got bulk string "0", want an array of 1 elements`},
	}
	for _, tt := range tests {
		err := tt.parse()
		if !errors.Is(err, trypema.ErrUnexpectedReply) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v\nwant ErrUnexpectedReply containing %q", tt.name, err, tt.want)
		}
	}
}

func TestCmdAllocations(t *testing.T) {
	a := AbsoluteIncArgs{WindowMs: 10_000, BucketMs: 100, Rate: 0.5, N: 3, NowMs: Some[int64](t0)}
	allocs := testing.AllocsPerRun(100, func() { _, _ = AbsoluteIncCmd(absKeys, a) })
	// The slice, two boxed key strings, the formatted rate and its box, and
	// window_ms and now_ms boxed (small ints are not); nothing else.
	if allocs > 7 {
		t.Errorf("AbsoluteIncCmd allocates %v times", allocs)
	}
}
