package bench

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"
)

// The bench is a module of its own and cannot import the server's internal
// packages: it reaches the server's database with the driver, writing
// documents of the stored shapes of internal/mongodb (user.go's userDoc,
// session.go's sessionDoc). The field names must stay identical to those.

// userDoc is the stored shape of a user.
type userDoc struct {
	ID           bson.ObjectID `bson:"_id"`
	Username     string        `bson:"username"`
	Email        string        `bson:"email"`
	UsernameKey  string        `bson:"username_key"`
	EmailKey     string        `bson:"email_key"`
	PasswordHash []byte        `bson:"password_hash"`
	CreatedAt    time.Time     `bson:"created_at"`
	Roles        []string      `bson:"roles"`
	Disabled     bool          `bson:"disabled"`
	CredStamp    string        `bson:"cred_stamp"`
}

// sessionDoc is the stored shape of a session.
type sessionDoc struct {
	ID            string     `bson:"_id"`
	UserID        string     `bson:"user_id"`
	TokenHash     string     `bson:"token_hash"`
	PrevHash      string     `bson:"prev_hash"`
	RotatedAt     time.Time  `bson:"rotated_at"`
	CreatedAt     time.Time  `bson:"created_at"`
	LastUsedAt    time.Time  `bson:"last_used_at"`
	ExpiresAt     time.Time  `bson:"expires_at"`
	UserAgent     string     `bson:"user_agent,omitempty"`
	IP            string     `bson:"ip,omitempty"`
	RevokedAt     *time.Time `bson:"revoked_at"` // null while active
	RevokedReason string     `bson:"revoked_reason,omitempty"`
	CredStamp     string     `bson:"cred_stamp"`
}

// connect opens a client with the server's options (internal/mongodb's
// Connect), so that point reads go through the driver as the server's do.
func connect(ctx context.Context, uri string) (*mongo.Client, error) {
	journal := true
	opts := options.Client().
		SetServerSelectionTimeout(5 * time.Second).
		SetTimeout(10 * time.Second).
		ApplyURI(uri).
		SetWriteConcern(&writeconcern.WriteConcern{W: writeconcern.WCMajority, Journal: &journal})
	client, err := mongo.Connect(opts)
	if err != nil {
		return nil, fmt.Errorf("connect to the database: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := client.Ping(pingCtx, readpref.Primary()); err != nil {
		_ = client.Disconnect(context.Background())
		return nil, fmt.Errorf("ping the database: %w", err)
	}
	return client, nil
}

// serverDB is the database the server uses, opened by the bench while the
// server is not running: to seed it and to measure point reads on it, so that
// the ceiling and the server's phases see the same collections.
type serverDB struct {
	client *mongo.Client
	db     *mongo.Database
	stop   func() // the embedded database, if the bench started it
}

// openServerDB opens the MONGODB_URI database name, or starts the embedded
// database in the server's data directory (the server reopens the same files
// once this one is closed: it must be closed before the server starts).
func openServerDB(ctx context.Context, mongoURI, dataDir, name string) (*serverDB, error) {
	uri, stop := mongoURI, func() {}
	if uri == "" {
		var err error
		if uri, stop, err = startEmbedded(filepath.Join(dataDir, "db")); err != nil {
			return nil, err
		}
	}
	client, err := connect(ctx, uri)
	if err != nil {
		stop()
		return nil, err
	}
	return &serverDB{client: client, db: client.Database(name), stop: stop}, nil
}

func (s *serverDB) close() {
	_ = s.client.Disconnect(context.Background())
	s.stop()
}

// startEmbedded serves FerretDB on SQLite files in dir (the server's DATA_DIR
// layout, internal/devdb) on a free loopback port until stop is called; stop
// waits until its files are closed.
func startEmbedded(dir string) (uri string, stop func(), err error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", nil, err
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return "", nil, fmt.Errorf("embedded database: %w", err)
	}
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: "127.0.0.1:0"},
		Handler:   "sqlite",
		SQLiteURL: "file:" + abs + "/",
		Logger:    slog.New(slog.DiscardHandler), // it logs every failed command
	})
	if err != nil {
		return "", nil, fmt.Errorf("embedded database: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = f.Run(ctx)
	}()
	return f.MongoDBURI(), func() { cancel(); <-done }, nil
}

// dropDatabase removes the bench's database from a MONGODB_URI server; best
// effort, as part of cleanup.
func dropDatabase(uri, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client, err := connect(ctx, uri)
	if err != nil {
		return
	}
	defer func() { _ = client.Disconnect(context.Background()) }()
	_ = client.Database(name).Drop(ctx)
}

const seedBatch = 500

// seedUsers inserts n users named user000000, user000001, ... into the
// collection the server created (with its indexes; they are created here too,
// one at a time as its store does on FerretDB, for a database it has not
// seen) and returns them. Their
// password hash has a real hash's length; nobody logs in as them.
func seedUsers(ctx context.Context, db *mongo.Database, n int) ([]userDoc, error) {
	coll := db.Collection("users")
	for _, field := range []string{"username_key", "email_key"} {
		_, err := coll.Indexes().CreateOne(ctx, mongo.IndexModel{
			Keys:    bson.D{{Key: field, Value: 1}},
			Options: options.Index().SetUnique(true).SetName(field + "_unique"),
		})
		if err != nil {
			return nil, fmt.Errorf("seed users: create index: %w", err)
		}
	}
	hash := []byte("$2a$12$" + strings.Repeat("x", 53))
	now := time.Now().UTC().Truncate(time.Millisecond)
	users := make([]userDoc, 0, n)
	for start := 0; start < n; start += seedBatch {
		docs := make([]any, 0, seedBatch)
		for i := start; i < min(start+seedBatch, n); i++ {
			name := fmt.Sprintf("user%06d", i)
			u := userDoc{
				ID: bson.NewObjectID(), Username: name, Email: name + "@example.com", UsernameKey: name,
				EmailKey: name + "@example.com", PasswordHash: hash, CreatedAt: now,
				Roles: []string{"USER"}, CredStamp: randomText(12),
			}
			docs = append(docs, u)
			users = append(users, u)
		}
		if _, err := coll.InsertMany(ctx, docs); err != nil {
			return nil, fmt.Errorf("seed users: %w", err)
		}
	}
	return users, nil
}

// seedSessions adds sessions of the given users until the sessions
// collection holds total documents, and returns how many it added. Three in
// four are ended (logged out within the last day, which the server keeps for
// a day), the others active, as a database in use holds both.
func seedSessions(ctx context.Context, db *mongo.Database, users []userDoc, total int, now time.Time) (int, error) {
	coll := db.Collection("sessions")
	have, err := coll.CountDocuments(ctx, bson.D{})
	if err != nil {
		return 0, fmt.Errorf("seed sessions: count: %w", err)
	}
	add := max(total-int(have), 0)
	if add > 0 && len(users) == 0 {
		return 0, fmt.Errorf("seed sessions: no users to give them to")
	}
	now = now.UTC().Truncate(time.Millisecond)
	for start := 0; start < add; start += seedBatch {
		docs := make([]any, 0, seedBatch)
		for i := start; i < min(start+seedBatch, add); i++ {
			docs = append(docs, seededSession(&users[i%len(users)], i, now))
		}
		if _, err := coll.InsertMany(ctx, docs); err != nil {
			return 0, fmt.Errorf("seed sessions: %w", err)
		}
	}
	return add, nil
}

// seededSession is the i-th seeded session, of u: created within the last
// day, and logged out unless i is a multiple of four.
func seededSession(u *userDoc, i int, now time.Time) sessionDoc {
	created := now.Add(-time.Duration(2+i%1430) * time.Minute) // used a minute later, ended one after

	used := created.Add(time.Minute)
	token := sha256.Sum256([]byte(randomText(32)))
	s := sessionDoc{
		ID: randomText(16), UserID: u.ID.Hex(), TokenHash: hex.EncodeToString(token[:]),
		RotatedAt: used, CreatedAt: created, LastUsedAt: used, ExpiresAt: used.Add(30 * 24 * time.Hour),
		UserAgent: "authgql-bench", IP: "127.0.0.1", CredStamp: u.CredStamp,
	}
	if i%4 != 0 {
		ended := used.Add(time.Minute)
		s.RevokedAt, s.RevokedReason = &ended, "logout"
	}
	return s
}

// randomText is n random bytes in base64url, the encoding of the server's
// session ids and credential stamps.
func randomText(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
