package bench

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"golang.org/x/crypto/bcrypt"

	"github.com/authgql/server/internal/devdb"
	"github.com/authgql/server/internal/mongodb"
)

// Limits are the ceilings the phases are judged against, measured in the
// same run on the same machine.
type Limits struct {
	Cores int `json:"cores"`
	// BcryptHashMS is the median time of one bcrypt hash at the configured
	// cost; a login's CompareHashAndPassword does the same work.
	BcryptCost      int       `json:"bcrypt_cost"`
	BcryptHashMS    float64   `json:"bcrypt_hash_ms"`
	BcryptSamplesMS []float64 `json:"bcrypt_samples_ms"`
	// BcryptPerSecond is cores / hash time: what the machine can hash when
	// it does nothing else.
	BcryptPerSecond float64 `json:"bcrypt_hashes_per_s"`
	// PointRead is FindOne by _id through the driver with the server's client
	// options, decoding a user document: the one database call of `me`,
	// measured on the server's database, seeded with PointReadDocs users.
	PointRead     PhaseResult `json:"point_read"`
	PointReadDocs int         `json:"point_read_docs"`
}

// measureBcrypt hashes n times, one at a time, and returns the durations.
func measureBcrypt(ctx context.Context, cost, n int) ([]time.Duration, error) {
	password := []byte("a bench password of usual length")
	out := make([]time.Duration, 0, n)
	for range n {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		t0 := time.Now()
		if _, err := bcrypt.GenerateFromPassword(password, cost); err != nil {
			return nil, fmt.Errorf("bcrypt: %w", err)
		}
		out = append(out, time.Since(t0))
	}
	return out, nil
}

func bcryptLimits(samples []time.Duration, cost int) Limits {
	sorted := slices.Clone(samples)
	slices.Sort(sorted)
	median := sorted[len(sorted)/2]
	l := Limits{Cores: runtime.NumCPU(), BcryptCost: cost, BcryptHashMS: ms(median)}
	for _, d := range samples {
		l.BcryptSamplesMS = append(l.BcryptSamplesMS, ms(d))
	}
	l.BcryptPerSecond = float64(l.Cores) / median.Seconds()
	return l
}

// serverDB is the database the server is about to use, opened by the bench
// before the server starts: it seeds the users collection and measures point
// reads on it, so that the ceiling and the server's me phase see the same
// collection. The size matters: FerretDB 1.x on SQLite scans the whole table
// for a lookup by _id (its _id index is on a different expression than its
// query), so a point read costs time proportional to the number of users.
type serverDB struct {
	uri   string
	name  string
	close func()
}

// openServerDB starts the embedded database in the server's data directory
// (the server reopens the same files), or uses the MONGODB_URI database name.
func openServerDB(mongoURI, dataDir, name string) (*serverDB, error) {
	if mongoURI != "" {
		return &serverDB{uri: mongoURI, name: name, close: func() {}}, nil
	}
	db, err := devdb.Start(filepath.Join(dataDir, "db"), slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, err
	}
	return &serverDB{uri: db.URI(), name: name, close: db.Stop}, nil
}

// dropDatabase removes the bench's database from a MONGODB_URI server; best
// effort, as part of cleanup.
func dropDatabase(uri, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client, err := mongodb.Connect(ctx, uri)
	if err != nil {
		return
	}
	defer func() { _ = client.Disconnect(context.Background()) }()
	_ = client.Database(name).Drop(ctx)
}

// benchUser has the stored shape of a user (internal/mongodb's userDoc), so
// that a point read moves and decodes as many bytes as the server's.
type benchUser struct {
	ID           bson.ObjectID `bson:"_id"`
	Username     string        `bson:"username"`
	Email        string        `bson:"email"`
	UsernameKey  string        `bson:"username_key"`
	EmailKey     string        `bson:"email_key"`
	PasswordHash []byte        `bson:"password_hash"`
	CreatedAt    time.Time     `bson:"created_at"`
}

// measurePointReads fills the users collection with docs documents (with
// the server's unique indexes) and reads random ones by _id at the given
// concurrency for d.
func measurePointReads(ctx context.Context, uri, dbName string, docs, concurrency int, d time.Duration) (PhaseResult, error) {
	client, err := mongodb.Connect(ctx, uri)
	if err != nil {
		return PhaseResult{}, err
	}
	defer func() { _ = client.Disconnect(context.Background()) }()
	coll := client.Database(dbName).Collection("users")
	ids, err := seedUsers(ctx, coll, docs)
	if err != nil {
		return PhaseResult{}, err
	}
	spec := phaseSpec{name: "db point read", concurrency: concurrency, duration: d, newWorker: func(int) workFunc {
		return func(ctx context.Context) error {
			var u benchUser
			id := ids[rand.IntN(len(ids))]
			if err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&u); err != nil {
				return &opError{kind: "find", err: err}
			}
			return nil
		}
	}}
	return runPhase(ctx, spec), nil
}

// seedUsers inserts n user-like documents and returns their ids.
func seedUsers(ctx context.Context, coll *mongo.Collection, n int) ([]bson.ObjectID, error) {
	// The server's own indexes, one at a time as its store creates them
	// (FerretDB); the server finds them in place when it starts.
	for _, field := range []string{"username_key", "email_key"} {
		_, err := coll.Indexes().CreateOne(ctx, mongo.IndexModel{
			Keys:    bson.D{{Key: field, Value: 1}},
			Options: options.Index().SetUnique(true).SetName(field + "_unique"),
		})
		if err != nil {
			return nil, fmt.Errorf("point reads: create index: %w", err)
		}
	}
	// A real bcrypt hash is 60 bytes; its content does not matter here.
	hash := []byte("$2a$12$" + strings.Repeat("x", 53))
	ids := make([]bson.ObjectID, 0, n)
	const batch = 500
	for start := 0; start < n; start += batch {
		docs := make([]any, 0, batch)
		for i := start; i < min(start+batch, n); i++ {
			name := fmt.Sprintf("user%06d", i)
			u := benchUser{
				ID: bson.NewObjectID(), Username: name, Email: name + "@example.com", UsernameKey: name,
				EmailKey: name + "@example.com", PasswordHash: hash, CreatedAt: time.Now().UTC().Truncate(time.Millisecond),
			}
			docs = append(docs, u)
			ids = append(ids, u.ID)
		}
		if _, err := coll.InsertMany(ctx, docs); err != nil {
			return nil, fmt.Errorf("point reads: insert users: %w", err)
		}
	}
	return ids, nil
}
