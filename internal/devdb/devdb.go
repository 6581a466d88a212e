// Package devdb runs an embedded MongoDB-compatible database (FerretDB on
// SQLite) inside the process, for development and tests.
package devdb

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// DB is a running embedded database.
type DB struct {
	dir    string // absolute; FerretDB keeps one SQLite file per database here
	uri    string
	cancel context.CancelFunc
	done   chan struct{}
}

// Start serves a database kept in dir on a free loopback port until Stop is
// called. logger receives FerretDB's own logs (it logs every failed command).
// Once the application has created its collections, call IndexIDs.
func Start(dir string, logger *slog.Logger) (*DB, error) {
	return StartOn("127.0.0.1:0", dir, logger)
}

// StartOn is Start on a given TCP address.
func StartOn(addr, dir string, logger *slog.Logger) (*DB, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("devdb: %w", err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("devdb: create data directory: %w", err)
	}
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: addr},
		Handler:   "sqlite",
		SQLiteURL: "file:" + abs + "/",
		Logger:    logger,
	})
	if err != nil {
		return nil, fmt.Errorf("devdb: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	db := &DB{dir: abs, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(db.done)
		_ = f.Run(ctx)
	}()
	db.uri = f.MongoDBURI() // waits until the listener is up
	return db, nil
}

// URI is the mongodb:// address of the database.
func (db *DB) URI() string { return db.uri }

// Stop shuts the database down and waits until its files are closed.
func (db *DB) Stop() {
	db.cancel()
	<-db.done
}
