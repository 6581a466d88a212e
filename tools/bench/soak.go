package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// The soak phase: soakUsers users each loop login → mePerLoop × me →
// refreshesPerLoop × refreshToken → logout against a server whose database
// holds many sessions, for a long time. Does the rate of completed loops hold,
// and do memory and goroutines stay flat?
const (
	soakUsers        = 16
	mePerLoop        = 60
	refreshesPerLoop = 3
)

// SoakResult is what the soak phase measured, per interval.
type SoakResult struct {
	DurationS float64 `json:"duration_s"`
	IntervalS float64 `json:"interval_s"`
	Users     int     `json:"users"`
	// SessionsAtStart were in the database when the server started (seeded
	// up to the run's -soak-sessions); SessionsAtEnd when it stopped.
	SessionsAtStart int64             `json:"sessions_at_start"`
	SessionsAtEnd   int64             `json:"sessions_at_end"`
	Intervals       []SoakInterval    `json:"intervals"`
	Loops           int               `json:"loops"`
	Busy            int               `json:"busy"` // logins turned away (RATE_LIMITED busy) and retried
	Errors          int               `json:"errors"`
	ErrorKinds      map[string]int    `json:"error_kinds,omitempty"`
	ErrorSamples    map[string]string `json:"error_samples,omitempty"`
	Checks          []Ratio           `json:"checks"`
	// ServerErrors are the last error lines of the server's log, if any.
	ServerErrors []string `json:"server_errors,omitempty"`
}

// SoakInterval is one interval of the soak. RSS and goroutines are read at
// its end.
type SoakInterval struct {
	StartS       float64 `json:"start_s"`
	EndS         float64 `json:"end_s"`
	Loops        int     `json:"loops"` // completed: their logout answered
	LoopsPerS    float64 `json:"loops_per_s"`
	Requests     int     `json:"requests"`
	Busy         int     `json:"busy"`
	Errors       int     `json:"errors"`
	MeP99MS      float64 `json:"me_p99_ms"`
	RefreshP50MS float64 `json:"refresh_p50_ms"`
	ServerCores  float64 `json:"server_cores"`
	RSSBytes     int64   `json:"rss_bytes"`
	Goroutines   int     `json:"goroutines"`
}

// runSoak tops the sessions collection up to cfg.SoakSessions (sessions of
// the seeded users) while no server runs, starts a fresh server on the same
// database and runs the soak loops of the setup accounts against it.
func runSoak(ctx context.Context, cfg Config, bin string, env map[string]string, seeded []userDoc, accounts []account, logf func(string, ...any)) (*SoakResult, error) {
	res := &SoakResult{DurationS: cfg.Soak.Seconds(), IntervalS: cfg.SoakInterval.Seconds(), Users: soakUsers}
	logf("seeding sessions up to %d", cfg.SoakSessions)
	var err error
	res.SessionsAtStart, err = withDB(ctx, cfg, env, func(ctx context.Context, db *serverDB) error {
		_, err := seedSessions(ctx, db.db, seeded, cfg.SoakSessions, time.Now())
		return err
	})
	if err != nil {
		return nil, err
	}
	logf("soak: %d users, %s, against a fresh server", soakUsers, cfg.Soak)
	err = withServer(ctx, bin, env, logf, func(ctx context.Context, srv *serverProc) error {
		s := newSoaker(srv, accounts, cfg.Soak, cfg.SoakInterval)
		s.pprofDir = cfg.PprofDir
		defer s.c.close()
		s.run(ctx)
		s.summarize(res)
		res.ServerErrors = errorLines(srv.logs.String(), 5)
		return ctx.Err()
	})
	if err != nil {
		return nil, err
	}
	res.SessionsAtEnd, err = withDB(ctx, cfg, env, func(context.Context, *serverDB) error { return nil })
	if err != nil {
		return nil, err
	}
	res.Checks = soakChecks(res.Intervals)
	return res, nil
}

// withDB opens the server's database (the server must not be running), runs
// f and returns how many sessions the database holds after it.
func withDB(ctx context.Context, cfg Config, env map[string]string, f func(context.Context, *serverDB) error) (int64, error) {
	db, err := openServerDB(ctx, cfg.MongoURI, env["DATA_DIR"], env["MONGODB_DATABASE"])
	if err != nil {
		return 0, err
	}
	defer db.close()
	if err := f(ctx, db); err != nil {
		return 0, err
	}
	n, err := db.db.Collection("sessions").CountDocuments(ctx, bson.D{})
	if err != nil {
		return 0, fmt.Errorf("count sessions: %w", err)
	}
	return n, nil
}

// soaker runs the soak loops and keeps their record per interval.
type soaker struct {
	c        *client
	srv      *serverProc
	accounts []account
	pprofDir string // where the server's goroutines and heap go at the end of the first and last interval
	start    time.Time
	deadline time.Time
	interval time.Duration

	mu      sync.Mutex
	buckets []soakBucket
	tally   tally // errors of the whole soak
}

// soakBucket is what happened in one interval.
type soakBucket struct {
	loops, requests, busy, errors int
	me, refresh                   []time.Duration
	cpu                           time.Duration // the server's CPU time at the end
	rss                           int64
	goroutines                    int
}

// newSoaker returns a soaker of d rounded up to whole intervals.
func newSoaker(srv *serverProc, accounts []account, d, interval time.Duration) *soaker {
	n := int((d + interval - 1) / interval)
	return &soaker{c: newClient(srv.baseURL, 2*soakUsers), srv: srv, accounts: accounts, interval: interval,
		buckets: make([]soakBucket, n)}
}

func (s *soaker) run(ctx context.Context) {
	s.start = time.Now()
	s.deadline = s.start.Add(time.Duration(len(s.buckets)) * s.interval)
	cpu0, _ := readProc(s.srv.pid())
	var wg sync.WaitGroup
	for i := range soakUsers {
		a := s.accounts[i%len(s.accounts)]
		wg.Go(func() { s.worker(ctx, a) })
	}
	// The server's state at the end of each interval.
	for i := range s.buckets {
		select {
		case <-ctx.Done():
		case <-time.After(time.Until(s.start.Add(time.Duration(i+1) * s.interval))):
		}
		if ctx.Err() != nil {
			break
		}
		u, _ := readProc(s.srv.pid())
		g, _ := goroutines(ctx, s.srv.pprofURL)
		if s.pprofDir != "" && (i == 0 || i == len(s.buckets)-1) {
			s.saveProfiles(ctx, map[bool]string{true: "first", false: "last"}[i == 0])
		}
		s.mu.Lock()
		s.buckets[i].cpu, s.buckets[i].rss, s.buckets[i].goroutines = u.cpu()-cpu0.cpu(), u.RSS, g
		s.mu.Unlock()
	}
	wg.Wait()
}

// saveProfiles writes the server's goroutines (as text) and heap to
// soak-WHEN.goroutines.txt and soak-WHEN.heap.pb.gz: what a growing count or
// RSS is made of (`go tool pprof -base soak-first.heap.pb.gz
// soak-last.heap.pb.gz`). Failures are left out of the results: these are
// for a person to read.
func (s *soaker) saveProfiles(ctx context.Context, when string) {
	base := filepath.Join(s.pprofDir, "soak-"+when)
	_ = fetchTo(ctx, s.srv.pprofURL+"/debug/pprof/goroutine?debug=1", base+".goroutines.txt")
	_ = fetchTo(ctx, s.srv.pprofURL+"/debug/pprof/heap", base+".heap.pb.gz")
}

// worker loops as account a until the deadline. A loop cut by the deadline is
// abandoned (its session stays open); a failed one counts its error and starts
// over with a login. A login turned away because the server's hashing is busy
// is retried after the time the server asks for, as a client would: 16 users
// logging in at once are more than two cores hash at cost 12, and the server
// is made to turn the rest away quickly.
func (s *soaker) worker(ctx context.Context, a account) {
	meBody := operation(meQuery, nil)
	for ctx.Err() == nil && time.Now().Before(s.deadline) {
		if err := s.loop(ctx, a, meBody); err != nil && err != errSoakOver {
			s.record(time.Now(), func(b *soakBucket) { b.errors++ })
			s.mu.Lock()
			s.tally.addError(err)
			s.mu.Unlock()
			select {
			case <-ctx.Done():
			case <-time.After(failurePause):
			}
		}
	}
}

var errSoakOver = errors.New("the soak is over")

func (s *soaker) loop(ctx context.Context, a account, meBody []byte) error {
	sess, err := s.login(ctx, a)
	if err != nil {
		return err
	}
	for range mePerLoop {
		if err := s.op(ctx, meLatency, func() error { return s.c.me(ctx, meBody, sess.AccessToken, sess.User) }); err != nil {
			return err
		}
	}
	for range refreshesPerLoop {
		err := s.op(ctx, refreshLatency, func() error {
			next, err := s.c.refresh(ctx, sess.RefreshToken, a.name)
			sess = next
			return err
		})
		if err != nil {
			return err
		}
	}
	if err := s.op(ctx, nil, func() error { return s.c.logout(ctx, sess.AccessToken) }); err != nil {
		return err
	}
	s.record(time.Now(), func(b *soakBucket) { b.loops++ })
	return nil
}

// login signs a in, retrying after the wait the server asks for while it
// turns logins away (RATE_LIMITED).
func (s *soaker) login(ctx context.Context, a account) (session, error) {
	for {
		var sess session
		err := s.op(ctx, nil, func() error {
			var err error
			sess, err = s.c.login(ctx, a.name, a.password)
			return err
		})
		var oe *opError
		if !errors.As(err, &oe) || oe.code != "RATE_LIMITED" {
			return sess, err
		}
		s.record(time.Now(), func(b *soakBucket) { b.busy++ })
		select {
		case <-ctx.Done():
			return session{}, ctx.Err()
		case <-time.After(max(oe.retryAfter, failurePause)):
		}
	}
}

// latency picks which latencies of a bucket an operation adds to.
type latency func(b *soakBucket) *[]time.Duration

func meLatency(b *soakBucket) *[]time.Duration      { return &b.me }
func refreshLatency(b *soakBucket) *[]time.Duration { return &b.refresh }

// op sends one request unless the soak is over, and records it in the
// interval it ended in.
func (s *soaker) op(ctx context.Context, lat latency, do func() error) error {
	if !time.Now().Before(s.deadline) {
		return errSoakOver
	}
	t0 := time.Now()
	if err := do(); err != nil {
		return err
	}
	end := time.Now()
	s.record(end, func(b *soakBucket) {
		b.requests++
		if lat != nil {
			*lat(b) = append(*lat(b), end.Sub(t0))
		}
	})
	return nil
}

// record applies f to the bucket of the interval t falls in; after the last
// interval, nothing counts.
func (s *soaker) record(t time.Time, f func(*soakBucket)) {
	i := int(t.Sub(s.start) / s.interval)
	if i < 0 || i >= len(s.buckets) {
		return
	}
	s.mu.Lock()
	f(&s.buckets[i])
	s.mu.Unlock()
}

func (s *soaker) summarize(res *SoakResult) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var prevCPU time.Duration
	for i, b := range s.buckets {
		iv := SoakInterval{
			StartS: (time.Duration(i) * s.interval).Seconds(), EndS: (time.Duration(i+1) * s.interval).Seconds(),
			Loops: b.loops, Requests: b.requests, Busy: b.busy, Errors: b.errors,
			MeP99MS: percentiles(b.me).P99, RefreshP50MS: percentiles(b.refresh).P50,
			RSSBytes: b.rss, Goroutines: b.goroutines,
		}
		iv.LoopsPerS = rate(b.loops, s.interval)
		if b.cpu > 0 {
			iv.ServerCores = (b.cpu - prevCPU).Seconds() / s.interval.Seconds()
			prevCPU = b.cpu
		}
		res.Intervals = append(res.Intervals, iv)
		res.Loops += b.loops
		res.Busy += b.busy
	}
	sum := summarize("soak", soakUsers, 0, []tally{s.tally})
	res.Errors, res.ErrorKinds, res.ErrorSamples = sum.Errors, sum.ErrorKinds, sum.ErrorSamples
}

// soakChecks judges the intervals against the soak's targets: the last
// interval's rate of completed loops within 10 % of the first's (not met when
// the first completed none), and the server's memory flat after the warm-up:
// the last interval's RSS within 10 % of the RSS at the end of the soak's
// first third (at least one interval). The warm-up is that long because the
// server's bounded caches fill over minutes, not seconds: the revocation set
// (each logout's session, for an access token's lifetime), the verified-token
// cache, the user cache, the embedded database's page caches. Goroutines are reported, not judged: a count at one
// instant includes the requests in flight (up to one per user, each with its
// connection's goroutines and those of the database connections it holds),
// which moves it by more than a tenth of a small total; a leak shows as a
// climb over the intervals, and -pprof saves the first and last dumps.
func soakChecks(intervals []SoakInterval) []Ratio {
	if len(intervals) < 2 {
		return nil
	}
	first, last := intervals[0], intervals[len(intervals)-1]
	var out []Ratio
	loops := Ratio{Name: "loops/s, last / first interval", Display: "no loops", Target: "0.90–1.10"}
	if first.LoopsPerS > 0 {
		loops.Value = last.LoopsPerS / first.LoopsPerS
		loops.Display, loops.Met = fmt.Sprintf("%.2f", loops.Value), loops.Value >= 0.9 && loops.Value <= 1.1
	}
	out = append(out, loops)
	warm := intervals[warmupIntervals(len(intervals))-1]
	if warm.RSSBytes > 0 {
		v := float64(last.RSSBytes) / float64(warm.RSSBytes)
		out = append(out, Ratio{Name: fmt.Sprintf("server RSS, last / after warm-up (%gs)", warm.EndS), Value: v,
			Display: fmt.Sprintf("%.2f", v), Target: "≤ 1.10", Met: v <= 1.1})
	}
	return out
}

// warmupIntervals is how many intervals of n make the warm-up: a third,
// at least one, and never the last.
func warmupIntervals(n int) int {
	return max(1, min(n/3, n-1))
}

// goroutines reads the server's goroutine count from the first line of its
// pprof goroutine profile ("goroutine profile: total 42").
func goroutines(ctx context.Context, pprofURL string) (int, error) {
	if pprofURL == "" {
		return 0, fmt.Errorf("no pprof address")
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, pprofURL+"/debug/pprof/goroutine?debug=1", nil)
	if err != nil {
		return 0, err
	}
	resp, err := pprofClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil {
		return 0, err
	}
	return parseGoroutines(line)
}

// errorLines returns the last n lines of log at level ERROR.
func errorLines(log string, n int) []string {
	var out []string
	for line := range strings.Lines(log) {
		if strings.Contains(line, "level=ERROR") || strings.Contains(line, `"level":"ERROR"`) {
			out = append(out, truncate(strings.TrimSpace(line), 300))
		}
	}
	return out[max(len(out)-n, 0):]
}

func parseGoroutines(line string) (int, error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(line), "goroutine profile: total ")
	if !ok {
		return 0, fmt.Errorf("unexpected goroutine profile: %q", line)
	}
	return strconv.Atoi(rest)
}
