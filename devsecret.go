package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/authgql/server/internal/token"
)

// devSecret returns the development signing key kept in dataDir, creating a
// random 256-bit one (mode 0600) the first time.
func devSecret(dataDir string) ([]byte, error) {
	path := filepath.Join(dataDir, "jwt-secret")
	b, err := os.ReadFile(path)
	if err == nil {
		s := strings.TrimSpace(string(b))
		if len(s) < token.MinSecretBytes {
			return nil, fmt.Errorf("%s holds a key shorter than %d bytes: delete it to generate a new one", path, token.MinSecretBytes)
		}
		return []byte(s), nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read development key: %w", err)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create DATA_DIR: %w", err)
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	s := hex.EncodeToString(key)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create development key: %w", err)
	}
	if _, err := f.WriteString(s + "\n"); err != nil {
		f.Close()
		return nil, fmt.Errorf("write development key: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("write development key: %w", err)
	}
	return []byte(s), nil
}
