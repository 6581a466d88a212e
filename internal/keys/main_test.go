package keys_test

import (
	"testing"

	"github.com/authgql/server/internal/devdb/devdbtest"
)

// The embedded database is started once for the package; each test gets a
// database of its own, and each simulated instance a client of its own.
var testDB *devdbtest.Server

func TestMain(m *testing.M) { devdbtest.Main(m, &testDB) }
