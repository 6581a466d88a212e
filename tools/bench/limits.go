package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"golang.org/x/crypto/bcrypt"
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
	// options, decoding a user document: the database call `me` would make
	// without the server's user cache, measured on the server's database,
	// seeded with PointReadDocs users.
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

// measurePointReads reads random users among users by _id from db at the
// given concurrency for d, checking that each read finds its document.
func measurePointReads(ctx context.Context, db *mongo.Database, users []userDoc, concurrency int, d time.Duration) PhaseResult {
	coll := db.Collection("users")
	spec := phaseSpec{name: "db point read", concurrency: concurrency, duration: d, newWorker: func(int) workFunc {
		return func(ctx context.Context) error {
			var u userDoc
			id := users[rand.IntN(len(users))].ID
			if err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&u); err != nil {
				return &opError{kind: "find", err: err}
			}
			if u.ID != id {
				return &opError{kind: "wrong document"}
			}
			return nil
		}
	}}
	return runPhase(ctx, spec)
}
