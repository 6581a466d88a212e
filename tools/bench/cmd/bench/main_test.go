package main

import (
	"io"
	"path/filepath"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	none := func(string) string { return "" }
	tests := []struct {
		name  string
		args  []string
		check func(t *testing.T, got configView)
	}{
		{"full", nil, func(t *testing.T, got configView) {
			want := configView{15 * time.Second, 15 * time.Second, 3 * time.Minute, 20 * time.Second, 10000, filepath.Join("../..", "bench-results.json"), false}
			if got != want {
				t.Errorf("got %+v, want %+v", got, want)
			}
		}},
		{"short: short phases, no soak", []string{"-short"}, func(t *testing.T, got configView) {
			if got.phase != 3*time.Second || got.alg != 3*time.Second || got.soak != 0 || !got.short {
				t.Errorf("got %+v, want 3s phases, 3s per algorithm, no soak", got)
			}
		}},
		{"flags win over the mode", []string{"-short", "-soak", "40s", "-duration", "5s", "-alg-duration", "2s"}, func(t *testing.T, got configView) {
			if got.phase != 5*time.Second || got.soak != 40*time.Second || got.alg != 2*time.Second {
				t.Errorf("got %+v, want 5s phases, 2s per algorithm and a 40s soak", got)
			}
		}},
		{"no algorithms", []string{"-alg-duration", "0"}, func(t *testing.T, got configView) {
			if got.alg != 0 {
				t.Errorf("alg: got %s, want 0", got.alg)
			}
		}},
		{"results in the repository by default", []string{"-repo", "/src/authgql"}, func(t *testing.T, got configView) {
			if want := "/src/authgql/bench-results.json"; got.out != want {
				t.Errorf("out: got %q, want %q", got.out, want)
			}
		}},
		{"no results file", []string{"-out", "-"}, func(t *testing.T, got configView) {
			if got.out != "" {
				t.Errorf("out: got %q, want none", got.out)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parse(tt.args, none, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, configView{cfg.PhaseDuration, cfg.AlgDuration, cfg.Soak, cfg.SoakInterval, cfg.SoakSessions, cfg.Out, cfg.Short})
		})
	}
}

type configView struct {
	phase, alg, soak, interval time.Duration
	sessions                   int
	out                        string
	short                      bool
}

func TestParseRefuses(t *testing.T) {
	none := func(string) string { return "" }
	for _, args := range [][]string{
		{"-cost", "9"},
		{"-users", "0"},
		{"-soak", "-1s"},
		{"-alg-duration", "-1s"},
		{"-soak-interval", "0s"},
		{"-duration", "0s"},
		{"extra"},
	} {
		if _, err := parse(args, none, io.Discard); err == nil {
			t.Errorf("%v: got no error", args)
		}
	}
}

func TestParseSockets(t *testing.T) {
	none := func(string) string { return "" }
	tests := []struct {
		args        []string
		sockets     int
		idle        time.Duration
		socketsOnly bool
	}{
		{nil, 5000, 5 * time.Second, false},
		{[]string{"-short"}, 500, 3 * time.Second, false},
		{[]string{"-short", "-sockets", "2000"}, 2000, 3 * time.Second, false},
		{[]string{"-sockets", "0"}, 0, 5 * time.Second, false},
		{[]string{"-sockets-only", "-sockets-idle", "10s"}, 5000, 10 * time.Second, true},
	}
	for _, tt := range tests {
		cfg, err := parse(tt.args, none, io.Discard)
		if err != nil {
			t.Fatalf("%v: %v", tt.args, err)
		}
		if cfg.Sockets != tt.sockets || cfg.SocketsIdle != tt.idle || cfg.SocketsOnly != tt.socketsOnly {
			t.Errorf("%v: got %d sockets idle %s, only %v; want %d, %s, %v", tt.args, cfg.Sockets, cfg.SocketsIdle,
				cfg.SocketsOnly, tt.sockets, tt.idle, tt.socketsOnly)
		}
	}
	for _, args := range [][]string{{"-sockets", "-1"}, {"-sockets-only", "-sockets", "0"}, {"-sockets-idle", "0s"}} {
		if _, err := parse(args, none, io.Discard); err == nil {
			t.Errorf("%v: got no error", args)
		}
	}
}
