package auth

import (
	"context"
	"errors"
	"sync"
	"time"
)

// userCache keeps users read by ID for a short TTL, so that the hot path
// (me, role checks, refresh) does not read the database on every request.
// Writes made through it invalidate at once; changes made by other instances
// are seen within the TTL — the documented staleness bound. Lookups by
// username or email (login) always read the database.
type userCache struct {
	UserStore
	ttl time.Duration
	now func() time.Time

	mu    sync.RWMutex
	users map[string]cachedUser
	// gen counts invalidations: a read that began before one is not cached,
	// since it may hold what the invalidating write replaced.
	gen uint64
	// ids maps username and email keys to user IDs. An email can change and
	// a user can be deleted: a lookup through it reads the user fresh by ID
	// and checks the key, and looks the key up again when it no longer
	// matches (login needs the current password hash anyway).
	ids map[string]string
}

type cachedUser struct {
	user User
	at   time.Time
}

// maxCachedUsers bounds the cache's memory; past it, stale entries go first
// and then everything (a cache miss is only a database read).
const maxCachedUsers = 100_000

func newUserCache(store UserStore, ttl time.Duration, now func() time.Time) *userCache {
	return &userCache{UserStore: store, ttl: ttl, now: now, users: make(map[string]cachedUser), ids: make(map[string]string)}
}

// ByUsernameKey reads the user fresh, by ID when the key was seen before: a
// lookup by _id is the cheapest query on every backend (the embedded FerretDB
// decodes every document of the collection for any other filter).
func (c *userCache) ByUsernameKey(ctx context.Context, key string) (*User, error) {
	return c.byKey(ctx, "u:"+key, key, c.UserStore.ByUsernameKey, func(u *User) string { return u.UsernameKey })
}

// ByEmailKey is ByUsernameKey for email keys.
func (c *userCache) ByEmailKey(ctx context.Context, key string) (*User, error) {
	return c.byKey(ctx, "e:"+key, key, c.UserStore.ByEmailKey, func(u *User) string { return u.EmailKey })
}

func (c *userCache) byKey(ctx context.Context, slot, key string, lookup func(context.Context, string) (*User, error), keyOf func(*User) string) (*User, error) {
	c.mu.RLock()
	id, ok := c.ids[slot]
	c.mu.RUnlock()
	if ok {
		u, err := c.UserStore.ByID(ctx, id)
		if err == nil && keyOf(u) == key {
			return u, nil
		}
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		c.mu.Lock()
		delete(c.ids, slot) // deleted behind our back: look it up again
		c.mu.Unlock()
	}
	u, err := lookup(ctx, key)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if len(c.ids) >= maxCachedUsers {
		clear(c.ids)
	}
	c.ids[slot] = u.ID
	c.mu.Unlock()
	return u, nil
}

// ByID returns a copy of the user, from the cache when fresh.
func (c *userCache) ByID(ctx context.Context, id string) (*User, error) {
	now := c.now()
	c.mu.RLock()
	e, ok := c.users[id]
	c.mu.RUnlock()
	if ok && now.Sub(e.at) < c.ttl {
		u := e.user
		return &u, nil
	}
	c.mu.RLock()
	gen := c.gen
	c.mu.RUnlock()
	u, err := c.UserStore.ByID(ctx, id)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.gen == gen {
		if len(c.users) >= maxCachedUsers {
			c.evict(now)
		}
		c.users[id] = cachedUser{user: *u, at: now}
	}
	c.mu.Unlock()
	return u, nil
}

func (c *userCache) evict(now time.Time) {
	for id, e := range c.users {
		if now.Sub(e.at) >= c.ttl {
			delete(c.users, id)
		}
	}
	if len(c.users) >= maxCachedUsers {
		clear(c.users)
	}
}

func (c *userCache) forget(id string) {
	c.mu.Lock()
	delete(c.users, id)
	c.gen++
	c.mu.Unlock()
}

func (c *userCache) SetPassword(ctx context.Context, id string, from, hash []byte, stamp string) error {
	defer c.forget(id)
	return c.UserStore.SetPassword(ctx, id, from, hash, stamp)
}

func (c *userCache) SetRoles(ctx context.Context, id string, roles []Role) (*User, error) {
	defer c.forget(id)
	return c.UserStore.SetRoles(ctx, id, roles)
}

func (c *userCache) SetDisabled(ctx context.Context, id string, disabled bool) (*User, error) {
	defer c.forget(id)
	return c.UserStore.SetDisabled(ctx, id, disabled)
}

func (c *userCache) SetMFAEnabled(ctx context.Context, id string, enabled bool) error {
	defer c.forget(id)
	return c.UserStore.SetMFAEnabled(ctx, id, enabled)
}

func (c *userCache) SetEmailVerified(ctx context.Context, id, emailKey string) error {
	defer c.forget(id)
	return c.UserStore.SetEmailVerified(ctx, id, emailKey)
}

func (c *userCache) SetEmail(ctx context.Context, id, fromKey, email, key string) error {
	defer c.forget(id)
	return c.UserStore.SetEmail(ctx, id, fromKey, email, key)
}

func (c *userCache) Delete(ctx context.Context, id string) error {
	defer c.forget(id)
	return c.UserStore.Delete(ctx, id)
}
