// Package metrics is the server's Prometheus instrumentation: one registry,
// every metric the operators' dashboard and alerts use, and the hooks the
// other packages call. Label values are always from small fixed sets: never
// a user id, username, email, IP address, token or raw path.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const ns = "authgql"

// Metrics holds the registry and the metrics written by request paths.
type Metrics struct {
	Registry *prometheus.Registry
	names    *[]string // every authgql_ metric registered, for Names

	httpRequests  *prometheus.CounterVec
	httpDuration  *prometheus.HistogramVec
	httpInFlight  prometheus.Gauge
	operations    *prometheus.CounterVec
	opDuration    *prometheus.HistogramVec
	logins        *prometheus.CounterVec
	registrations *prometheus.CounterVec
	refreshes     *prometheus.CounterVec
	tokenRefused  *prometheus.CounterVec
	revoked       *prometheus.CounterVec
	hashWait      prometheus.Histogram
	hashRefusals  prometheus.Counter
	rateLimited   *prometheus.CounterVec
	syncDuration  prometheus.Histogram
	syncErrors    prometheus.Counter
	lastSync      *lastSync
	mongoDuration *prometheus.HistogramVec
	mongoInUse    prometheus.Gauge
	mailDelivered *prometheus.CounterVec
}

// latency buckets from 1 ms to 10 s.
var latency = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// New returns the metrics, registered with the Go runtime and process
// collectors.
func New() *Metrics {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	names := new([]string)
	f := factory{r, names}
	m := &Metrics{
		Registry: r,
		names:    names,
		httpRequests: f.counterVec("http_requests_total", "HTTP requests by route and status class.",
			"route", "code"),
		httpDuration: f.histogramVec("http_request_duration_seconds", "HTTP request duration by route (a WebSocket's whole life is not counted).",
			latency, "route"),
		httpInFlight: f.gauge("http_requests_in_flight", "HTTP requests being served."),
		operations: f.counterVec("graphql_operations_total", "GraphQL root fields run, by field and outcome (ok or the error code).",
			"field", "outcome"),
		opDuration: f.histogramVec("graphql_operation_duration_seconds", "GraphQL operation duration by root field.",
			latency, "field"),
		logins:        f.counterVec("logins_total", "login attempts by outcome.", "outcome"),
		registrations: f.counterVec("registrations_total", "register attempts by outcome.", "outcome"),
		refreshes:     f.counterVec("refreshes_total", "refreshToken attempts by outcome.", "outcome"),
		tokenRefused:  f.counterVec("token_verification_failures_total", "Access tokens refused, by reason.", "reason"),
		revoked:       f.counterVec("sessions_revoked_total", "Sessions revoked, by cause.", "cause"),
		hashWait: f.histogram("hash_wait_seconds", "Time a password check waited for a hashing slot (admitted or refused).",
			[]float64{0, .001, .005, .01, .05, .1, .25, .5, 1, 2.5}),
		hashRefusals:  f.counter("hash_refusals_total", "Password checks refused because every hashing slot stayed busy (RATE_LIMITED busy)."),
		rateLimited:   f.counterVec("rate_limited_total", "Requests refused by a rate limit or the login throttle, by kind.", "kind"),
		syncDuration:  f.histogram("revocation_sync_duration_seconds", "Duration of a revocation-log sync.", latency),
		syncErrors:    f.counter("revocation_sync_errors_total", "Revocation-log syncs that failed."),
		mongoDuration: f.histogramVec("mongodb_command_duration_seconds", "MongoDB command duration by command and outcome.", latency, "command", "outcome"),
		mongoInUse:    f.gauge("mongodb_pool_connections_in_use", "MongoDB connections checked out of the pool."),
		mailDelivered: f.counterVec("mail_deliveries_total", "Mail delivery attempts by outcome (sent, retry, failed).", "outcome"),
		lastSync:      &lastSync{},
	}
	m.GaugeFunc("revocation_sync_lag_seconds",
		"Seconds since the last successful revocation-log sync (revocations from other instances are at most this late, plus the sync's own time).",
		m.lastSync.lag)
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

// GaugeFunc registers a gauge read from fn at each scrape.
func (m *Metrics) GaugeFunc(name, help string, fn func() float64) {
	m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: name, Help: help}, fn))
	*m.names = append(*m.names, ns+"_"+name)
}

// Names lists every authgql_ metric registered (also those not yet
// observed, which a scrape does not show), for checks of dashboards and
// alert rules.
func (m *Metrics) Names() []string { return append([]string(nil), *m.names...) }

// HTTP records one request.
func (m *Metrics) HTTP(route string, status int, took time.Duration) {
	if m == nil {
		return
	}
	m.httpRequests.WithLabelValues(route, statusClass(status)).Inc()
	m.httpDuration.WithLabelValues(route).Observe(took.Seconds())
}

// InFlight counts a request being served until the returned func is called.
func (m *Metrics) InFlight() func() {
	if m == nil {
		return func() {}
	}
	m.httpInFlight.Inc()
	return m.httpInFlight.Dec
}

func statusClass(status int) string {
	if status < 100 || status > 599 {
		return "other"
	}
	return strconv.Itoa(status/100) + "xx"
}

// Operation records one root field of a GraphQL operation.
func (m *Metrics) Operation(field, outcome string, took time.Duration) {
	if m == nil {
		return
	}
	m.operations.WithLabelValues(field, outcome).Inc()
	m.opDuration.WithLabelValues(field).Observe(took.Seconds())
}

// Login, Registration and Refresh record the outcome of one attempt.
func (m *Metrics) Login(outcome string) {
	if m != nil {
		m.logins.WithLabelValues(outcome).Inc()
	}
}

func (m *Metrics) Registration(outcome string) {
	if m != nil {
		m.registrations.WithLabelValues(outcome).Inc()
	}
}

func (m *Metrics) Refresh(outcome string) {
	if m != nil {
		m.refreshes.WithLabelValues(outcome).Inc()
	}
}

// RateLimited records a refusal by a limit of kind.
func (m *Metrics) RateLimited(kind string) {
	if m != nil {
		m.rateLimited.WithLabelValues(kind).Inc()
	}
}

// MailDelivery records a delivery attempt's outcome.
func (m *Metrics) MailDelivery(outcome string) {
	if m != nil {
		m.mailDelivered.WithLabelValues(outcome).Inc()
	}
}

// MongoCommand records one database command.
func (m *Metrics) MongoCommand(command string, ok bool, took time.Duration) {
	if m == nil {
		return
	}
	outcome := "ok"
	if !ok {
		outcome = "error"
	}
	m.mongoDuration.WithLabelValues(command, outcome).Observe(took.Seconds())
}

// MongoCheckedOut and MongoCheckedIn track the pool's connections in use.
func (m *Metrics) MongoCheckedOut() {
	if m != nil {
		m.mongoInUse.Inc()
	}
}

func (m *Metrics) MongoCheckedIn() {
	if m != nil {
		m.mongoInUse.Dec()
	}
}

// The auth.Observer methods.

func (m *Metrics) SessionsEnded(cause string, n int) {
	m.revoked.WithLabelValues(cause).Add(float64(n))
}

func (m *Metrics) HashAdmission(wait time.Duration, admitted bool) {
	m.hashWait.Observe(wait.Seconds())
	if !admitted {
		m.hashRefusals.Inc()
	}
}

func (m *Metrics) TokenRefused(reason string) { m.tokenRefused.WithLabelValues(reason).Inc() }

func (m *Metrics) Synced(took time.Duration, err error) {
	m.syncDuration.Observe(took.Seconds())
	if err != nil {
		m.syncErrors.Inc()
		return
	}
	m.lastSync.mark()
}

type factory struct {
	r     *prometheus.Registry
	names *[]string
}

func (f factory) add(name string) { *f.names = append(*f.names, ns+"_"+name) }

func (f factory) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: name, Help: help}, labels)
	f.r.MustRegister(c)
	f.add(name)
	return c
}

func (f factory) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: name, Help: help})
	f.r.MustRegister(c)
	f.add(name)
	return c
}

func (f factory) gauge(name, help string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: name, Help: help})
	f.r.MustRegister(g)
	f.add(name)
	return g
}

func (f factory) histogram(name, help string, buckets []float64) prometheus.Histogram {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: name, Help: help, Buckets: buckets})
	f.r.MustRegister(h)
	f.add(name)
	return h
}

func (f factory) histogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: name, Help: help, Buckets: buckets}, labels)
	f.r.MustRegister(h)
	f.add(name)
	return h
}
