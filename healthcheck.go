package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// healthcheck asks a running server's /healthz on this machine, for a
// container's HEALTHCHECK (the image has no shell or curl): it succeeds only
// on a 200 within 2 s. It reads HOST, PORT and TLS_CERT_FILE directly, not
// the whole configuration: a probe must not need the server's secrets.
func healthcheck(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	port := strings.TrimSpace(getenv("PORT"))
	if port == "" {
		port = "8080"
	}
	host := strings.TrimSpace(getenv("HOST"))
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	scheme := "http"
	client := &http.Client{Timeout: 2 * time.Second}
	if strings.TrimSpace(getenv("TLS_CERT_FILE")) != "" {
		scheme = "https"
		// The certificate names the public host, not 127.0.0.1.
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // a local liveness probe
	}
	url := scheme + "://" + net.JoinHostPort(host, port) + "/healthz"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	res, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %d", url, res.StatusCode)
	}
	fmt.Fprintln(stdout, "ok")
	return nil
}
