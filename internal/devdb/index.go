package devdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	_ "modernc.org/sqlite" // the SQLite driver FerretDB itself uses
)

// FerretDB 1.24 keeps each collection in an SQLite table with one JSON column,
// _ferretdb_sjson, and indexes _id on _ferretdb_sjson->"_id". But its find by
// _id, and every update and delete (they rewrite documents by _id), filter on
// _ferretdb_sjson->'$._id' (metadata.IDColumn in its sqlite backend): the same
// value, yet SQLite uses an index on an expression only for that expression,
// so each of those lookups scans the whole table. An index on idExpr is one
// SQLite uses.
const (
	idExpr = `_ferretdb_sjson->'$._id'`

	// collectionsTable is where FerretDB lists the collections (and their
	// tables) of a database file.
	collectionsTable = "_ferretdb_collections"

	// indexPrefix starts the name of each index IndexIDs creates. FerretDB
	// names tables after collections, whose names cannot contain '$', and its
	// indexes <table>_<index name>: none of its names can start with '$'.
	indexPrefix = "$devdb_id_"
)

// IndexIDs gives every collection that exists now, in every database, an index
// that FerretDB's lookups by _id use: finds whose filter is exactly {_id: v}
// with a string or ObjectID v, and the writes of every update and delete.
// Without it each of them reads the whole collection.
//
// Call it after the collections exist, once per start: in the composition
// root, after the stores have created their indexes. It is idempotent, and
// cheap when the indexes are already there. A collection first created after
// the call is indexed by the next call (the next start); the indexes persist
// in the data directory.
//
// FerretDB does not know these indexes: listIndexes and collStats do not show
// them, and they go with their collection or database.
func (db *DB) IndexIDs(ctx context.Context) error {
	entries, err := os.ReadDir(db.dir)
	if err != nil {
		return fmt.Errorf("devdb: index _id: %w", err)
	}
	var errs []error
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sqlite") {
			continue
		}
		if err := indexIDs(ctx, filepath.Join(db.dir, e.Name())); err != nil {
			errs = append(errs, fmt.Errorf("devdb: index _id in %s: %w", e.Name(), err))
		}
	}
	return errors.Join(errs...)
}

// indexIDs indexes _id in every collection table of one database file, on a
// connection of its own next to FerretDB's.
func indexIDs(ctx context.Context, file string) error {
	// mode=rw never creates the file: a database dropped since the directory
	// was read must stay gone (FerretDB would not start with a file that lacks
	// its collections table). _txlock=immediate takes the write lock before
	// the list of tables is read, so FerretDB cannot drop one before it is
	// indexed; FerretDB's writers wait for it as they wait for each other, and
	// the busy timeout is FerretDB's own.
	dsn := (&url.URL{
		Scheme:   "file",
		Path:     file,
		RawQuery: "mode=rw&_txlock=immediate&_pragma=busy_timeout(10000)",
	}).String()
	conn, err := sql.Open("sqlite", dsn)
	if err != nil {
		return err
	}
	defer conn.Close()

	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		if _, statErr := os.Stat(file); errors.Is(statErr, fs.ErrNotExist) {
			return nil // dropped meanwhile
		}
		return err
	}
	defer func() { _ = tx.Rollback() }()

	// A file FerretDB has only just created may not have its table yet.
	var n int
	err = tx.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?`,
		collectionsTable).Scan(&n)
	if err != nil || n == 0 {
		return err
	}
	tables, err := collectionTables(ctx, tx)
	if err != nil {
		return err
	}
	for _, t := range tables {
		// Quoted with %q as FerretDB quotes its table names, so that this
		// reaches the very table its queries do.
		q := fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %q ON %q (%s)`, indexPrefix+t, t, idExpr)
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// collectionTables returns the table of each collection in a database file.
func collectionTables(ctx context.Context, tx *sql.Tx) ([]string, error) {
	rows, err := tx.QueryContext(ctx, fmt.Sprintf(`SELECT table_name FROM %q`, collectionsTable))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var tables []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			return nil, err
		}
		tables = append(tables, t)
	}
	return tables, rows.Err()
}
