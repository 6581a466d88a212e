package main

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
)

// The container's HEALTHCHECK: `authgql healthcheck` succeeds against a
// serving instance and fails when nothing answers, without the server's
// configuration (no secret, no database).
func TestHealthcheckCommand(t *testing.T) {
	base, _, stop := start(t, map[string]string{"PORT": "0", "HOST": "127.0.0.1", "DATA_DIR": t.TempDir(), "BCRYPT_COST": "10"})
	defer func() { _ = stop() }()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(base, "http://"))
	var out bytes.Buffer
	for _, host := range []string{"", "0.0.0.0", "127.0.0.1"} {
		out.Reset()
		err := run(context.Background(), []string{"authgql", "healthcheck"}, fakeEnv(map[string]string{"PORT": port, "HOST": host}), &out, &out)
		if err != nil || strings.TrimSpace(out.String()) != "ok" {
			t.Errorf("healthcheck with HOST=%q: %v %q", host, err, out.String())
		}
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0") // a port where nothing serves HTTP... once closed
	_, closedPort, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	if err := run(context.Background(), []string{"authgql", "healthcheck"}, fakeEnv(map[string]string{"PORT": closedPort}), &out, &out); err == nil {
		t.Error("healthcheck of a port where nothing listens succeeded")
	}
}
