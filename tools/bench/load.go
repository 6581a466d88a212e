package bench

import (
	"context"
	"errors"
	"math"
	"slices"
	"sync"
	"time"
)

// phaseSpec is one load phase: concurrency workers, each calling its own
// work function in a loop until the duration is over.
type phaseSpec struct {
	name        string
	concurrency int
	duration    time.Duration
	// newWorker returns worker i's work function. Workers keep their own
	// state (a refresh token, a username counter) in the closure, so nothing
	// is shared between them.
	newWorker func(i int) workFunc
}

// workFunc makes one request and checks its response.
type workFunc func(ctx context.Context) error

// PhaseResult is what one phase measured. Latencies are of successful
// requests; requests/s counts successful requests over the phase's wall time.
type PhaseResult struct {
	Name         string            `json:"name"`
	Concurrency  int               `json:"concurrency"`
	ElapsedS     float64           `json:"elapsed_s"`
	Requests     int               `json:"requests"`
	Errors       int               `json:"errors"`
	ErrorKinds   map[string]int    `json:"error_kinds,omitempty"`
	ErrorSamples map[string]string `json:"error_samples,omitempty"`
	RPS          float64           `json:"requests_per_s"`
	LatencyMS    Latency           `json:"latency_ms"`
	Usage        *Usage            `json:"usage,omitempty"`
}

// Latency holds percentiles in milliseconds.
type Latency struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// tally is one worker's record; merged only after every worker has stopped.
type tally struct {
	latencies []time.Duration
	errs      map[string]int
	samples   map[string]string
}

// failurePause keeps a worker whose requests fail instantly (connection
// refused) from spinning on the CPU the server needs.
const failurePause = 10 * time.Millisecond

// runPhase runs p and summarizes it. A request in flight at the deadline is
// allowed to finish (it is bounded by its own timeout) so that slow requests
// are not silently dropped from the percentiles.
func runPhase(ctx context.Context, p phaseSpec) PhaseResult {
	start := time.Now()
	deadline := start.Add(p.duration)
	tallies := make([]tally, p.concurrency)
	var wg sync.WaitGroup
	for i := range p.concurrency {
		work := p.newWorker(i)
		wg.Go(func() { tallies[i] = drive(ctx, deadline, work) })
	}
	wg.Wait()
	return summarize(p.name, p.concurrency, time.Since(start), tallies)
}

func drive(ctx context.Context, deadline time.Time, work workFunc) tally {
	t := tally{latencies: make([]time.Duration, 0, 1024)}
	for ctx.Err() == nil && time.Now().Before(deadline) {
		t0 := time.Now()
		err := work(ctx)
		if err == nil {
			t.latencies = append(t.latencies, time.Since(t0))
			continue
		}
		t.addError(err)
		select {
		case <-ctx.Done():
		case <-time.After(failurePause):
		}
	}
	return t
}

func (t *tally) addError(err error) {
	if t.errs == nil {
		t.errs, t.samples = map[string]int{}, map[string]string{}
	}
	kind := "other"
	var oe *opError
	if errors.As(err, &oe) {
		kind = oe.kind
	}
	t.errs[kind]++
	if _, ok := t.samples[kind]; !ok {
		t.samples[kind] = truncate(err.Error(), 200)
	}
}

func summarize(name string, concurrency int, elapsed time.Duration, tallies []tally) PhaseResult {
	r := PhaseResult{Name: name, Concurrency: concurrency, ElapsedS: elapsed.Seconds()}
	var all []time.Duration
	for _, t := range tallies {
		all = append(all, t.latencies...)
		for kind, n := range t.errs {
			if r.ErrorKinds == nil {
				r.ErrorKinds, r.ErrorSamples = map[string]int{}, map[string]string{}
			}
			r.ErrorKinds[kind] += n
			r.Errors += n
			if _, ok := r.ErrorSamples[kind]; !ok {
				r.ErrorSamples[kind] = t.samples[kind]
			}
		}
	}
	r.Requests = len(all)
	r.RPS = rate(r.Requests, elapsed)
	r.LatencyMS = percentiles(all)
	return r
}

// percentiles sorts d in place and returns nearest-rank percentiles.
func percentiles(d []time.Duration) Latency {
	if len(d) == 0 {
		return Latency{}
	}
	slices.Sort(d)
	at := func(q float64) float64 {
		i := int(math.Ceil(q*float64(len(d)))) - 1
		return ms(d[max(i, 0)])
	}
	return Latency{P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: ms(d[len(d)-1])}
}

// rate is n per second over d; 0 for no time.
func rate(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
