package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Report is everything one run measured; it is also the JSON file.
type Report struct {
	StartedAt time.Time     `json:"started_at"`
	Machine   Machine       `json:"machine"`
	Settings  Settings      `json:"settings"`
	Limits    Limits        `json:"limits"`
	Phases    []PhaseResult `json:"phases"`
	// Algorithms are me against a fresh server per JWT_ALGORITHM, HS256
	// first (the phases above sign with HS256 too).
	Algorithms []AlgorithmResult `json:"algorithms,omitempty"`
	Server     ServerUsage       `json:"server"`
	Ratios     []Ratio           `json:"ratios"`
	Sockets    *SocketsResult    `json:"sockets,omitempty"`
	Soak       *SoakResult       `json:"soak,omitempty"`
}

// Machine is where the numbers come from.
type Machine struct {
	CPUs         int    `json:"cpus"`
	CPUModel     string `json:"cpu_model,omitempty"`
	OS           string `json:"os"`
	GoVersion    string `json:"go_version"`
	LoadAvgStart string `json:"load_avg_at_start,omitempty"`
}

// Settings are the knobs of the run.
type Settings struct {
	Short            bool    `json:"short"`
	Database         string  `json:"database"`
	SeededUsers      int     `json:"seeded_users"`
	BcryptCost       int     `json:"bcrypt_cost"`
	PhaseS           float64 `json:"phase_s"`
	MixedS           float64 `json:"mixed_s"`
	AlgorithmS       float64 `json:"algorithm_s"`
	WarmupS          float64 `json:"warmup_s"`
	FloodConcurrency int     `json:"flood_concurrency"`
}

// ServerUsage is the server process's resource use over the whole run.
type ServerUsage struct {
	PeakRSSBytes  int64   `json:"peak_rss_bytes"` // VmHWM
	CPUSeconds    float64 `json:"cpu_s"`
	UserSeconds   float64 `json:"user_s"`
	SystemSeconds float64 `json:"system_s"`
}

// Ratio compares a result with a limit or a reference, against the target
// of issue 7.
type Ratio struct {
	Name    string  `json:"name"`
	Value   float64 `json:"value"`
	Display string  `json:"display"`
	Target  string  `json:"target"`
	Met     bool    `json:"met"`
}

const rssTargetBytes = 150 << 20

func newReport(cfg Config, startedAt time.Time, loadAvg string, limits Limits, phases []PhaseResult, algs []AlgorithmResult,
	server ServerUsage, sockets *SocketsResult, soak *SoakResult) *Report {
	r := &Report{
		StartedAt: startedAt.UTC().Truncate(time.Second),
		Machine: Machine{CPUs: runtime.NumCPU(), CPUModel: cpuModel(), OS: runtime.GOOS + "/" + runtime.GOARCH,
			GoVersion: runtime.Version(), LoadAvgStart: loadAvg},
		Settings: Settings{Short: cfg.Short, Database: databaseKind(cfg.MongoURI), SeededUsers: cfg.Users, BcryptCost: cfg.BcryptCost,
			PhaseS: cfg.PhaseDuration.Seconds(), MixedS: cfg.MixedDuration.Seconds(), AlgorithmS: cfg.AlgDuration.Seconds(),
			WarmupS: cfg.Warmup.Seconds(), FloodConcurrency: 4 * runtime.NumCPU()},
		Limits:     limits,
		Phases:     phases,
		Algorithms: algs,
		Server:     server,
		Sockets:    sockets,
		Soak:       soak,
	}
	r.Ratios = r.ratios()
	return r
}

func (r *Report) algorithm(alg string) (AlgorithmResult, bool) {
	for _, a := range r.Algorithms {
		if a.Algorithm == alg {
			return a, true
		}
	}
	return AlgorithmResult{}, false
}

func (r *Report) phase(name string) (PhaseResult, bool) {
	for _, p := range r.Phases {
		if p.Name == name {
			return p, true
		}
	}
	return PhaseResult{}, false
}

// ratios are the comparisons issue 7 sets targets for; a phase that did not
// run leaves its ratios out, and a run of the sockets phase alone has none.
func (r *Report) ratios() []Ratio {
	if len(r.Phases) == 0 && len(r.Algorithms) == 0 {
		return nil
	}
	var out []Ratio
	fraction := func(name string, v, atLeast float64) {
		out = append(out, Ratio{Name: name, Value: v, Display: fmt.Sprintf("%.2f", v),
			Target: fmt.Sprintf("≥ %.2f", atLeast), Met: v >= atLeast})
	}
	for _, name := range []string{phaseLogin, phaseRegister} {
		if p, ok := r.phase(name); ok && r.Limits.BcryptPerSecond > 0 {
			fraction(name+" / bcrypt limit", p.RPS/r.Limits.BcryptPerSecond, 0.9)
		}
	}
	if me, ok := r.phase(phaseMe); ok {
		if r.Limits.PointRead.RPS > 0 {
			fraction("me / db point-read ceiling", me.RPS/r.Limits.PointRead.RPS, 0.9)
		}
		if floor, ok := r.phase(phaseMeFloor); ok && floor.RPS > 0 {
			fraction("me / bare net/http floor", me.RPS/floor.RPS, 0.5)
			// The floor shares the two cores with the load generator, which can
			// cap its rate before its own CPU does: its server CPU per request
			// is the ratio the client cannot bend.
			if meCPU, floorCPU := cpuPerRequest(me), cpuPerRequest(floor); meCPU > 0 && floorCPU > 0 {
				fraction("me / floor, by server CPU per request", floorCPU/meCPU, 0.5)
			}
		}
	}
	// Issue 13: signature checks must not cost me more than a tenth of its
	// HS256 rate.
	if ref, ok := r.algorithm(referenceAlgorithm); ok && ref.Me.RPS > 0 {
		for _, a := range r.Algorithms {
			if a.Algorithm != referenceAlgorithm {
				fraction(fmt.Sprintf("me %s / %s", a.Algorithm, referenceAlgorithm), a.Me.RPS/ref.Me.RPS, 0.9)
			}
		}
	}
	alone, ok1 := r.phase(phaseMeAlone)
	flood, ok2 := r.phase(phaseMeFlood)
	if ok1 && ok2 && alone.LatencyMS.P99 > 0 {
		v := flood.LatencyMS.P99 / alone.LatencyMS.P99
		out = append(out, Ratio{Name: "me p99 during flood / alone", Value: v,
			Display: fmt.Sprintf("%.2f×", v), Target: "≤ 2×", Met: v <= 2})
	}
	meErrors := 0
	for _, p := range r.Phases {
		if p.Name == phaseMe || p.Name == phaseMeAlone || p.Name == phaseMeFlood {
			meErrors += p.Errors
		}
	}
	for _, a := range r.Algorithms {
		meErrors += a.Me.Errors
	}
	out = append(out, Ratio{Name: "me errors (all me phases)", Value: float64(meErrors),
		Display: fmt.Sprint(meErrors), Target: "= 0", Met: meErrors == 0})
	rss := float64(r.Server.PeakRSSBytes)
	out = append(out, Ratio{Name: "server peak RSS", Value: rss / (1 << 20), Display: megabytes(r.Server.PeakRSSBytes),
		Target: "≤ 150 MB", Met: rss <= rssTargetBytes})
	return out
}

func cpuPerRequest(p PhaseResult) float64 {
	if p.Usage == nil {
		return 0
	}
	return p.Usage.ServerCPUPerRequestMS
}

// print writes the human-readable table.
func (r *Report) print(w io.Writer) {
	m := r.Machine
	fmt.Fprintf(w, "\nauthgql bench · %s · %d × %s · %s · %s · load avg at start %s\n",
		r.StartedAt.Format("2006-01-02 15:04 MST"), m.CPUs, orUnknown(m.CPUModel), m.OS, m.GoVersion, orUnknown(m.LoadAvgStart))
	if len(r.Phases) > 0 || len(r.Algorithms) > 0 {
		r.printMain(w)
	} else {
		fmt.Fprintf(w, "mode %s, the sockets phase only (phases %gs), %s\n", r.mode(), r.Settings.PhaseS, r.Settings.Database)
	}
	if r.Sockets != nil {
		r.Sockets.print(w)
	}
	if r.Soak != nil {
		r.Soak.print(w)
	}
	measured := slices.Clone(r.Phases)
	for _, a := range r.Algorithms {
		measured = append(measured, a.Me)
	}
	if r.Sockets != nil {
		measured = append(measured, r.Sockets.errorRows()...)
	}
	printErrors(w, measured)
	if r.Soak != nil {
		printErrors(w, []PhaseResult{{Name: "soak", ErrorKinds: r.Soak.ErrorKinds, ErrorSamples: r.Soak.ErrorSamples}})
	}
}

func (r *Report) mode() string {
	if r.Settings.Short {
		return "short"
	}
	return "full"
}

// printMain writes the limits, the phases of the main run and of the
// algorithms, and their ratios.
func (r *Report) printMain(w io.Writer) {
	s, l := r.Settings, r.Limits
	fmt.Fprintf(w, "mode %s (phases %gs, me alone and mixed %gs), bcrypt cost %d, %s seeded with %d users\n\n",
		r.mode(), s.PhaseS, s.MixedS, s.BcryptCost, s.Database, s.SeededUsers)

	fmt.Fprintf(w, "limits\n  bcrypt:       %s per hash (median of %d) → %.1f hashes/s on %d cores\n",
		duration(l.BcryptHashMS), len(l.BcryptSamplesMS), l.BcryptPerSecond, l.Cores)
	pr := l.PointRead
	fmt.Fprintf(w, "  point reads:  %.0f/s  p50 %s  p99 %s  errors %d  (FindOne by _id through the driver, concurrency %d, %d users)\n\n",
		pr.RPS, duration(pr.LatencyMS.P50), duration(pr.LatencyMS.P99), pr.Errors, pr.Concurrency, l.PointReadDocs)

	fmt.Fprintf(w, "%-20s %4s %9s %9s %9s %9s %9s %7s %8s %8s %9s %9s\n",
		"phase", "conc", "req/s", "p50", "p90", "p99", "max", "errors", "srv cpu", "bench", "cpu/req", "srv rss")
	for _, p := range r.Phases {
		printPhase(w, p)
	}
	fmt.Fprintf(w, "%-20s %s\n", "", "(srv cpu, bench: cores used by the server and by the load generator; cpu/req: server CPU per request;")
	fmt.Fprintf(w, "%-20s %s\n", "", " me (floor): the same me phase against a bare net/http handler, cmd/floor, whose figures these are)")
	if len(r.Algorithms) > 0 {
		fmt.Fprintf(w, "\nalgorithms: me at %d, %gs each, against a fresh server per JWT_ALGORITHM on the same database\n",
			r.Algorithms[0].Me.Concurrency, s.AlgorithmS)
		for _, a := range r.Algorithms {
			printPhase(w, a.Me)
		}
	}

	fmt.Fprintf(w, "\nserver: peak RSS %s (VmHWM), CPU %.1f s (user %.1f s, system %.1f s)\n\n",
		megabytes(r.Server.PeakRSSBytes), r.Server.CPUSeconds, r.Server.UserSeconds, r.Server.SystemSeconds)
	fmt.Fprintf(w, "%-38s %9s %10s\n", "ratio", "value", "target")
	for _, x := range r.Ratios {
		verdict := "met"
		if !x.Met {
			verdict = "NOT met"
		}
		fmt.Fprintf(w, "%-38s %9s %10s  %s\n", x.Name, x.Display, x.Target, verdict)
	}
}

// print writes the soak's table: one line per interval, then its checks.
func (s *SoakResult) print(w io.Writer) {
	fmt.Fprintf(w, "\nsoak: %s, %d users each looping login → %d × me → %d × refreshToken → logout;\n",
		time.Duration(s.DurationS*float64(time.Second)), s.Users, mePerLoop, refreshesPerLoop)
	fmt.Fprintf(w, "      sessions in the database %d at the start, %d at the end; %d loops, %d logins retried (busy), %d errors\n\n",
		s.SessionsAtStart, s.SessionsAtEnd, s.Loops, s.Busy, s.Errors)
	fmt.Fprintf(w, "%-12s %6s %8s %9s %9s %9s %5s %7s %8s %9s %10s\n",
		"interval", "loops", "loops/s", "req/s", "me p99", "refr p50", "busy", "errors", "srv cpu", "srv rss", "goroutines")
	for _, iv := range s.Intervals {
		fmt.Fprintf(w, "%-12s %6d %8.2f %9.1f %9s %9s %5d %7d %8.2f %9s %10d\n",
			fmt.Sprintf("%g–%gs", iv.StartS, iv.EndS), iv.Loops, iv.LoopsPerS, float64(iv.Requests)/(iv.EndS-iv.StartS),
			duration(iv.MeP99MS), duration(iv.RefreshP50MS), iv.Busy, iv.Errors, iv.ServerCores, megabytes(iv.RSSBytes), iv.Goroutines)
	}
	fmt.Fprintf(w, "%-12s %s\n", "", "(busy: logins turned away, RATE_LIMITED, and retried; srv rss and goroutines at the end of the interval)")
	printChecks(w, "soak check", s.Checks)
	if len(s.ServerErrors) > 0 {
		fmt.Fprintf(w, "\nthe server's last errors during the soak:\n")
		for _, line := range s.ServerErrors {
			fmt.Fprintf(w, "  %s\n", line)
		}
	}
}

// printChecks writes a phase's checks, each PASS or FAIL.
func printChecks(w io.Writer, title string, checks []Ratio) {
	fmt.Fprintf(w, "\n%-38s %9s %10s\n", title, "value", "target")
	for _, x := range checks {
		verdict := "PASS"
		if !x.Met {
			verdict = "FAIL"
		}
		fmt.Fprintf(w, "%-38s %9s %10s  %s\n", x.Name, x.Display, x.Target, verdict)
	}
}

func printPhase(w io.Writer, p PhaseResult) {
	lat := p.LatencyMS
	srvCPU, bench, perReq, rss := "-", "-", "-", "-"
	if u := p.Usage; u != nil {
		srvCPU, bench, rss = fmt.Sprintf("%.2f", u.ServerCores), fmt.Sprintf("%.2f", u.BenchCores), megabytes(u.ServerRSSMaxBytes)
		if u.ServerCPUPerRequestMS > 0 {
			perReq = duration(u.ServerCPUPerRequestMS)
		}
	}
	fmt.Fprintf(w, "%-20s %4d %9.1f %9s %9s %9s %9s %7d %8s %8s %9s %9s\n", p.Name, p.Concurrency, p.RPS,
		duration(lat.P50), duration(lat.P90), duration(lat.P99), duration(lat.Max), p.Errors, srvCPU, bench, perReq, rss)
}

// printErrors lists each kind of failure once, with one example message.
func printErrors(w io.Writer, phases []PhaseResult) {
	first := true
	for _, p := range phases {
		for _, kind := range slices.Sorted(maps.Keys(p.ErrorKinds)) {
			n := p.ErrorKinds[kind]
			if first {
				fmt.Fprintln(w, "\nerrors")
				first = false
			}
			fmt.Fprintf(w, "  %-20s %6d × %s  e.g. %s\n", p.Name, n, kind, p.ErrorSamples[kind])
		}
	}
}

// write stores the report as indented JSON.
func (r *Report) write(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	return nil
}

// duration formats milliseconds with three significant digits or so.
func duration(ms float64) string {
	switch {
	case ms <= 0:
		return "-"
	case ms < 1:
		return fmt.Sprintf("%.0fµs", ms*1000)
	case ms < 10:
		return fmt.Sprintf("%.2fms", ms)
	case ms < 1000:
		return fmt.Sprintf("%.1fms", ms)
	default:
		return fmt.Sprintf("%.2fs", ms/1000)
	}
}

func megabytes(b int64) string { return fmt.Sprintf("%.1f MB", float64(b)/(1<<20)) }

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// cpuModel is the first "model name" of /proc/cpuinfo.
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if name, value, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(name) == "model name" {
			return strings.TrimSpace(value)
		}
	}
	return ""
}
