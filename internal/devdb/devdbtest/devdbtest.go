// Package devdbtest gives a test package one embedded database, started in
// TestMain, and each test a fresh database of its own on it.
package devdbtest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/authgql/server/internal/devdb"
	"github.com/authgql/server/internal/mongodb"
)

// Server is a running embedded database with a connected client.
type Server struct {
	URI    string
	Client *mongo.Client
	dir    string
	db     *devdb.DB
	seq    atomic.Int64
}

// Start starts an embedded database in a temporary directory.
func Start() (*Server, error) {
	dir, err := os.MkdirTemp("", "authgql-test-db-")
	if err != nil {
		return nil, err
	}
	db, err := devdb.Start(dir, slog.New(slog.DiscardHandler))
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	client, err := mongodb.Connect(context.Background(), db.URI())
	if err != nil {
		db.Stop()
		os.RemoveAll(dir)
		return nil, err
	}
	return &Server{URI: db.URI(), Client: client, dir: dir, db: db}, nil
}

// Main runs a test package's tests against a Server started for them, then
// stops it and exits. Use it as TestMain's body.
func Main(m *testing.M, s **Server) {
	srv, err := Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "devdbtest:", err)
		os.Exit(1)
	}
	*s = srv
	code := m.Run()
	srv.Stop()
	os.Exit(code)
}

// Stop disconnects, stops the database and removes its files.
func (s *Server) Stop() {
	_ = s.Client.Disconnect(context.Background())
	s.db.Stop()
	os.RemoveAll(s.dir)
}

// Fresh returns a new, empty database, dropped when the test ends.
func (s *Server) Fresh(t testing.TB) *mongo.Database {
	t.Helper()
	db := s.Client.Database(fmt.Sprintf("t%d", s.seq.Add(1)))
	t.Cleanup(func() { _ = db.Drop(context.Background()) })
	return db
}
