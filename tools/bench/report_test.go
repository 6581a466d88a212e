package bench

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func TestPercentiles(t *testing.T) {
	msList := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = 100 - i // 100 … 1, unsorted on purpose
	}
	tests := []struct {
		name string
		in   []time.Duration
		want Latency
	}{
		{"none", nil, Latency{}},
		{"one", msList(7), Latency{P50: 7, P90: 7, P99: 7, Max: 7}},
		// Nearest rank: the ceil(q·n)-th smallest.
		{"two", msList(2, 1), Latency{P50: 1, P90: 2, P99: 2, Max: 2}},
		{"ten", msList(10, 9, 8, 7, 6, 5, 4, 3, 2, 1), Latency{P50: 5, P90: 9, P99: 10, Max: 10}},
		{"hundred", msList(hundred...), Latency{P50: 50, P90: 90, P99: 99, Max: 100}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentiles(tt.in); got != tt.want {
				t.Errorf("percentiles: got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestRate(t *testing.T) {
	tests := []struct {
		n    int
		d    time.Duration
		want float64
	}{
		{0, time.Second, 0},
		{100, time.Second, 100},
		{150, 20 * time.Second, 7.5},
		{10, 500 * time.Millisecond, 20},
		{10, 0, 0},
		{10, -time.Second, 0},
	}
	for _, tt := range tests {
		if got := rate(tt.n, tt.d); got != tt.want {
			t.Errorf("rate(%d, %s): got %g, want %g", tt.n, tt.d, got, tt.want)
		}
	}
}

func TestSummarize(t *testing.T) {
	var a, b tally
	a.latencies = []time.Duration{3 * time.Millisecond, time.Millisecond}
	b.latencies = []time.Duration{2 * time.Millisecond, 4 * time.Millisecond}
	a.addError(&opError{kind: "http 503", err: errors.New("first")})
	b.addError(&opError{kind: "http 503", err: errors.New("second")})
	b.addError(&opError{kind: "timeout"})
	b.addError(errors.New("not an opError"))

	got := summarize("me", 2, 2*time.Second, []tally{a, b})
	if got.Name != "me" || got.Concurrency != 2 || got.ElapsedS != 2 {
		t.Errorf("header: got %q, %d, %g; want me, 2, 2", got.Name, got.Concurrency, got.ElapsedS)
	}
	if got, want := got.Requests, 4; got != want {
		t.Errorf("requests: got %d, want %d (errors are not requests served)", got, want)
	}
	if got, want := got.RPS, 2.0; got != want {
		t.Errorf("req/s: got %g, want %g", got, want)
	}
	if want := (Latency{P50: 2, P90: 4, P99: 4, Max: 4}); got.LatencyMS != want {
		t.Errorf("latency: got %+v, want %+v", got.LatencyMS, want)
	}
	if got, want := got.Errors, 4; got != want {
		t.Errorf("errors: got %d, want %d", got, want)
	}
	for kind, want := range map[string]int{"http 503": 2, "timeout": 1, "other": 1} {
		if got := got.ErrorKinds[kind]; got != want {
			t.Errorf("errors of kind %q: got %d, want %d", kind, got, want)
		}
	}
	if got, want := got.ErrorSamples["http 503"], "http 503: first"; got != want {
		t.Errorf("sample: got %q, want %q (the first worker's)", got, want)
	}
}

// report builds a report of phases with the given requests/s and p99.
func report(limits Limits, phases ...PhaseResult) *Report {
	return reportWith(limits, nil, phases...)
}

// reportWith builds a report of phases and, after them, of me per algorithm.
func reportWith(limits Limits, algs []AlgorithmResult, phases ...PhaseResult) *Report {
	r := &Report{Limits: limits, Phases: phases, Algorithms: algs, Server: ServerUsage{PeakRSSBytes: 64 << 20}}
	r.Ratios = r.ratios()
	return r
}

// algorithm is me against a server signing with alg, at rps.
func algorithm(alg string, rps float64, errs int) AlgorithmResult {
	return AlgorithmResult{Algorithm: alg, Me: phase(algorithmPhase(alg), rps, 5, errs)}
}

func phase(name string, rps, p99 float64, errs int) PhaseResult {
	return PhaseResult{Name: name, RPS: rps, Errors: errs, LatencyMS: Latency{P99: p99}}
}

func TestRatios(t *testing.T) {
	limits := Limits{BcryptPerSecond: 8, PointRead: PhaseResult{RPS: 2000}}
	withCPU := func(p PhaseResult, cpuPerRequestMS float64) PhaseResult {
		p.Usage = &Usage{ServerCPUPerRequestMS: cpuPerRequestMS}
		return p
	}
	algs := []AlgorithmResult{algorithm("HS256", 10000, 0), algorithm("ES256", 9500, 0), algorithm("EdDSA", 9000, 0),
		algorithm("RS256", 8000, 1)}
	full := reportWith(limits, algs,
		withCPU(phase(phaseMe, 10000, 5, 0), 0.16),
		withCPU(phase(phaseMeFloor, 25000, 2, 0), 0.06),
		phase(phaseLogin, 7.6, 1000, 0),
		phase(phaseRegister, 6, 1000, 0),
		phase(phaseMeAlone, 7000, 4, 1),
		phase(phaseMeFlood, 5000, 10, 2),
	)
	tests := []struct {
		name  string
		value float64
		met   bool
	}{
		{"login / bcrypt limit", 0.95, true},
		{"register / bcrypt limit", 0.75, false},
		{"me / db point-read ceiling", 5, true},
		{"me / bare net/http floor", 0.4, false},
		{"me / floor, by server CPU per request", 0.375, false},
		{"me ES256 / HS256", 0.95, true},
		{"me EdDSA / HS256", 0.9, true},
		{"me RS256 / HS256", 0.8, false},
		{"me p99 during flood / alone", 2.5, false},
		{"me errors (all me phases)", 4, false},
		{"server peak RSS", 64, true},
	}
	if got, want := len(full.Ratios), len(tests); got != want {
		t.Fatalf("ratios: got %d (%+v), want %d", got, full.Ratios, want)
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := full.Ratios[i]
			if got.Name != tt.name {
				t.Fatalf("name: got %q, want %q", got.Name, tt.name)
			}
			if math.Abs(got.Value-tt.value) > 1e-9 {
				t.Errorf("value: got %g, want %g", got.Value, tt.value)
			}
			if got.Met != tt.met {
				t.Errorf("met: got %v, want %v", got.Met, tt.met)
			}
		})
	}

	t.Run("a phase that did not run leaves its ratios out", func(t *testing.T) {
		r := report(Limits{}, phase(phaseMe, 10000, 5, 0))
		var names []string
		for _, x := range r.Ratios {
			names = append(names, x.Name)
		}
		got, want := strings.Join(names, ", "), "me errors (all me phases), server peak RSS"
		if got != want {
			t.Errorf("ratios: got %s, want %s", got, want)
		}
	})
	t.Run("no HS256 row, no ratio for the algorithms", func(t *testing.T) {
		r := reportWith(Limits{}, algs[1:], phase(phaseMe, 10000, 5, 0))
		for _, x := range r.Ratios {
			if strings.HasSuffix(x.Name, "/ HS256") {
				t.Errorf("got %+v without an HS256 me phase", x)
			}
		}
	})
	t.Run("the floor's ratio at the target", func(t *testing.T) {
		r := report(Limits{}, phase(phaseMe, 5000, 5, 0), phase(phaseMeFloor, 10000, 5, 0))
		if got := r.Ratios[0]; got.Name != "me / bare net/http floor" || got.Value != 0.5 || !got.Met {
			t.Errorf("got %+v, want 0.5 met", got)
		}
	})
}

func TestSoakChecks(t *testing.T) {
	interval := func(loopsPerS float64, rssMB int64, goroutines int) SoakInterval {
		return SoakInterval{LoopsPerS: loopsPerS, RSSBytes: rssMB << 20, Goroutines: goroutines}
	}
	tests := []struct {
		name      string
		intervals []SoakInterval
		want      []bool // loops/s, RSS
	}{
		{"flat", []SoakInterval{interval(10, 60, 40), interval(9, 80, 50), interval(9.5, 62, 41)}, []bool{true, true}},
		{"rate down 10 %", []SoakInterval{interval(10, 60, 40), interval(9, 60, 40)}, []bool{true, true}},
		{"rate down 15 %", []SoakInterval{interval(10, 60, 40), interval(8.5, 60, 40)}, []bool{false, true}},
		{"rate up 20 %", []SoakInterval{interval(10, 60, 40), interval(12, 60, 40)}, []bool{false, true}},
		{"memory grows", []SoakInterval{interval(10, 60, 40), interval(10, 70, 40)}, []bool{true, false}},
		{"memory grows during the warm-up only", []SoakInterval{interval(10, 50, 40), interval(10, 58, 40), interval(10, 60, 40),
			interval(10, 61, 40), interval(10, 62, 40), interval(10, 63, 40)}, []bool{true, true}},
		{"memory grows after the warm-up", []SoakInterval{interval(10, 60, 40), interval(10, 60, 40), interval(10, 60, 40),
			interval(10, 62, 40), interval(10, 64, 40), interval(10, 67, 40)}, []bool{true, false}},
		{"goroutines are not judged", []SoakInterval{interval(10, 60, 40), interval(10, 60, 80)}, []bool{true, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := soakChecks(tt.intervals)
			if len(got) != len(tt.want) {
				t.Fatalf("checks: got %d, want %d", len(got), len(tt.want))
			}
			for i, want := range tt.want {
				if got[i].Met != want {
					t.Errorf("%s (%s): got met %v, want %v", got[i].Name, got[i].Display, got[i].Met, want)
				}
			}
		})
	}
	t.Run("one interval judges nothing", func(t *testing.T) {
		if got := soakChecks([]SoakInterval{interval(10, 60, 40)}); got != nil {
			t.Errorf("got %+v, want none", got)
		}
	})
	t.Run("no loops in the first interval", func(t *testing.T) {
		got := soakChecks([]SoakInterval{interval(0, 60, 40), interval(10, 60, 40)})
		if len(got) != 2 || got[0].Met || got[0].Display != "no loops" {
			t.Errorf("got %+v, want the loops check not met", got)
		}
	})
}

func TestSoakSummary(t *testing.T) {
	s := &soaker{interval: 10 * time.Second, buckets: []soakBucket{
		{loops: 50, requests: 3250, me: []time.Duration{time.Millisecond, 3 * time.Millisecond},
			refresh: []time.Duration{20 * time.Millisecond}, cpu: 15 * time.Second, rss: 60 << 20, goroutines: 40},
		{loops: 45, requests: 2925, errors: 1, cpu: 30 * time.Second, rss: 61 << 20, goroutines: 41},
	}}
	s.tally.addError(&opError{kind: "timeout"})
	var got SoakResult
	s.summarize(&got)
	want := []SoakInterval{
		{StartS: 0, EndS: 10, Loops: 50, LoopsPerS: 5, Requests: 3250, MeP99MS: 3, RefreshP50MS: 20,
			ServerCores: 1.5, RSSBytes: 60 << 20, Goroutines: 40},
		{StartS: 10, EndS: 20, Loops: 45, LoopsPerS: 4.5, Requests: 2925, Errors: 1,
			ServerCores: 1.5, RSSBytes: 61 << 20, Goroutines: 41},
	}
	if len(got.Intervals) != len(want) {
		t.Fatalf("intervals: got %d, want %d", len(got.Intervals), len(want))
	}
	for i := range want {
		if got.Intervals[i] != want[i] {
			t.Errorf("interval %d: got %+v, want %+v", i, got.Intervals[i], want[i])
		}
	}
	if got.Loops != 95 || got.Errors != 1 || got.ErrorKinds["timeout"] != 1 {
		t.Errorf("totals: got %d loops, %d errors (%v); want 95, 1 (timeout)", got.Loops, got.Errors, got.ErrorKinds)
	}
}

func TestParseGoroutines(t *testing.T) {
	tests := []struct {
		line    string
		want    int
		wantErr bool
	}{
		{"goroutine profile: total 42\n", 42, false},
		{"goroutine profile: total 7", 7, false},
		{"heap profile: 1: 2 [3: 4] @ heap/1048576\n", 0, true},
		{"goroutine profile: total many\n", 0, true},
	}
	for _, tt := range tests {
		got, err := parseGoroutines(tt.line)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parseGoroutines(%q): got %d, %v; want %d, error %v", tt.line, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestFormatting(t *testing.T) {
	tests := []struct {
		got, want string
	}{
		{duration(0), "-"},
		{duration(0.1234), "123µs"},
		{duration(1), "1.00ms"},
		{duration(9.999), "10.00ms"},
		{duration(12.34), "12.3ms"},
		{duration(1234), "1.23s"},
		{megabytes(64 << 20), "64.0 MB"},
		{megabytes(1 << 19), "0.5 MB"},
		{fileName("me (alone)"), "me-alone"},
		{fileName("mixed: login flood"), "mixed-login-flood"},
		{truncate("abcdef", 3), "abc…"},
		{truncate("abc", 3), "abc"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

func TestPrintMentionsEveryPhaseAndCheck(t *testing.T) {
	r := reportWith(Limits{BcryptPerSecond: 8, PointRead: PhaseResult{RPS: 2000}},
		[]AlgorithmResult{algorithm("HS256", 10000, 0), algorithm("ES256", 9500, 0), algorithm("RS256", 8000, 2)},
		phase(phaseMe, 10000, 5, 0), phase(phaseMeFloor, 25000, 2, 0))
	r.Algorithms[2].Me.ErrorKinds = map[string]int{"graphql UNAUTHENTICATED": 2}
	r.Algorithms[2].Me.ErrorSamples = map[string]string{"graphql UNAUTHENTICATED": "graphql UNAUTHENTICATED: not authenticated"}
	r.Soak = &SoakResult{DurationS: 40, IntervalS: 20, Users: soakUsers,
		Intervals: []SoakInterval{{EndS: 20, LoopsPerS: 5}, {StartS: 20, EndS: 40, LoopsPerS: 4}}}
	r.Soak.Checks = soakChecks(r.Soak.Intervals)
	var buf bytes.Buffer
	r.print(&buf)
	out := buf.String()
	for _, want := range []string{"me (floor)", "me / bare net/http floor", "NOT met", "soak: 40s", "20–40s",
		"loops/s, last / first interval", "FAIL", "\nalgorithms: me at", "\nme HS256 ", "\nme ES256 ", "\nme RS256 ",
		"me ES256 / HS256", "me RS256 / HS256", "2 × graphql UNAUTHENTICATED"} {
		if !strings.Contains(out, want) {
			t.Errorf("the table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "Apollo") {
		t.Errorf("the table still compares with a figure not measured in the run:\n%s", out)
	}
}
