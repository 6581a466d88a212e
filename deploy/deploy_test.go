// Package deploy holds the deployment files (Dockerfile, compose stack, Kubernetes manifests, Prometheus
// rules, Grafana dashboard). No container engine runs here, so this test is what checks them: every file
// parses, every environment variable they set is one the server reads (and the configuration they give
// passes config.Load), ports agree with the server's defaults, probes name real routes, and the PromQL uses
// only the metrics the server exports. docs/deploy.md says what is and is not checked.
package deploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"

	"github.com/authgql/server/internal/config"
	authtoken "github.com/authgql/server/internal/token"
)

// metricsPort is the port every deployment file gives METRICS_ADDR (issue 16: 127.0.0.1:9464 is the
// documented example; off by default).
const metricsPort = 9464

// exportedMetrics are the server's metric families (issue 16's contract), by type. To be replaced by the
// names the real registry registers.
var exportedMetrics = map[string]string{
	"authgql_http_requests_total":                "counter",
	"authgql_http_request_duration_seconds":      "histogram",
	"authgql_http_requests_in_flight":            "gauge",
	"authgql_graphql_operations_total":           "counter",
	"authgql_graphql_operation_duration_seconds": "histogram",
	"authgql_logins_total":                       "counter",
	"authgql_registrations_total":                "counter",
	"authgql_refreshes_total":                    "counter",
	"authgql_token_verification_failures_total":  "counter",
	"authgql_sessions_revoked_total":             "counter",
	"authgql_hash_slots":                         "gauge",
	"authgql_hash_slots_in_use":                  "gauge",
	"authgql_hash_wait_seconds":                  "histogram",
	"authgql_hash_refusals_total":                "counter",
	"authgql_rate_limited_total":                 "counter",
	"authgql_revoked_sessions":                   "gauge",
	"authgql_revocation_sync_duration_seconds":   "histogram",
	"authgql_revocation_sync_lag_seconds":        "gauge",
	"authgql_revocation_sync_errors_total":       "counter",
	"authgql_mongodb_command_duration_seconds":   "histogram",
	"authgql_mongodb_pool_connections_in_use":    "gauge",
	"authgql_mail_outbox_depth":                  "gauge",
	"authgql_mail_deliveries_total":              "counter",
	"authgql_websocket_connections":              "gauge",
	"authgql_websocket_subscriptions":            "gauge",
	"authgql_readiness":                          "gauge",
}

// TestFilesParse parses every YAML and JSON file under deploy/ (YAML with duplicate keys refused).
func TestFilesParse(t *testing.T) {
	var n int
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		switch filepath.Ext(path) {
		case ".yaml", ".yml":
			n++
			if _, err := yamlDocs(path); err != nil {
				t.Error(err)
			}
		case ".json":
			n++
			var v any
			if err := json.Unmarshal(readFile(t, path), &v); err != nil {
				t.Errorf("%s: %v", path, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 10 {
		t.Errorf("parsed %d YAML/JSON files under deploy/; want the compose, Prometheus, Grafana and Kubernetes files", n)
	}
}

// TestEnvironment: every variable the compose servers, the Kubernetes pods and the image set is one the server
// reads and docs/configuration.md documents (Go's GOMEMLIMIT and GOMAXPROCS and the OpenTelemetry SDK's OTEL_*
// aside), and the configuration each gives is one config.Load accepts.
func TestEnvironment(t *testing.T) {
	known := serverEnv(t)
	documented := documentedEnv(t)
	sources := map[string][]string{"deploy/Dockerfile": keys(dockerfile(t).env)}
	for name, svc := range composeServers(t) {
		sources["compose.yaml service "+name] = keys(svc.env)
	}
	for name, env := range kubernetesEnv(t) {
		sources["kubernetes "+name] = env
	}
	for src, names := range sources {
		for _, name := range names {
			switch {
			case name == "GOMEMLIMIT" || name == "GOMAXPROCS" || strings.HasPrefix(name, "OTEL_"):
			case !known[name]:
				t.Errorf("%s sets %s, which the server does not read", src, name)
			case !documented[name]:
				t.Errorf("%s sets %s, which docs/configuration.md does not document", src, name)
			}
		}
	}

	t.Run("compose configuration loads", func(t *testing.T) {
		image := dockerfile(t).env
		for name, svc := range composeServers(t) {
			env := map[string]string{}
			for k, v := range image {
				env[k] = v
			}
			for k, v := range svc.env {
				env[k] = interpolate(t, v)
			}
			if _, err := config.Load(mapEnv(env)); err != nil {
				t.Errorf("service %s: %v", name, err)
			}
		}
	})
	t.Run("kubernetes configuration loads, and not with the placeholder secret", func(t *testing.T) {
		k := kubernetes(t)
		env := map[string]string{}
		for k, v := range dockerfile(t).env {
			env[k] = v
		}
		for k, v := range k.configMap.Data {
			env[k] = v
		}
		for k, v := range k.secret.StringData {
			env[k] = v
		}
		if _, err := config.Load(mapEnv(env)); err == nil || !strings.Contains(err.Error(), "JWT_SECRET") {
			t.Errorf("config.Load with secret.yaml's placeholder JWT_SECRET = %v; want an error about JWT_SECRET, "+
				"so that a forgotten placeholder stops the start", err)
		}
		env["JWT_SECRET"] = strings.Repeat("x", authtoken.MinSecretBytes)
		if _, err := config.Load(mapEnv(env)); err != nil {
			t.Errorf("the ConfigMap and Secret (JWT_SECRET replaced): %v", err)
		}
	})
}

// TestSecretsArePlaceholders: no file under deploy/ carries a usable secret.
func TestSecretsArePlaceholders(t *testing.T) {
	k := kubernetes(t)
	if len(k.secret.StringData) == 0 || len(k.secret.Data) > 0 {
		t.Fatalf("secret.yaml: want placeholders in stringData only, got stringData %v and data %v",
			keys(k.secret.StringData), keys(k.secret.Data))
	}
	for key, v := range k.secret.StringData {
		if !strings.Contains(v, "REPLACE_ME") {
			t.Errorf("secret.yaml %s = %q: want a REPLACE_ME placeholder", key, v)
		}
	}
	if v := k.secret.StringData["JWT_SECRET"]; len(v) >= authtoken.MinSecretBytes {
		t.Errorf("secret.yaml JWT_SECRET placeholder is %d bytes: want fewer than %d, so the server refuses it",
			len(v), authtoken.MinSecretBytes)
	}
	for name, svc := range composeServers(t) {
		if v := svc.env["JWT_SECRET"]; !strings.HasPrefix(v, "${JWT_SECRET:?") {
			t.Errorf("compose service %s: JWT_SECRET = %q; want ${JWT_SECRET:?...}, required from the environment", name, v)
		}
	}
}

// TestPorts: the API on the server's default PORT everywhere, metrics on metricsPort, and the metrics port
// published nowhere public.
func TestPorts(t *testing.T) {
	httpPort := defaultPort(t)
	d := dockerfile(t)
	for _, p := range []int{httpPort, metricsPort} {
		if !slices.Contains(d.expose, p) {
			t.Errorf("Dockerfile EXPOSE %v: want %d", d.expose, p)
		}
	}
	if p := d.env["PORT"]; p != "" && p != strconv.Itoa(httpPort) {
		t.Errorf("Dockerfile ENV PORT=%s; want %d", p, httpPort)
	}

	for name, svc := range composeServers(t) {
		if p := svc.env["PORT"]; p != "" && p != strconv.Itoa(httpPort) {
			t.Errorf("compose service %s PORT=%s; want %d (Caddy and the probes use it)", name, p, httpPort)
		}
		checkMetricsAddr(t, "compose service "+name, svc.env["METRICS_ADDR"])
		if len(svc.ports) > 0 {
			t.Errorf("compose service %s publishes %v: only Caddy is published", name, svc.ports)
		}
	}
	caddy := readString(t, "caddy/Caddyfile")
	for name := range composeServers(t) {
		if up := fmt.Sprintf("%s:%d", name, httpPort); !strings.Contains(caddy, up) {
			t.Errorf("Caddyfile does not proxy to %s", up)
		}
	}
	if strings.Contains(caddy, strconv.Itoa(metricsPort)) {
		t.Errorf("Caddyfile mentions the metrics port %d", metricsPort)
	}
	var prom struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	decodeYAML(t, "prometheus/prometheus.yml", &prom)
	var targets []string
	for _, sc := range prom.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			targets = append(targets, st.Targets...)
		}
	}
	for name := range composeServers(t) {
		if want := fmt.Sprintf("%s:%d", name, metricsPort); !slices.Contains(targets, want) {
			t.Errorf("prometheus.yml targets %v: want %s", targets, want)
		}
	}
	for _, f := range prom.RuleFiles {
		if _, err := os.Stat(filepath.Join("prometheus", f)); err != nil {
			t.Errorf("prometheus.yml rule_files: %v", err)
		}
	}

	k := kubernetes(t)
	if p := k.configMap.Data["PORT"]; p != "" && p != strconv.Itoa(httpPort) {
		t.Errorf("configmap.yaml PORT=%s; want %d", p, httpPort)
	}
	checkMetricsAddr(t, "configmap.yaml", k.configMap.Data["METRICS_ADDR"])
	c := k.container(t)
	ports := map[string]int{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if ports["http"] != httpPort || ports["metrics"] != metricsPort {
		t.Errorf("deployment.yaml container ports %v; want http %d and metrics %d", ports, httpPort, metricsPort)
	}
	for _, s := range k.services {
		for _, p := range s.Spec.Ports {
			public := s.Metadata.Name == "authgql"
			if public && (p.TargetPort == "metrics" || p.TargetPort == strconv.Itoa(metricsPort) || p.Port == metricsPort) {
				t.Errorf("the public Service %s exposes the metrics port", s.Metadata.Name)
			}
			if public && p.Name == "http" && (p.Port != 80 || (p.TargetPort != "http" && p.TargetPort != strconv.Itoa(httpPort))) {
				t.Errorf("Service %s http: port %d → %s; want 80 → http (%d)", s.Metadata.Name, p.Port, p.TargetPort, httpPort)
			}
		}
	}
	// The metrics port only from the monitoring namespace, the API port from the ingress.
	var metricsRule, httpRule bool
	for _, r := range k.networkPolicy.Spec.Ingress {
		for _, p := range r.Ports {
			switch p.Port {
			case metricsPort:
				metricsRule = true
				for _, f := range r.From {
					if f.NamespaceSelector == nil || f.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] != "monitoring" {
						t.Errorf("networkpolicy.yaml admits port %d from %+v; want the monitoring namespace only", metricsPort, f)
					}
				}
				if len(r.From) == 0 {
					t.Errorf("networkpolicy.yaml admits port %d from anywhere", metricsPort)
				}
			case httpPort:
				httpRule = true
			default:
				t.Errorf("networkpolicy.yaml admits port %d", p.Port)
			}
		}
		if len(r.Ports) == 0 {
			t.Error("networkpolicy.yaml has a rule for every port")
		}
	}
	if !metricsRule || !httpRule {
		t.Errorf("networkpolicy.yaml: rules for metrics %v, http %v; want both", metricsRule, httpRule)
	}
}

// TestProbes: the Kubernetes probes and Caddy's health check name GET routes of internal/api/routes.go;
// readiness is /readyz (it pings the database), liveness /healthz (it does not).
func TestProbes(t *testing.T) {
	routes := getRoutes(t)
	c := kubernetes(t).container(t)
	probes := map[string]*probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe, "startup": c.StartupProbe}
	want := map[string]string{"readiness": "/readyz", "liveness": "/healthz", "startup": "/healthz"}
	for kind, p := range probes {
		if p == nil || p.HTTPGet == nil {
			t.Errorf("deployment.yaml: no %s probe with httpGet", kind)
			continue
		}
		if p.HTTPGet.Path != want[kind] {
			t.Errorf("%s probe path %s; want %s", kind, p.HTTPGet.Path, want[kind])
		}
		if !routes[p.HTTPGet.Path] {
			t.Errorf("%s probe path %s is not a GET route in internal/api/routes.go", kind, p.HTTPGet.Path)
		}
		if p.HTTPGet.Port != "http" {
			t.Errorf("%s probe port %q; want http", kind, p.HTTPGet.Port)
		}
	}
	m := regexp.MustCompile(`health_uri\s+(\S+)`).FindStringSubmatch(readString(t, "caddy/Caddyfile"))
	if m == nil || m[1] != "/readyz" {
		t.Errorf("Caddyfile health_uri %v; want /readyz", m)
	} else if !routes[m[1]] {
		t.Errorf("Caddyfile health_uri %s is not a GET route", m[1])
	}
}

// TestDockerfile: a multi-stage static build, a final stage that runs as a non-root user, and a HEALTHCHECK
// run by the binary itself (the image has no shell).
func TestDockerfile(t *testing.T) {
	d := dockerfile(t)
	if d.stages < 2 {
		t.Errorf("Dockerfile has %d stages; want a build stage and a final one", d.stages)
	}
	if u := strings.Split(d.user, ":")[0]; u == "" || u == "root" || u == "0" {
		t.Errorf("final stage USER %q; want a non-root user", d.user)
	}
	var cmd []string
	if err := json.Unmarshal([]byte(strings.TrimSpace(strings.TrimPrefix(d.healthcheck, "CMD"))), &cmd); err != nil ||
		!strings.HasPrefix(d.healthcheck, "CMD [") {
		t.Fatalf("HEALTHCHECK %q: want CMD in exec form (no shell in the image)", d.healthcheck)
	}
	if len(cmd) != 2 || cmd[0] != d.entrypoint || cmd[1] != "healthcheck" {
		t.Errorf("HEALTHCHECK runs %q; want [%s healthcheck]", cmd, d.entrypoint)
	}
	build := readString(t, "Dockerfile")
	for _, s := range []string{"CGO_ENABLED=0", "-trimpath", `-ldflags "-s -w"`, "--mount=type=cache"} {
		if !strings.Contains(build, s) {
			t.Errorf("Dockerfile build stage lacks %s", s)
		}
	}
	if _, err := os.Stat("Dockerfile.dockerignore"); err != nil {
		t.Error(err)
	}
}

// TestHealthcheckSubcommand: the image's HEALTHCHECK needs `authgql healthcheck` (GET /healthz on the local
// port, exit 0 on 200). The root package must handle that argument.
func TestHealthcheckSubcommand(t *testing.T) {
	files, err := filepath.Glob("../*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		if found := stringLiterals(t, f)["healthcheck"]; found {
			return
		}
	}
	t.Error(`no "healthcheck" subcommand in the server's package main: deploy/Dockerfile's HEALTHCHECK runs ` +
		`["/authgql", "healthcheck"], which must exit 0 when GET http://127.0.0.1:$PORT/healthz answers 200`)
}

// TestCompose: the replica set, its initiation, and the servers' settings that make it one.
func TestCompose(t *testing.T) {
	c := compose(t)
	servers := composeServers(t)
	if len(servers) < 2 {
		t.Fatalf("compose.yaml has %d server services; want 2 or more", len(servers))
	}
	var members []string
	for name, s := range c.Services {
		if strings.HasPrefix(s.Image, "mongo:") && slices.Contains(s.Command, "--replSet") {
			if i := slices.Index(s.Command, "--replSet"); i+1 >= len(s.Command) || s.Command[i+1] != "rs0" {
				t.Errorf("service %s: --replSet %v; want rs0", name, s.Command)
			}
			members = append(members, name)
		}
	}
	if len(members) != 3 {
		t.Errorf("replica set members %v; want 3", members)
	}
	init, ok := c.Services["mongo-init"]
	if !ok || !strings.Contains(strings.Join(init.Command, " "), "rs.initiate(") {
		t.Error(`compose.yaml: want a one-shot "mongo-init" service running rs.initiate`)
	}
	caddy, ok := c.Services["caddy"]
	if !ok {
		t.Fatal("compose.yaml: no caddy service")
	}
	caddyAddr, err := netip.ParseAddr(caddy.Networks["edge"].IPv4Address)
	if err != nil {
		t.Fatalf("caddy's edge address: %v", err)
	}
	for name, s := range servers {
		uri := s.env["MONGODB_URI"]
		if !strings.Contains(uri, "replicaSet=rs0") {
			t.Errorf("service %s MONGODB_URI %q: want replicaSet=rs0", name, uri)
		}
		for _, m := range members {
			if !strings.Contains(uri, m+":27017") {
				t.Errorf("service %s MONGODB_URI %q: want member %s", name, uri, m)
			}
		}
		if s.env["APP_ENV"] != "production" {
			t.Errorf("service %s APP_ENV=%q; want production", name, s.env["APP_ENV"])
		}
		if !strings.HasPrefix(s.env["SMTP_URL"], "smtp://mailpit:") {
			t.Errorf("service %s SMTP_URL=%q; want Mailpit", name, s.env["SMTP_URL"])
		}
		var trusted bool
		for _, p := range strings.Split(s.env["TRUSTED_PROXIES"], ",") {
			if pfx, err := netip.ParsePrefix(strings.TrimSpace(p)); err == nil && pfx.Contains(caddyAddr) {
				trusted = true
			}
		}
		if !trusted {
			t.Errorf("service %s TRUSTED_PROXIES=%q does not include Caddy's %s", name, s.env["TRUSTED_PROXIES"], caddyAddr)
		}
		if !slices.Contains(s.networkNames(), "edge") || !slices.Contains(s.networkNames(), "backend") {
			t.Errorf("service %s networks %v; want edge and backend", name, s.networkNames())
		}
	}
	edge := c.Networks["edge"]
	if len(edge.IPAM.Config) == 0 {
		t.Fatal("compose.yaml: the edge network has no fixed subnet")
	}
	subnet, err := netip.ParsePrefix(edge.IPAM.Config[0].Subnet)
	if err != nil || !subnet.Contains(caddyAddr) {
		t.Errorf("Caddy's %s is not in the edge subnet %q (%v)", caddyAddr, edge.IPAM.Config[0].Subnet, err)
	}
	if r, err := netip.ParsePrefix(edge.IPAM.Config[0].IPRange); err != nil || r.Contains(caddyAddr) {
		t.Errorf("edge ip_range %q must leave Caddy's fixed %s out of the addresses handed out (%v)",
			edge.IPAM.Config[0].IPRange, caddyAddr, err)
	}
	if !c.Networks["backend"].Internal {
		t.Error("compose.yaml: the backend network (MongoDB, metrics) must be internal")
	}

	// Grafana gets the datasource the dashboard names and the dashboard where the provider looks.
	g := c.Services["grafana"]
	var provider struct {
		Providers []struct {
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	decodeYAML(t, "grafana/provisioning/dashboards/authgql.yaml", &provider)
	if len(provider.Providers) != 1 {
		t.Fatalf("dashboards provider: %+v", provider)
	}
	wantMount := "./grafana/authgql.json:" + provider.Providers[0].Options.Path + "/authgql.json:ro"
	if !slices.Contains(g.Volumes, wantMount) {
		t.Errorf("grafana volumes %v; want %s", g.Volumes, wantMount)
	}
	if !slices.Contains(g.Volumes, "./grafana/provisioning:/etc/grafana/provisioning:ro") {
		t.Errorf("grafana volumes %v; want the provisioning directory", g.Volumes)
	}
	var ds struct {
		Datasources []struct {
			UID  string `yaml:"uid"`
			Type string `yaml:"type"`
			URL  string `yaml:"url"`
		} `yaml:"datasources"`
	}
	decodeYAML(t, "grafana/provisioning/datasources/prometheus.yaml", &ds)
	if len(ds.Datasources) != 1 || ds.Datasources[0].Type != "prometheus" || ds.Datasources[0].URL != "http://prometheus:9090" {
		t.Errorf("datasources %+v; want the compose Prometheus", ds.Datasources)
	} else if d := dashboard(t); d.defaultDatasource() != ds.Datasources[0].UID {
		t.Errorf("the dashboard's default datasource %q is not the provisioned uid %q", d.defaultDatasource(), ds.Datasources[0].UID)
	}
	if p := c.Services["prometheus"]; !slices.Contains(p.Volumes, "./prometheus:/etc/prometheus:ro") {
		t.Errorf("prometheus volumes %v; want ./prometheus mounted at /etc/prometheus", p.Volumes)
	}
}

// TestKubernetes: the shape issue 16 asks of the manifests.
func TestKubernetes(t *testing.T) {
	k := kubernetes(t)
	if k.deployment.Spec.Replicas < 2 {
		t.Errorf("replicas %d; want 2 or more", k.deployment.Spec.Replicas)
	}
	c := k.container(t)
	for _, r := range []string{"cpu", "memory"} {
		if c.Resources.Requests[r] == "" || c.Resources.Limits[r] == "" {
			t.Errorf("container resources %+v: want requests and limits of %s", c.Resources, r)
		}
	}
	var memlimit bool
	for _, e := range c.Env {
		if e.Name == "GOMEMLIMIT" {
			f := e.ValueFrom
			// Divisor 1: a plain number of bytes, which is how Go reads a GOMEMLIMIT without a unit.
			memlimit = f != nil && f.ResourceFieldRef != nil && f.ResourceFieldRef.Resource == "limits.memory" &&
				f.ResourceFieldRef.Divisor == "1" && f.ResourceFieldRef.ContainerName == c.Name
		}
		if f := e.ValueFrom; f != nil && f.SecretKeyRef != nil {
			if f.SecretKeyRef.Name != k.secret.Metadata.Name {
				t.Errorf("env %s from Secret %q; want %q", e.Name, f.SecretKeyRef.Name, k.secret.Metadata.Name)
			} else if _, ok := k.secret.StringData[f.SecretKeyRef.Key]; !ok {
				t.Errorf("env %s from key %s, which secret.yaml lacks", e.Name, f.SecretKeyRef.Key)
			}
		}
	}
	if !memlimit {
		t.Error("GOMEMLIMIT: want resourceFieldRef limits.memory with divisor 1 from this container")
	}
	for _, name := range []string{"JWT_SECRET", "MONGODB_URI"} {
		if _, ok := k.configMap.Data[name]; ok {
			t.Errorf("configmap.yaml holds %s: it belongs in the Secret", name)
		}
		if _, ok := k.secret.StringData[name]; !ok {
			t.Errorf("secret.yaml lacks %s", name)
		}
	}
	var fromConfigMap bool
	for _, e := range c.EnvFrom {
		fromConfigMap = fromConfigMap || e.ConfigMapRef != nil && e.ConfigMapRef.Name == k.configMap.Metadata.Name
	}
	if !fromConfigMap {
		t.Error("the container does not read the ConfigMap (envFrom)")
	}
	sc, psc := c.SecurityContext, k.deployment.Spec.Template.Spec.SecurityContext
	if sc == nil || psc == nil || !psc.RunAsNonRoot || !sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil ||
		*sc.AllowPrivilegeEscalation || sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []string{"ALL"}) {
		t.Errorf("securityContext pod %+v, container %+v; want runAsNonRoot, readOnlyRootFilesystem, "+
			"allowPrivilegeEscalation false, drop ALL", psc, sc)
	}
	if k.hpa.Spec.ScaleTargetRef.Name != k.deployment.Metadata.Name || k.hpa.Spec.MinReplicas < 2 {
		t.Errorf("hpa.yaml: %+v; want the Deployment, at least 2 replicas", k.hpa.Spec)
	}
	var cpu bool
	for _, m := range k.hpa.Spec.Metrics {
		cpu = cpu || m.Resource != nil && m.Resource.Name == "cpu"
	}
	if !cpu {
		t.Error("hpa.yaml: want a CPU metric")
	}
	labels := k.deployment.Spec.Template.Metadata.Labels
	for what, sel := range map[string]map[string]string{
		"deployment selector": k.deployment.Spec.Selector.MatchLabels,
		"pdb selector":        k.pdb.Spec.Selector.MatchLabels,
		"networkpolicy":       k.networkPolicy.Spec.PodSelector.MatchLabels,
		"service authgql":     k.service("authgql").Spec.Selector,
		"service metrics":     k.service("authgql-metrics").Spec.Selector,
	} {
		if len(sel) == 0 {
			t.Errorf("%s selects every pod", what)
		}
		for key, v := range sel {
			if labels[key] != v {
				t.Errorf("%s %v does not select the pods (%v)", what, sel, labels)
			}
		}
	}
	var kust struct {
		Resources []string `yaml:"resources"`
	}
	decodeYAML(t, "kubernetes/kustomization.yaml", &kust)
	files, _ := filepath.Glob("kubernetes/*.yaml")
	for _, f := range files {
		if b := filepath.Base(f); b != "kustomization.yaml" && !slices.Contains(kust.Resources, b) {
			t.Errorf("kustomization.yaml does not list %s", b)
		}
	}
}

// TestPromQL: the alert rules and the dashboard use only exported metric families (histograms through
// _bucket, _sum or _count), the rules issue 16 asks for exist, and every expression's brackets balance.
// promtool checks the rules' PromQL itself where it builds (make check-deploy).
func TestPromQL(t *testing.T) {
	var rules struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				For         string            `yaml:"for"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	decodeYAML(t, "prometheus/alerts.yml", &rules)
	alerts := map[string]string{}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if _, dup := alerts[r.Alert]; dup || r.Alert == "" {
				t.Errorf("alert %q: empty or twice", r.Alert)
			}
			alerts[r.Alert] = r.Expr
			if r.For == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("alert %s: want for, labels.severity and annotations.summary", r.Alert)
			}
			checkExpr(t, "alerts.yml "+r.Alert, r.Expr)
		}
	}
	for name, parts := range map[string][]string{
		"AuthgqlLoginFailureRatioHigh": {"authgql_logins_total", `outcome=~"invalid_credentials`},
		"AuthgqlHashingRefusals":       {"authgql_hash_refusals_total"},
		"AuthgqlRevocationSyncLag":     {"authgql_revocation_sync_lag_seconds", "> 2"},
		"AuthgqlNotReady":              {"authgql_readiness == 0", `up{job="authgql"} == 0`},
		"AuthgqlRevocationSyncErrors":  {"authgql_revocation_sync_errors_total"},
	} {
		for _, p := range parts {
			if !strings.Contains(alerts[name], p) {
				t.Errorf("alert %s: expr %q lacks %q", name, alerts[name], p)
			}
		}
	}

	d := dashboard(t)
	used := map[string]bool{}
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("dashboard: panel id %d twice", p.ID)
		}
		ids[p.ID] = true
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("dashboard panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			checkExpr(t, "dashboard "+p.Title, tg.Expr)
			for _, m := range metricRE.FindAllString(tg.Expr, -1) {
				used[familyOf(m)] = true
			}
		}
	}
	for _, v := range d.Templating.List {
		if v.Definition != "" {
			checkExpr(t, "dashboard variable "+v.Name, v.Definition)
		}
	}
	// What the issue asks the dashboard to show.
	for _, m := range []string{
		"authgql_logins_total", "authgql_http_request_duration_seconds", "authgql_graphql_operation_duration_seconds",
		"authgql_hash_slots_in_use", "authgql_hash_slots", "authgql_hash_refusals_total", "authgql_hash_wait_seconds",
		"authgql_revocation_sync_lag_seconds", "authgql_mongodb_command_duration_seconds",
		"authgql_websocket_connections", "authgql_mail_outbox_depth",
	} {
		if !used[m] {
			t.Errorf("the dashboard does not show %s", m)
		}
	}
}

var metricRE = regexp.MustCompile(`\bauthgql_[a-z0-9_]+`)

// checkExpr reports unknown authgql_ metric names and unbalanced brackets in one PromQL expression.
func checkExpr(t *testing.T, where, expr string) {
	t.Helper()
	if strings.TrimSpace(expr) == "" {
		t.Errorf("%s: empty expression", where)
		return
	}
	for _, m := range metricRE.FindAllString(expr, -1) {
		fam := familyOf(m)
		typ, ok := exportedMetrics[fam]
		switch {
		case !ok:
			t.Errorf("%s uses %s, which the server does not export", where, m)
		case typ == "histogram" && fam == m:
			t.Errorf("%s uses the histogram %s without _bucket, _sum or _count", where, m)
		case typ != "histogram" && fam != m:
			t.Errorf("%s uses %s, but %s is a %s", where, m, fam, typ)
		}
	}
	var stack []rune
	pairs := map[rune]rune{')': '(', ']': '[', '}': '{'}
	inString := false
	for _, r := range expr {
		switch {
		case r == '"':
			inString = !inString
		case inString:
		case r == '(' || r == '[' || r == '{':
			stack = append(stack, r)
		case pairs[r] != 0:
			if len(stack) == 0 || stack[len(stack)-1] != pairs[r] {
				t.Errorf("%s: unbalanced %q in %s", where, r, expr)
				return
			}
			stack = stack[:len(stack)-1]
		}
	}
	if len(stack) > 0 || inString {
		t.Errorf("%s: unclosed brackets or string in %s", where, expr)
	}
}

// familyOf strips a histogram series suffix when the rest is an exported histogram.
func familyOf(name string) string {
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && exportedMetrics[base] == "histogram" {
			return base
		}
	}
	return name
}

func checkMetricsAddr(t *testing.T, where, addr string) {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil || port != strconv.Itoa(metricsPort) {
		t.Errorf("%s METRICS_ADDR=%q; want host:%d (%v)", where, addr, metricsPort, err)
	}
}

// --- what the server knows, read from its source ---

// serverEnv is every variable name the server reads: the config parser's calls (p.str("NAME", ...), ...) and
// getenv("NAME") in internal/config and package main.
func serverEnv(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	nameRE := regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)
	files, _ := filepath.Glob("../internal/config/*.go")
	root, _ := filepath.Glob("../*.go")
	for _, f := range append(files, root...) {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		ast.Inspect(parseGo(t, f), func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			var reader bool
			switch fn := call.Fun.(type) {
			case *ast.Ident:
				reader = fn.Name == "getenv"
			case *ast.SelectorExpr:
				x, _ := fn.X.(*ast.Ident)
				reader = x != nil && (x.Name == "p" || x.Name == "os" && (fn.Sel.Name == "Getenv" || fn.Sel.Name == "LookupEnv"))
			}
			if lit, ok := call.Args[0].(*ast.BasicLit); reader && ok && lit.Kind == token.STRING {
				if s, err := strconv.Unquote(lit.Value); err == nil && nameRE.MatchString(s) {
					names[s] = true
				}
			}
			return true
		})
	}
	for _, must := range []string{"PORT", "MONGODB_URI", "JWT_SECRET", "APP_ENV"} {
		if !names[must] {
			t.Fatalf("found %d variables in the server's source, not %s: the parsing is out of date", len(names), must)
		}
	}
	return names
}

// documentedEnv is the first column of docs/configuration.md's tables.
func documentedEnv(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([A-Z][A-Z0-9_]*)` \\|").FindAllStringSubmatch(readString(t, "../docs/configuration.md"), -1) {
		names[m[1]] = true
	}
	if len(names) < 20 {
		t.Fatalf("docs/configuration.md: found %d variables in its tables", len(names))
	}
	return names
}

// defaultPort is PORT's default in config.Load: the second argument of p.intRange("PORT", ...).
func defaultPort(t *testing.T) int {
	t.Helper()
	port := 0
	ast.Inspect(parseGo(t, "../internal/config/config.go"), func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok || len(call.Args) < 2 {
			return true
		}
		if sel, ok := call.Fun.(*ast.SelectorExpr); !ok || sel.Sel.Name != "intRange" {
			return true
		}
		if lit, ok := call.Args[0].(*ast.BasicLit); ok && lit.Value == `"PORT"` {
			if d, ok := call.Args[1].(*ast.BasicLit); ok {
				port, _ = strconv.Atoi(d.Value)
			}
		}
		return true
	})
	if port == 0 {
		t.Fatal(`p.intRange("PORT", <default>, ...) not found in internal/config/config.go`)
	}
	return port
}

// getRoutes are the paths of the GET routes in internal/api/routes.go ("GET /healthz" → /healthz).
func getRoutes(t *testing.T) map[string]bool {
	t.Helper()
	routes := map[string]bool{}
	for s := range stringLiterals(t, "../internal/api/routes.go") {
		if path, ok := strings.CutPrefix(s, "GET "); ok {
			routes[path] = true
		}
	}
	if len(routes) == 0 {
		t.Fatal("no GET routes found in internal/api/routes.go")
	}
	return routes
}

func stringLiterals(t *testing.T, path string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	ast.Inspect(parseGo(t, path), func(n ast.Node) bool {
		if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
			if s, err := strconv.Unquote(lit.Value); err == nil {
				out[s] = true
			}
		}
		return true
	})
	return out
}

func parseGo(t *testing.T, path string) *ast.File {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// --- the Dockerfile ---

type dockerFile struct {
	stages      int
	user        string // of the final stage
	healthcheck string // its CMD part
	entrypoint  string // the exec-form ENTRYPOINT's program
	expose      []int
	env         map[string]string // ENV of the final stage
}

func dockerfile(t *testing.T) dockerFile {
	t.Helper()
	d := dockerFile{env: map[string]string{}}
	// Join continuation lines, drop comments.
	text := regexp.MustCompile(`\\\n\s*`).ReplaceAllString(readString(t, "Dockerfile"), " ")
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		instr, rest, _ := strings.Cut(line, " ")
		rest = strings.TrimSpace(rest)
		switch strings.ToUpper(instr) {
		case "FROM":
			d.stages++
			d.user, d.healthcheck, d.entrypoint, d.expose, d.env = "", "", "", nil, map[string]string{}
		case "USER":
			d.user = rest
		case "HEALTHCHECK":
			if i := strings.Index(rest, "CMD"); i >= 0 {
				d.healthcheck = rest[i:]
			}
		case "ENTRYPOINT":
			var args []string
			if err := json.Unmarshal([]byte(rest), &args); err != nil || len(args) == 0 {
				t.Fatalf("Dockerfile ENTRYPOINT %q: want the exec form", rest)
			}
			d.entrypoint = args[0]
		case "EXPOSE":
			for _, p := range strings.Fields(rest) {
				n, err := strconv.Atoi(strings.TrimSuffix(p, "/tcp"))
				if err != nil {
					t.Fatalf("Dockerfile EXPOSE %q", p)
				}
				d.expose = append(d.expose, n)
			}
		case "ENV":
			for _, kv := range strings.Fields(rest) {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					t.Fatalf("Dockerfile ENV %q: want KEY=value", rest)
				}
				d.env[k] = v
			}
		}
	}
	return d
}

// --- compose.yaml ---

type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Networks map[string]struct {
		Internal bool `yaml:"internal"`
		IPAM     struct {
			Config []struct {
				Subnet  string `yaml:"subnet"`
				IPRange string `yaml:"ip_range"`
			} `yaml:"config"`
		} `yaml:"ipam"`
	} `yaml:"networks"`
}

type composeService struct {
	Image string `yaml:"image"`
	Build struct {
		Dockerfile string `yaml:"dockerfile"`
	} `yaml:"build"`
	Command     []string       `yaml:"command"`
	Environment map[string]any `yaml:"environment"`
	Ports       []string       `yaml:"ports"`
	Volumes     []string       `yaml:"volumes"`
	// Networks is a list of names or a map of name → settings.
	RawNetworks any `yaml:"networks"`
	Networks    map[string]struct {
		IPv4Address string `yaml:"ipv4_address"`
	} `yaml:"-"`
}

func (s composeService) networkNames() []string {
	var out []string
	switch n := s.RawNetworks.(type) {
	case []any:
		for _, v := range n {
			out = append(out, fmt.Sprint(v))
		}
	case map[string]any:
		out = keys(n)
	}
	return out
}

// server is a compose service that runs the server image.
type server struct {
	env   map[string]string
	ports []string
	composeService
}

func compose(t *testing.T) composeFile {
	t.Helper()
	var c composeFile
	decodeYAML(t, "compose.yaml", &c)
	for name, s := range c.Services {
		if m, ok := s.RawNetworks.(map[string]any); ok {
			b, _ := yaml.Marshal(m)
			if err := yaml.Unmarshal(b, &s.Networks); err != nil {
				t.Fatalf("compose.yaml service %s networks: %v", name, err)
			}
			c.Services[name] = s
		}
	}
	return c
}

func composeServers(t *testing.T) map[string]server {
	t.Helper()
	out := map[string]server{}
	for name, s := range compose(t).Services {
		if s.Build.Dockerfile != "deploy/Dockerfile" {
			continue
		}
		env := map[string]string{}
		for k, v := range s.Environment {
			env[k] = fmt.Sprint(v)
		}
		out[name] = server{env: env, ports: s.Ports, composeService: s}
	}
	return out
}

var interpolation = regexp.MustCompile(`\$\{([A-Z0-9_]+)(:?[-?])([^}]*)\}`)

// interpolate resolves compose's ${VAR:-default} to the default and ${VAR:?message} to a value that passes
// the server's checks (a secret of the minimum length).
func interpolate(t *testing.T, v string) string {
	t.Helper()
	return interpolation.ReplaceAllStringFunc(v, func(m string) string {
		g := interpolation.FindStringSubmatch(m)
		if strings.HasSuffix(g[2], "?") {
			if g[1] != "JWT_SECRET" {
				t.Errorf("compose requires %s from the environment: give the test a value for it", g[1])
			}
			return strings.Repeat("x", authtoken.MinSecretBytes)
		}
		return g[3]
	})
}

// --- Kubernetes ---

type meta struct {
	Name      string            `yaml:"name"`
	Namespace string            `yaml:"namespace"`
	Labels    map[string]string `yaml:"labels"`
}

type probe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"`
	} `yaml:"httpGet"`
}

type container struct {
	Name  string `yaml:"name"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	EnvFrom []struct {
		ConfigMapRef *struct {
			Name string `yaml:"name"`
		} `yaml:"configMapRef"`
	} `yaml:"envFrom"`
	Env []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"secretKeyRef"`
			ResourceFieldRef *struct {
				ContainerName string `yaml:"containerName"`
				Resource      string `yaml:"resource"`
				Divisor       string `yaml:"divisor"`
			} `yaml:"resourceFieldRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	Resources struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	StartupProbe    *probe `yaml:"startupProbe"`
	ReadinessProbe  *probe `yaml:"readinessProbe"`
	LivenessProbe   *probe `yaml:"livenessProbe"`
	SecurityContext *struct {
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   bool  `yaml:"readOnlyRootFilesystem"`
		Capabilities             *struct {
			Drop []string `yaml:"drop"`
		} `yaml:"capabilities"`
	} `yaml:"securityContext"`
}

type kubeService struct {
	Metadata meta `yaml:"metadata"`
	Spec     struct {
		Selector map[string]string `yaml:"selector"`
		Ports    []struct {
			Name       string `yaml:"name"`
			Port       int    `yaml:"port"`
			TargetPort string `yaml:"targetPort"`
		} `yaml:"ports"`
	} `yaml:"spec"`
}

type selector struct {
	MatchLabels map[string]string `yaml:"matchLabels"`
}

type manifests struct {
	deployment struct {
		Metadata meta `yaml:"metadata"`
		Spec     struct {
			Replicas int      `yaml:"replicas"`
			Selector selector `yaml:"selector"`
			Template struct {
				Metadata meta `yaml:"metadata"`
				Spec     struct {
					SecurityContext *struct {
						RunAsNonRoot bool `yaml:"runAsNonRoot"`
					} `yaml:"securityContext"`
					Containers []container `yaml:"containers"`
				} `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	configMap struct {
		Metadata meta              `yaml:"metadata"`
		Data     map[string]string `yaml:"data"`
	}
	secret struct {
		Metadata   meta              `yaml:"metadata"`
		StringData map[string]string `yaml:"stringData"`
		Data       map[string]string `yaml:"data"`
	}
	services []kubeService
	pdb      struct {
		Spec struct {
			Selector selector `yaml:"selector"`
		} `yaml:"spec"`
	}
	hpa struct {
		Spec struct {
			ScaleTargetRef struct {
				Name string `yaml:"name"`
			} `yaml:"scaleTargetRef"`
			MinReplicas int `yaml:"minReplicas"`
			Metrics     []struct {
				Resource *struct {
					Name string `yaml:"name"`
				} `yaml:"resource"`
			} `yaml:"metrics"`
		} `yaml:"spec"`
	}
	networkPolicy struct {
		Spec struct {
			PodSelector selector `yaml:"podSelector"`
			Ingress     []struct {
				From []struct {
					NamespaceSelector *selector `yaml:"namespaceSelector"`
					PodSelector       *selector `yaml:"podSelector"`
				} `yaml:"from"`
				Ports []struct {
					Port int `yaml:"port"`
				} `yaml:"ports"`
			} `yaml:"ingress"`
		} `yaml:"spec"`
	}
}

func (k manifests) container(t *testing.T) container {
	t.Helper()
	cs := k.deployment.Spec.Template.Spec.Containers
	if len(cs) != 1 {
		t.Fatalf("deployment.yaml: %d containers; want 1", len(cs))
	}
	return cs[0]
}

func (k manifests) service(name string) kubeService {
	for _, s := range k.services {
		if s.Metadata.Name == name {
			return s
		}
	}
	return kubeService{}
}

// kubernetes reads every manifest under kubernetes/, one object per YAML document, by kind.
func kubernetes(t *testing.T) manifests {
	t.Helper()
	var k manifests
	seen := map[string]int{}
	files, _ := filepath.Glob("kubernetes/*.yaml")
	for _, f := range files {
		docs, err := yamlDocs(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range docs {
			var head struct {
				Kind     string `yaml:"kind"`
				Metadata meta   `yaml:"metadata"`
			}
			mustUnmarshal(t, f, doc, &head)
			if head.Kind != "Kustomization" && head.Kind != "Namespace" && head.Metadata.Namespace != "authgql" {
				t.Errorf("%s: %s %s is not in the authgql namespace", f, head.Kind, head.Metadata.Name)
			}
			seen[head.Kind]++
			switch head.Kind {
			case "Deployment":
				mustUnmarshal(t, f, doc, &k.deployment)
			case "ConfigMap":
				mustUnmarshal(t, f, doc, &k.configMap)
			case "Secret":
				mustUnmarshal(t, f, doc, &k.secret)
			case "Service":
				var s kubeService
				mustUnmarshal(t, f, doc, &s)
				k.services = append(k.services, s)
			case "PodDisruptionBudget":
				mustUnmarshal(t, f, doc, &k.pdb)
			case "HorizontalPodAutoscaler":
				mustUnmarshal(t, f, doc, &k.hpa)
			case "NetworkPolicy":
				mustUnmarshal(t, f, doc, &k.networkPolicy)
			}
		}
	}
	for _, kind := range []string{"Deployment", "ConfigMap", "Secret", "PodDisruptionBudget", "HorizontalPodAutoscaler", "NetworkPolicy"} {
		if seen[kind] != 1 {
			t.Fatalf("deploy/kubernetes has %d %s; want 1", seen[kind], kind)
		}
	}
	if seen["Service"] < 1 {
		t.Fatal("deploy/kubernetes has no Service")
	}
	return k
}

// kubernetesEnv is what each manifest sets in the server's environment: the ConfigMap's keys, the
// Deployment's env names.
func kubernetesEnv(t *testing.T) map[string][]string {
	t.Helper()
	k := kubernetes(t)
	var env []string
	for _, e := range k.container(t).Env {
		env = append(env, e.Name)
	}
	return map[string][]string{"configmap.yaml": keys(k.configMap.Data), "deployment.yaml": env}
}

// --- the dashboard ---

type grafanaDashboard struct {
	Panels []struct {
		ID      int    `json:"id"`
		Type    string `json:"type"`
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
	Templating struct {
		List []struct {
			Name       string `json:"name"`
			Type       string `json:"type"`
			Definition string `json:"definition"`
			Current    struct {
				Value any `json:"value"`
			} `json:"current"`
		} `json:"list"`
	} `json:"templating"`
}

func (d grafanaDashboard) defaultDatasource() string {
	for _, v := range d.Templating.List {
		if v.Type == "datasource" {
			return fmt.Sprint(v.Current.Value)
		}
	}
	return ""
}

func dashboard(t *testing.T) grafanaDashboard {
	t.Helper()
	var d grafanaDashboard
	if err := json.Unmarshal(readFile(t, "grafana/authgql.json"), &d); err != nil {
		t.Fatalf("grafana/authgql.json: %v", err)
	}
	return d
}

// --- helpers ---

// yamlDocs splits a YAML file into its documents, each decoded (so syntax errors and duplicate keys show)
// and re-encoded for typed decoding.
func yamlDocs(path string) ([][]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var docs [][]byte
	for {
		var v any
		if err := dec.Decode(&v); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if v == nil {
			continue
		}
		out, err := yaml.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		docs = append(docs, out)
	}
	if len(docs) == 0 {
		return nil, fmt.Errorf("%s: no YAML document", path)
	}
	return docs, nil
}

func decodeYAML(t *testing.T, path string, v any) {
	t.Helper()
	docs, err := yamlDocs(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 1 {
		t.Fatalf("%s: %d documents; want 1", path, len(docs))
	}
	mustUnmarshal(t, path, docs[0], v)
}

func mustUnmarshal(t *testing.T, path string, doc []byte, v any) {
	t.Helper()
	if err := yaml.Unmarshal(doc, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readString(t *testing.T, path string) string { return string(readFile(t, path)) }

func mapEnv(env map[string]string) func(string) string {
	return func(k string) string { return env[k] }
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
